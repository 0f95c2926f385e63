"""Preferences: how tiles run (size, overlap, device, backend, precision, threads), and the language.

A combination that cannot run here (the paddle backend in bf16, a GPU that is not
there, ...) is refused when OK is pressed, with the core's reason and what to change
(``cmfnet_core.backends.check_options``, the check the CLI makes), so it is never saved.
The check runs as a job off the GUI thread (on the runner the window lends, else the
dialog's own): looking for a GPU imports Paddle or starts OpenVINO, seconds the first time.
"""
from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox,
                             QVBoxLayout)

from cmfnet_core import i18n
from cmfnet_core.backends import BACKENDS, DEVICES, PRECISIONS, check_options
from cmfnet_core.engine import DEFAULT_OVERLAP
from cmfnet_core.errors import SettingsError, classify
from cmfnet_core.i18n import _

from . import jobs
from .jobs import EngineOptions, Job
from .workers import JobRunner

CHECK = "check-settings"


def check_work(options: EngineOptions) -> jobs.Work:
    """The job: can ``options`` run here? None if so; a SettingsError is the job's result
    (not its failure), so the dialog words it as the CLI's check would."""
    def work(progress, cancel):
        try:
            check_options(backend=options.backend, device=options.device, precision=options.precision)
        except SettingsError as exc:
            return exc
        return None
    return work


class PreferencesDialog(QDialog):
    """Edits an :class:`EngineOptions`; ``options()`` returns the edited copy.

    OK starts the check on ``runner`` (the window's files runner; without one, a runner of
    the dialog's own, made on the first OK and stopped when the dialog closes): ``accepted``
    when the settings can run, else ``refused`` with what the dialog then shows."""

    refused = pyqtSignal(str)

    def __init__(self, options: EngineOptions, parent=None, language: str = i18n.SYSTEM,
                 runner: JobRunner | None = None):
        super().__init__(parent)
        self._runner, self._own_runner = runner, None
        self._check: Job | None = None  # the check under way, if any
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
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
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
        """Check the settings off the GUI thread; the dialog closes once they can run."""
        if self._check is not None:
            return
        if self._runner is None:
            self._own_runner = self._runner = JobRunner("cmfnet-check", self)
        self.ok_button.setEnabled(False)  # one check at a time; it may take seconds
        self._check = self._runner.submit(Job(CHECK, check_work(self.options()),
                                              on_success=self._on_checked,
                                              on_failure=self._on_check_failed))

    def _on_checked(self, job: Job, problem: SettingsError | None) -> None:
        if self._settle(job):
            if problem is None:
                super().accept()
            else:
                self._refuse(classify(problem).dialog_text())

    def _on_check_failed(self, job: Job, title: str, message: str) -> None:
        if self._settle(job):  # the check itself broke: said, and nothing is saved
            self._refuse(message)

    def _settle(self, job: Job) -> bool:
        """True when ``job`` is the check this dialog still waits for (not one it dropped
        when it closed)."""
        if job is not self._check or job.token.cancelled:
            return False
        self._check = None
        self.ok_button.setEnabled(True)
        return True

    def _refuse(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
        self.refused.emit(text)

    def done(self, result: int) -> None:
        if self._check is not None:  # closed while checking: its outcome no longer matters
            self._runner.cancel(self._check)
            self._check = None
        if self._own_runner is not None:
            self._own_runner.shutdown()  # the check is quick but not cancellable: waits for it
            self._own_runner = self._runner = None
        super().done(result)

    def options(self) -> EngineOptions:
        tile = self.tile.value() and max(64, self.tile.value() // 8 * 8)  # 0: automatic
        overlap = min(self.overlap.value(), (tile or 256) // 2) // 8 * 8
        return EngineOptions(tile=tile, overlap=overlap, device=self.device.currentText(),
                             backend=self.backend.currentText(),
                             precision=self.precision.currentText(),
                             threads=self.threads.value() or None)
