"""Preferences: how tiles run (size, overlap, device, backend, precision, threads), and the language.

A combination that cannot run here (the paddle backend in bf16, a GPU that is not
there, ...) is refused when OK is pressed, with the core's reason and what to change
(``cmfnet_core.backends.check_options``, the check the CLI makes), so it is never saved.
"""
from __future__ import annotations

from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox,
                             QVBoxLayout)

from cmfnet_core import i18n
from cmfnet_core.backends import BACKENDS, DEVICES, PRECISIONS, check_options
from cmfnet_core.engine import DEFAULT_OVERLAP
from cmfnet_core.errors import SettingsError, classify
from cmfnet_core.i18n import _

from .jobs import EngineOptions


class PreferencesDialog(QDialog):
    """Edits an :class:`EngineOptions`; ``options()`` returns the edited copy."""

    def __init__(self, options: EngineOptions, parent=None, language: str = i18n.SYSTEM):
        super().__init__(parent)
        self.setWindowTitle(_("Preferences"))
        self.tile = self._spin(0, 2048, 8, options.tile or 0, " px")
        self.tile.setSpecialValueText(_("automatic"))  # 0: engine.auto_tile, as the CLI, GIMP, right-click
        self.tile.setToolTip(_("Automatic picks the size for the network (the same choice as the command "
                               "line's). Larger tiles repeat less of the context each tile sees around "
                               "what it keeps, but need more memory."))
        self.overlap = self._spin(0, 256, 8, options.overlap, " px")
        self.overlap.setToolTip(_("Pixels of neighbouring tiles blended, inside what each tile keeps."))
        self.device = self._combo(DEVICES, options.device)
        self.backend = self._combo(BACKENDS, options.backend)
        self.precision = self._combo(PRECISIONS, options.precision)
        self.threads = self._spin(0, 256, 1, options.threads or 0, "")
        self.threads.setSpecialValueText(_("automatic"))
        self.language = QComboBox()
        self.language.addItem(_("System language"), i18n.SYSTEM)
        for code in i18n.available_languages():
            self.language.addItem(i18n.NATIVE_NAMES.get(code, code), code)
        self.language.setCurrentIndex(max(self.language.findData(language), 0))
        self.language.setToolTip(_("Takes effect the next time the app starts."))

        form = QFormLayout()
        form.addRow(_("Tile size:"), self.tile)
        form.addRow(_("Tile overlap:"), self.overlap)
        form.addRow(_("Device:"), self.device)
        form.addRow(_("Backend:"), self.backend)
        form.addRow(_("Precision:"), self.precision)
        form.addRow(_("CPU threads:"), self.threads)
        form.addRow(_("Language:"), self.language)
        hint = QLabel(_("Out of memory? Lower the tile size. "
                        "Defaults: tile automatic, overlap {overlap}, cpu, auto.").format(overlap=DEFAULT_OVERLAP))
        hint.setWordWrap(True)
        self.problem = QLabel()  # why OK was refused, in the words of the app
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #a33")
        self.problem.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self._load(EngineOptions()))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    @staticmethod
    def _spin(low: int, high: int, step: int, value: int, suffix: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setSuffix(suffix)
        spin.setValue(value)
        return spin

    @staticmethod
    def _combo(choices, current: str) -> QComboBox:
        combo = QComboBox()
        combo.addItems(list(choices))
        combo.setCurrentText(current)
        return combo

    def _load(self, options: EngineOptions) -> None:
        self.tile.setValue(options.tile or 0)
        self.overlap.setValue(options.overlap)
        self.device.setCurrentText(options.device)
        self.backend.setCurrentText(options.backend)
        self.precision.setCurrentText(options.precision)
        self.threads.setValue(options.threads or 0)

    def chosen_language(self) -> str:
        """A language code, or ``i18n.SYSTEM``: follow the system."""
        return self.language.currentData()

    def accept(self) -> None:
        options = self.options()
        try:
            check_options(backend=options.backend, device=options.device,
                          precision=options.precision)
        except SettingsError as exc:
            self.problem.setText(classify(exc).dialog_text())
            self.problem.show()
            return
        super().accept()

    def options(self) -> EngineOptions:
        tile = self.tile.value() and max(64, self.tile.value() // 8 * 8)  # 0: automatic
        overlap = min(self.overlap.value(), (tile or 256) // 2) // 8 * 8
        return EngineOptions(tile=tile, overlap=overlap, device=self.device.currentText(),
                             backend=self.backend.currentText(),
                             precision=self.precision.currentText(),
                             threads=self.threads.value() or None)
