"""The Weights dialog: per task, which weights are installed and used; download the authors'.

The download runs :func:`cmfnet_core.download.download_weights` as a job on the
dialog's own :class:`~plugin.app.workers.JobRunner` (a 200 MB download must
not hold up previews on the engine's), so the GUI thread only hears progress
and outcomes by signals. Errors are said in plain words (offline, proxy, disk
full, not the weights) with the manual route: the release page and Import.

:class:`LightWeightsBar` is the info bar the window shows, once per session,
when a photo was restored with the light bundled deblur or deraindrop weights.
"""
from __future__ import annotations

import html
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFrame, QGridLayout, QHBoxLayout,
                             QLabel, QProgressBar, QPushButton, QToolButton, QVBoxLayout, QWidget)

from cmfnet_core.download import APPROX_MB, MIRROR_ENV, RELEASE_PAGE, SOURCES, DownloadError, Rate
from cmfnet_core.i18n import N_, Translated, _
from cmfnet_core.tasks import TASK_TITLES
from cmfnet_core.weights import TASKS, default_weights, installed_weights, set_default
from cmfnet_core.weights_commands import runs_light_weights

from . import jobs
from .jobs import Job
from .workers import JobRunner

TITLES = TASK_TITLES  # in the current language when read
DOWNLOAD, IMPORT = "download-weights", jobs.IMPORT
PROGRESS_INTERVAL_S = 0.1  # the progress bar's pace, at most (plus one step per percent)


def download_all_text() -> str:
    return _("Download the authors' weights (about {size} MB each)").format(size=APPROX_MB)


# What went wrong, in a user's words, by DownloadError.reason
HEADLINES = Translated({
    "offline": N_("Could not reach the download server. Are you connected to the internet?"),
    "proxy": N_("Your network's proxy refused the download."),
    "certificate": N_("A proxy or firewall is intercepting the secure connection."),
    "disk": N_("There is not enough free disk space for the download."),
    "content": N_("What arrived is not the authors' weights file."),
    "stalled": N_("The download stopped making progress."),
    "http": N_("The download failed."),
    "busy": N_("This file is already being downloaded (in another window or a terminal)."),
})


