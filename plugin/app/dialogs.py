"""Questions and error messages, in one place so tests can answer them.

Errors are shown with ``QMessageBox.open()``: window-modal but non-blocking,
so a failing background job never stalls the event loop. Questions that need
an answer before the app can go on (file names, overwrite, unsaved result)
are the only blocking dialogs; tests replace :class:`Prompts` methods.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFileDialog, QMessageBox, QWidget

from cmfnet_core.i18n import N_, Translated, _
from cmfnet_core.imageio import READABLE, SUFFIX_FORMAT

OPEN_FILTER = N_("Photos ({patterns});;All files (*)")  # patterns: " ".join(f"*{s}" for s in READABLE)
SAVE_FILTERS = Translated({
    "PNG": N_("PNG image (*.png)"),
    "JPEG": N_("JPEG image (*.jpg *.jpeg)"),
    "TIFF": N_("TIFF image (*.tif *.tiff)"),
    "WEBP": N_("WebP image (*.webp)"),
    "BMP": N_("BMP image (*.bmp)"),
})
WEIGHTS_FILTER = N_("CMFNet weights (*.pth *.pdparams *.pt);;All files (*)")

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


class Prompts:
    """The blocking questions the window asks."""

    def __init__(self, parent: QWidget):
        self.parent = parent

    def open_files(self, folder: str) -> list[str]:
        paths, _filter = QFileDialog.getOpenFileNames(self.parent, _("Open photos"), folder, _(OPEN_FILTER).format(patterns=" ".join(f"*{s}" for s in READABLE)))
        return paths

    def save_path(self, suggested: Path, title: str | None = None) -> str | None:
        title = title or _("Save restored photo as")
        fmt = SUFFIX_FORMAT.get(suggested.suffix.lower(), "PNG")
        filters = ";;".join([SAVE_FILTERS[fmt]] + [f for k, f in SAVE_FILTERS.items() if k != fmt])
        path, _filter = QFileDialog.getSaveFileName(self.parent, title, str(suggested), filters)
        return path or None

    def weights_file(self, task_title: str) -> str | None:
        path, _filter = QFileDialog.getOpenFileName(
            self.parent, _("Import official CMFNet weights for {task}").format(task=task_title), str(Path.home()),
            _(WEIGHTS_FILTER))
        return path or None

    def confirm_overwrite_original(self, path: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, _("Replace the original?"),
                          _("“{name}” is your original photo. Replacing it with the restored "
                          "version cannot be undone.").format(name=path.name), parent=self.parent)
        replace = box.addButton(_("Replace original"), QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is replace

    def unsaved_result(self, name: str) -> str:
        answer = QMessageBox.question(
            self.parent, _("Unsaved restoration"),
            _("The restoration of “{name}” has not been saved. Save it before closing?").format(name=name),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        return {QMessageBox.StandardButton.Save: SAVE,
                QMessageBox.StandardButton.Discard: DISCARD}.get(answer, CANCEL)

    def discard_result(self, name: str) -> bool:
        answer = QMessageBox.question(
            self.parent, _("Discard the restoration?"),
            _("Changing the task discards the unsaved restoration of “{name}”.").format(name=name),
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard


class ErrorReporter:
    """Shows one clear, non-blocking error dialog per failure and remembers the last."""

    def __init__(self, parent: QWidget):
        self.parent = parent
        self.last: tuple[str, str] | None = None
        self.box: QMessageBox | None = None

    def show(self, title: str, message: str) -> QMessageBox:
        self.last = (title, message)
        box = QMessageBox(QMessageBox.Icon.Critical, title, message,
                          QMessageBox.StandardButton.Ok, self.parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.box = box
        return box
