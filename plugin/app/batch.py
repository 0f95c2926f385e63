"""Batch queue: several photos restored one after another in the background.

Each file gets a row with its status (queued, running with tile count,
saved as NAME.TASK.EXT, failed with the reason, cancelled). The batch has its
own task choice, Automatic unless the user picks a task there (the task picked
for the open photo is that photo's): with Automatic each photo is restored with
its likely task and the row says which and why (unsure ones too, saying so); a
photo that looks fine is left as it is. The jobs go
through the window's :class:`JobRunner`, so they never overlap with each
other or with a preview.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from cmfnet_core.detect import AUTO_TASK
from cmfnet_core.i18n import N_, _
from cmfnet_core.tasks import CHOICE_TITLES
from cmfnet_core.weights import TASKS

from .jobs import BATCH, AutoOutcome, Job
from .workers import JobRunner

QUEUED, RUNNING, DONE, FAILED, CANCELLED = N_("Queued"), N_("Running"), N_("Saved"), N_("Failed"), N_("Cancelled")
LEFT = N_("Left as it is")  # Automatic found nothing to restore
TITLES = CHOICE_TITLES  # in the current language when read
FINISHED = (DONE, LEFT, FAILED, CANCELLED)


@dataclass(eq=False)
class Entry:
    path: Path
    status: str = QUEUED
    detail: str = ""
    job: Job | None = None
    output: Path | None = None


class BatchPanel(QWidget):
    """The queue's table and its buttons; ``make_job(path)`` builds a batch job."""

    open_requested = pyqtSignal(str)
    finished = pyqtSignal()  # the last queued file is done

    def __init__(self, runner: JobRunner, make_job: Callable[[Path], Job], parent=None):
        super().__init__(parent)
        self.runner = runner
        self.make_job = make_job
        self.entries: list[Entry] = []
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels([_("Photo"), _("Status")])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_requested.emit(str(self.entries[row].path)))
        self.task_combo = QComboBox()
        for choice in (AUTO_TASK,) + TASKS:
            self.task_combo.addItem(TITLES[choice], choice)
        self.task_combo.setToolTip(_("The task for every photo of the batch; Automatic: what each "
                                     "one needs, found per photo"))
        self.run_button = QPushButton(_("Restore all"))
        self.run_button.setToolTip(_("Restore every queued photo with the batch's task (Automatic: "
                                   "what each one needs); each is saved as NAME.TASK.EXT beside "
                                   "the original"))
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_button = QPushButton(_("Clear finished"))
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel(_("Task:")))
        buttons.addWidget(self.task_combo)
        for button in (self.run_button, self.cancel_button, self.clear_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        runner.started.connect(self._on_started)
        runner.progress.connect(self._on_progress)
        runner.succeeded.connect(self._on_succeeded)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        runner.finished.connect(self._on_finished)
        self._update_buttons()

    # --- queue editing --------------------------------------------------------------
    def add_files(self, paths) -> None:
        known = {e.path for e in self.entries}
        for path in map(Path, paths):
            if path not in known:
                self.entries.append(Entry(path))
                known.add(path)
                row = self.table.rowCount()
                self.table.insertRow(row)
                name = QTableWidgetItem(path.name)
                name.setToolTip(str(path))
                self.table.setItem(row, 0, name)
                self.table.setItem(row, 1, QTableWidgetItem())
                self._show(self.entries[-1])
        self._update_buttons()

    def clear_finished(self) -> None:
        for row in reversed(range(len(self.entries))):
            if self.entries[row].status in FINISHED:
                self.entries.pop(row)
                self.table.removeRow(row)
        self._update_buttons()

    def choice(self) -> str:
        """The batch's task: AUTO_TASK (the default) or a task picked for the whole batch."""
        return self.task_combo.currentData()

    def set_choice(self, choice: str) -> None:
        self.task_combo.setCurrentIndex(self.task_combo.findData(choice))

    # --- running ------------------------------------------------------------------------
    def start(self) -> None:
        for entry in self.entries:
            if entry.status in (QUEUED, FAILED, CANCELLED) and entry.job is None:
                entry.job = self.make_job(entry.path)
                entry.status, entry.detail = QUEUED, _("waiting")
                self._show(entry)
                self.runner.submit(entry.job)
        self._update_buttons()

    def cancel(self) -> None:
        for entry in self.entries:
            if entry.job is not None:
                self.runner.cancel(entry.job)

    def is_running(self) -> bool:
        return any(e.job is not None for e in self.entries)

    # --- runner signals ---------------------------------------------------------------
    def _entry(self, job: Job) -> Entry | None:
        if job.kind != BATCH:
            return None
        return next((e for e in self.entries if e.job is job), None)

    def _on_started(self, job: Job) -> None:
        if entry := self._entry(job):
            entry.status, entry.detail = RUNNING, _("reading")
            self._show(entry)

    def _on_progress(self, job: Job, done: int, total: int) -> None:
        if entry := self._entry(job):
            entry.detail = _("tile {done}/{total}").format(done=done, total=total)
            self._show(entry)

    def _on_succeeded(self, job: Job, outcome) -> None:
        if entry := self._entry(job):
            if not isinstance(outcome, AutoOutcome):
                entry.status, entry.output = DONE, Path(outcome)
                task = job.context.get("task")
                entry.detail = entry.output.name + (f" ({TITLES[task]}, picked for the batch)"
                                                    if task in TASKS else "")
            elif outcome.output is None:
                entry.status, entry.detail = LEFT, outcome.detection.summary()
            else:
                found = outcome.detection
                said = f"not sure: {found.odds()}" if found.unsure else \
                    found.summary()[:1].lower() + found.summary()[1:]
                entry.status, entry.output = DONE, Path(outcome.output)
                entry.detail = f"{entry.output.name} ({TITLES[found.likely_task]}: {said})"
            self._show(entry)

    def _on_failed(self, job: Job, title: str, message: str) -> None:
        if entry := self._entry(job):
            entry.status, entry.detail = FAILED, message.splitlines()[0]
            self._show(entry)

    def _on_cancelled(self, job: Job) -> None:
        if entry := self._entry(job):
            entry.status, entry.detail = CANCELLED, ""
            self._show(entry)

    def _on_finished(self, job: Job) -> None:
        if entry := self._entry(job):
            entry.job = None
            self._update_buttons()
            if not self.is_running():
                self.finished.emit()

    # --- display --------------------------------------------------------------------------
    def _show(self, entry: Entry) -> None:
        row = self.entries.index(entry)
        text = _(entry.status) + (f" — {entry.detail}" if entry.detail else "")
        item = self.table.item(row, 1)
        item.setText(text)
        item.setToolTip(str(entry.output) if entry.output else entry.detail)
        item.setForeground(Qt.GlobalColor.darkRed if entry.status == FAILED else
                           Qt.GlobalColor.darkGreen if entry.status == DONE else
                           self.palette().text().color())

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running and any(e.status not in (DONE, LEFT)
                                                       for e in self.entries))
        self.task_combo.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.clear_button.setEnabled(not running and any(e.status in FINISHED for e in self.entries))
