"""Small widgets of the main window: progress panel, welcome page, weights banner, compare bar."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider,
                             QVBoxLayout, QWidget)

from .jobs import Eta, format_eta


class ProgressPanel(QWidget):
    """'Applying: tile 3 of 12 · about 20 s left' [bar] [Cancel]; hidden when idle."""

    cancel_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current tile (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._title = ""
        self._eta = Eta()
        self.hide()

    def start(self, title: str) -> None:
        self._title = title
        self._eta = Eta()
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.label.setText(f"{title}: starting…")
        self.cancel_button.setEnabled(True)
        self.show()

    def report(self, done: int, total: int) -> None:
        remaining = self._eta.update(done, total)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.bar.setFormat(f"{done}/{total} tiles")
        if done == 0:  # the first tile also builds the model (compiling it takes a while once)
            self.label.setText(f"{self._title}: preparing the model, {total} tiles to go…")
        else:
            self.label.setText(f"{self._title}: tile {done} of {total} · {format_eta(remaining)}")

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText(f"{self._title}: cancelling after this tile…")

    def finish(self) -> None:
        self.hide()


class DetectionLabel(QLabel):
    """Beside the task choice: what the photo looks like to the detector ("Looks hazy ·
    87 %"), which is why Automatic picked its task; the tooltip has every class."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setContentsMargins(6, 0, 6, 0)

    def looking(self) -> None:
        self.setText("<i>Looking at the photo…</i>")
        self.setToolTip("Finding out whether it is blurry, hazy or rain-spotted")

    def show_detection(self, detection, automatic: bool, task_title: str) -> None:
        # unsure: the likely task beside the runner-up ("Hazy 55 % · Blurry 30 %")
        self.setText(detection.odds() if detection.unsure else detection.summary())
        odds = ", ".join(f"{name} {round(100 * p)} %" for name, p in detection.probabilities.items())
        if not automatic:
            why = "You chose the task yourself, for this photo; Automatic would pick " + (
                detection.likely_task or "nothing") + "."
        elif detection.unsure:
            why = (f"Not sure: Automatic preselects {task_title}, the likelier; "
                   "pick another task to change it.")
        elif detection.likely_task:
            why = f"Automatic restores it with {task_title}."
        else:
            why = "Automatic leaves it as it is: pick a task to restore it anyway."
        self.setToolTip(f"{why}\nThe detector's odds: {odds}")

    def unavailable(self, reason: str) -> None:
        self.setText("<i>Automatic unavailable</i>")
        self.setToolTip(reason)

    def clear_detection(self) -> None:
        self.clear()
        self.setToolTip("")


class WeightsBanner(QFrame):
    """Shown above the photo when the selected task has no weights installed."""

    import_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("weightsBanner")
        self.setStyleSheet("#weightsBanner { background: #fff3cd; border: 1px solid #e0c36c; }"
                           "#weightsBanner QLabel { color: #5c4400; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Import official weights…")
        self.button.clicked.connect(self.import_requested)
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def show_missing(self, task_title: str) -> None:
        self.label.setText(
            f"<b>No weights installed for {task_title}.</b> CMFNet needs trained weights to restore "
            "photos. Get the authors' with Restore ▸ Weights…, or import a file you have (a .pth "
            "from the CMFNet release).")
        self.show()


class WelcomePage(QWidget):
    """What a new user sees first: one big button, the drop hint, recent files."""

    open_requested = pyqtSignal()
    path_requested = pyqtSignal(str)
    sample_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        title = QLabel("CMFNet Restore")
        font = QFont()
        font.setPointSize(20)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel("Sharpen blurry, clear hazy and remove raindrops from photos.\n"
                          "Your original is never changed.")
        subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton("Open a photo…")
        self.open_button.setMinimumHeight(40)
        self.open_button.setMinimumWidth(220)
        self.open_button.clicked.connect(self.open_requested)
        hint = QLabel("or drop photos here (several photos make a batch)")
        hint.setStyleSheet("color: gray")
        self.sample_button = QPushButton("Try it on a sample photo")
        self.sample_button.setFlat(True)
        self.sample_button.setStyleSheet("color: palette(link); text-decoration: underline")
        self.sample_button.clicked.connect(self.sample_requested)
        self._recent_box = QVBoxLayout()
        self._recent_title = QLabel("<b>Recent</b>")
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        for widget in (title, subtitle, self.open_button, hint, self.sample_button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(16)
        layout.addWidget(self._recent_title, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(self._recent_box)
        layout.addStretch(3)

    def set_recent(self, paths: list[str]) -> None:
        while self._recent_box.count():
            item = self._recent_box.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        shown = [p for p in paths if Path(p).exists()][:5]
        self._recent_title.setVisible(bool(shown))
        for path in shown:
            button = QPushButton(Path(path).name)
            button.setFlat(True)
            button.setToolTip(path)
            button.clicked.connect(lambda _=False, p=path: self.path_requested.emit(p))
            self._recent_box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)


class CompareBar(QWidget):
    """Before ──●── After split slider and the strength slider, under the photo."""

    split_changed = pyqtSignal(float)
    strength_changed = pyqtSignal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.split = QSlider(Qt.Orientation.Horizontal)
        self.split.setRange(0, 1000)
        self.split.setValue(500)
        self.split.setToolTip("Drag to compare: original on the left, restored on the right. "
                              "Hold B to see the original.")
        self.split.valueChanged.connect(lambda v: self.split_changed.emit(v / 1000.0))
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength.setMaximumWidth(160)
        self.strength.setToolTip("Blend the restoration with the original (applies when saving too)")
        self.strength_label = QLabel("100 %")
        self.strength_label.setMinimumWidth(40)
        self.strength.valueChanged.connect(self._on_strength)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(QLabel("Before"))
        layout.addWidget(self.split, 1)
        layout.addWidget(QLabel("After"))
        layout.addSpacing(24)
        layout.addWidget(QLabel("Strength"))
        layout.addWidget(self.strength)
        layout.addWidget(self.strength_label)

    def _on_strength(self, value: int) -> None:
        self.strength_label.setText(f"{value} %")
        self.strength_changed.emit(value / 100.0)

    def set_split_silently(self, fraction: float) -> None:
        self.split.blockSignals(True)
        self.split.setValue(round(fraction * 1000))
        self.split.blockSignals(False)