def download_work(task: str, url: str | None = None) -> jobs.Work:
    """The job: download, check and install ``task``'s weights. Progress is in kB (Qt ints
    are 32-bit), a few times a second or per percent rather than per 64 KiB chunk (each is a
    signal queued to the GUI thread); a DownloadError is the job's result, so the dialog can
    word it."""
    def work(progress, cancel):
        from cmfnet_core.download import Throttle, download_weights

        def kb(done: int, total: int | None) -> None:
            progress(done // 1000, (total or 0) // 1000)

        throttled = Throttle(kb, PROGRESS_INTERVAL_S, each_percent=True)
        try:
            return download_weights(task, url=url, progress=throttled, cancel=cancel)
        except DownloadError as exc:
            return exc
    return work



class WeightsDialog(QDialog):
    """Per task: what is used (and a choice among what is installed), Download, Import."""

    weights_changed = pyqtSignal(str)  # a task whose default weights changed

    def __init__(self, prompts=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Weights"))
        self.prompts = prompts
        self.runner = JobRunner("cmfnet-download", self)
        self.runner.progress.connect(self._on_progress)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busy_changed.connect(self._on_busy)
        self._rate = Rate()

        intro = QLabel(_("The app comes with light weights of its own. The CMFNet authors' full-size "
                         "weights restore blur and raindrops visibly better, and run slower."))
        intro.setWordWrap(True)
        grid = QGridLayout()
        self.choices: dict[str, QComboBox] = {}
        self.download_buttons: dict[str, QPushButton] = {}
        self.import_buttons: dict[str, QPushButton] = {}
        for row, task in enumerate(TASKS):
            title = QLabel(f"<b>{TITLES[task]}</b>")
            choice = QComboBox()
            choice.setToolTip(_("The weights this task uses"))
            choice.activated.connect(lambda index, t=task: self._choose(t, index))
            fetch = QPushButton(_("Download"))
            fetch.setToolTip(_("Download {file} (about {size} MB) from the authors' release").format(
                file=SOURCES[task], size=APPROX_MB))
            fetch.clicked.connect(lambda _checked=False, t=task: self.download([t]))
            bring = QPushButton(_("Import…"))
            bring.setToolTip(_("Use a weights file you have (e.g. a .pth downloaded by hand)"))
            bring.clicked.connect(lambda _checked=False, t=task: self.import_file(t))
            grid.addWidget(title, row, 0)
            grid.addWidget(choice, row, 1)
            grid.addWidget(fetch, row, 2)
            grid.addWidget(bring, row, 3)
            self.choices[task], self.download_buttons[task], self.import_buttons[task] = choice, fetch, bring
        grid.setColumnStretch(1, 1)

        self.download_all = QPushButton(download_all_text())
        self.download_all.clicked.connect(lambda: self.download(self.missing()))
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.bar, 1)
        progress_row.addWidget(self.cancel_button)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.RichText)
        self.error.setOpenExternalLinks(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.error.setStyleSheet("QLabel { color: #8a1f11; }")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.hide)  # closing hides: a download goes on in the background

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addWidget(self.download_all)
        layout.addWidget(self.status)
        layout.addLayout(progress_row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._show_progress(False)
        self.error.hide()
        self.refresh()

    # --- the list ---------------------------------------------------------------------------
    def refresh(self) -> None:
        busy = self.runner.is_busy()
        # the folders are read once per task here; the default and what is missing come
        # from that one listing (the files are not opened: sidecars only, no hashing)
        listing = {task: installed_weights(task) for task in TASKS}
        for task, entries in listing.items():
            default = default_weights(task, entries)
            combo = self.choices[task]
            combo.clear()
            for entry in entries:
                combo.addItem(entry.description, entry)
                combo.setItemData(combo.count() - 1, str(entry.path), Qt.ItemDataRole.ToolTipRole)
                if default is not None and entry.path == default.path:
                    combo.setCurrentIndex(combo.count() - 1)
            if not entries:
                combo.addItem(_("none installed"))
            combo.setEnabled(len(entries) > 1 and not busy)
            have = any(e.downloaded for e in entries)
            self.download_buttons[task].setText(_("Downloaded") if have else _("Download"))
            self.download_buttons[task].setEnabled(not have and not busy)
            self.import_buttons[task].setEnabled(not busy)
        self.download_all.setEnabled(bool(self.missing(listing)) and not busy)

    def missing(self, listing: dict[str, list] | None = None) -> list[str]:
        """The tasks without the authors' weights, in ``listing`` (task: installed weights)
        or, without one, as the folders are now."""
        if listing is None:
            listing = {task: installed_weights(task) for task in TASKS}
        return [t for t in TASKS if not any(e.downloaded for e in listing[t])]

    def _choose(self, task: str, index: int) -> None:
        entry = self.choices[task].itemData(index)
        if entry is None:
            return
        set_default(task, "bundled" if entry.bundled else entry.path)
        self.weights_changed.emit(task)
        self.refresh()

    # --- download and import -----------------------------------------------------------------
    def download(self, tasks: list[str], url: str | None = None) -> list[Job]:
        """Queue the downloads of ``tasks`` (one after another)."""
        self.error.hide()
        submitted = []
        for task in tasks:
            submitted.append(self.runner.submit(Job(DOWNLOAD, download_work(task, url),
                                                    label=TITLES[task], context={"task": task})))
        return submitted

    def import_file(self, task: str) -> Job | None:
        source = self.prompts.weights_file(TITLES[task]) if self.prompts else None
        if not source:
            return None
        self.error.hide()
        return self.runner.submit(Job(IMPORT, jobs.import_work(task, source),
                                      label=TITLES[task], context={"task": task, "source": source}))

    def cancel(self) -> None:
        self.runner.cancel_all()
        self.status.setText(_("Cancelling… (what was downloaded is kept for the next try)"))

    def shutdown(self) -> None:
        self.runner.shutdown()

    # --- runner outcomes ---------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self._show_progress(busy)
        self.refresh()

    def _show_progress(self, visible: bool) -> None:
        self.bar.setVisible(visible)
        self.cancel_button.setVisible(visible)
        if visible:
            self.bar.setRange(0, 0)
            self._rate = Rate()

    def _on_progress(self, job: Job, done_kb: int, total_kb: int) -> None:
        if job.kind != DOWNLOAD:
            return
        title = TITLES[job.context["task"]]
        speed, left = self._rate.update(done_kb * 1000, total_kb * 1000 or None)
        if total_kb and done_kb >= total_kb:
            self.bar.setRange(0, 0)
            self.status.setText(_("{task}: checking and installing the file…").format(task=title))
            return
        self.bar.setRange(0, max(total_kb, 1) if total_kb else 0)
        self.bar.setValue(min(done_kb, total_kb) if total_kb else 0)
        done = f"{done_kb / 1000:.1f}"
        text = (_("{task}: {done} of {total} MB").format(task=title, done=done, total=f"{total_kb / 1000:.0f}")
                if total_kb else _("{task}: {done} MB").format(task=title, done=done))
        if speed:
            text += f" — {speed / 1e6:.1f} MB/s"
        if left is not None:
            text += " — " + _("about {duration} left").format(duration=_duration(left))
        self.status.setText(text)

    def _on_succeeded(self, job: Job, result) -> None:
        task = job.context["task"]
        if isinstance(result, DownloadError):
            self._show_error(task, result)
            return
        if job.kind == IMPORT:
            set_default(task, result)
            self.status.setText(_("{task}: imported {name}; it is used from now on").format(
                task=TITLES[task], name=Path(job.context["source"]).name))
        else:
            self.status.setText(_("{task}: the authors' weights are installed and used from now on "
                                  "({size} MB, sha256 {sha256}…)").format(
                task=TITLES[task], size=f"{result.size / 1e6:.0f}", sha256=result.sha256[:12]))
        self.weights_changed.emit(task)
        self.refresh()

    def _on_failed(self, job: Job, title: str, message: str) -> None:
        self.status.setText("")
        self.error.setText(f"<b>{html.escape(title)}</b><br>{html.escape(message)}")
        self.error.show()

    def _on_cancelled(self, job: Job) -> None:
        if job.kind == DOWNLOAD:
            self.status.setText(_("{task}: download cancelled; what arrived is kept, and the next "
                                  "Download goes on from there").format(task=TITLES[job.context["task"]]))

    def _show_error(self, task: str, exc: DownloadError) -> None:
        self.runner.cancel_all()  # the other tasks would fail the same way
        self.status.setText("")
        headline = HEADLINES.get(exc.reason, HEADLINES["http"])
        manual = ("" if exc.reason in ("disk", "busy") else
                  "<br><br>" + _("You can also download <b>{file}</b> by hand from the "
                                 "<a href='{page}'>CMFNet release page</a> and use <b>Import…</b>; "
                                 "behind a firewall, set {variable} to a mirror's address.").format(
                      file=SOURCES[task], page=RELEASE_PAGE, variable=MIRROR_ENV))
        self.error.setText(f"<b>{TITLES[task]}: {html.escape(headline)}</b><br>"
                           f"<small>{html.escape(str(exc))}</small>{manual}")
        self.error.show()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


class LightWeightsBar(QFrame):
    """A dismissable note above the photo: these light weights do little; the authors' do more."""

    download_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lightWeightsBar")
        self.setStyleSheet("#lightWeightsBar { background: #e8f1fb; border: 1px solid #9dbfe3; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton(_("Get the authors' weights…"))
        self.button.clicked.connect(self.download_requested)
        self.button.clicked.connect(self.hide)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip(_("Dismiss"))
        close.clicked.connect(self.hide)
        self.close_button = close
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        layout.addWidget(close)
        self.offered = False
        self.hide()

    def offer(self, task: str) -> bool:
        """Show the note once per session after ``task`` ran on light bundled deblur or
        deraindrop weights (the bundled dehaze weights hold their own)."""
        if self.offered or not runs_light_weights(task):
            return False
        self.offered = True
        self.label.setText(
            _("<b>Restored with the light weights that come with the app.</b> For {task} "
              "they change little; the CMFNet authors' full-size weights (about {size} MB) "
              "restore visibly better.").format(task=TITLES[task].lower(), size=APPROX_MB))
        self.show()
        return True
