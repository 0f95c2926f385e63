"""Run jobs off the GUI thread, one at a time, and report back by signals.

::

    GUI thread                               worker QThread
    ----------                               --------------
    runner.submit(job) -> pending queue
    runner._dispatch(job) --- queued ---->   _Worker.run(job)
                                               job.work(progress, token)
    runner.progress  <------- queued -----     progress(done, total)     (per tile)
    job.on_success / on_failure, then
    runner.succeeded / cancelled / failed <-   exactly one of them
    runner.finished  <------- queued -----     always, from ``finally``
    (next pending job dispatched)

``runner.cancel(job)`` sets the job's CancelToken from the GUI thread; the
engine checks it between tiles, so a running job stops within one tile.
Errors never escape the worker: they arrive as ``failed(job, title, message)``
(:func:`cmfnet_core.errors.classify`'s title, message and next step; only a bug's
traceback is logged)
and ``finished`` is emitted whatever happened, so the window can never be
left stuck in "busy".
"""
from __future__ import annotations

import logging
import threading
from collections import deque

from PyQt6.QtCore import QCoreApplication, QObject, QThread, pyqtSignal, pyqtSlot

from cmfnet_core.engine import Cancelled
from cmfnet_core.errors import classify

from .jobs import Job

log = logging.getLogger(__name__)


class _Worker(QObject):
    """Lives in the worker thread; runs whatever job it is handed."""

    started = pyqtSignal(object)
    progress = pyqtSignal(object, int, int)
    succeeded = pyqtSignal(object, object)
    cancelled = pyqtSignal(object)
    failed = pyqtSignal(object, str, str)
    finished = pyqtSignal(object)

    @pyqtSlot(object)
    def run(self, job: Job) -> None:
        job.thread_id = threading.get_ident()
        try:
            self.started.emit(job)
            job.token.raise_if_cancelled()
            result = job.work(lambda done, total: self.progress.emit(job, done, total), job.token)
        except Cancelled:
            self.cancelled.emit(job)
        except Exception as exc:  # reported, never swallowed: the window shows a dialog
            problem = classify(exc)
            if problem.expected:  # a bad photo, missing weights...: the dialog says it all
                log.info("job %s (%s) failed: %s", job.id, job.kind, problem.message)
            else:  # a bug: its traceback is what a report needs
                log.exception("job %s (%s) failed", job.id, job.kind)
            self.failed.emit(job, problem.title, problem.dialog_text())
        else:
            self.succeeded.emit(job, result)
        finally:
            self.finished.emit(job)


class JobRunner(QObject):
    """A serial queue of jobs executed on its own QThread.

    A job's own ``on_success`` handles its result, its ``on_failure`` its failure (on
    the thread the runner lives in);
    signals carry the :class:`Job` first, for progress panels and the like.
    """

    started = pyqtSignal(object)
    progress = pyqtSignal(object, int, int)
    succeeded = pyqtSignal(object, object)
    cancelled = pyqtSignal(object)
    failed = pyqtSignal(object, str, str)
    finished = pyqtSignal(object)
    busy_changed = pyqtSignal(bool)

    _dispatch = pyqtSignal(object)

    def __init__(self, name: str = "cmfnet-worker", parent: QObject | None = None):
        super().__init__(parent)
        self._pending: deque[Job] = deque()
        self._current: Job | None = None
        self._closed = False
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._dispatch.connect(self._worker.run)  # queued: the worker lives in the other thread
        self._worker.started.connect(self.started)
        self._worker.progress.connect(self.progress)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.cancelled.connect(self.cancelled)
        self._worker.failed.connect(self._on_failed)
        self._worker.finished.connect(self._on_finished)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        if app := QCoreApplication.instance():  # never leave a running thread behind at exit
            app.aboutToQuit.connect(self.shutdown)

    # --- queries ---------------------------------------------------------------------
    @property
    def current(self) -> Job | None:
        return self._current

    def jobs(self) -> list[Job]:
        """The running job (if any) and the pending ones, in order."""
        return ([self._current] if self._current else []) + list(self._pending)

    def is_busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    def worker_thread(self) -> QThread:
        return self._thread

    # --- commands ----------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        if self._closed:  # e.g. a late outcome's handler while the window closes: drop it
            log.debug("job %s (%s) submitted after shutdown: dropped", job.id, job.kind)
            job.cancel()
            return job
        was_busy = self.is_busy()
        self._pending.append(job)
        if self._current is None:
            self._next()
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def cancel(self, job: Job) -> None:
        """Stop ``job``: a pending one is dropped at once, a running one within one tile."""
        job.cancel()
        if job in self._pending:
            self._pending.remove(job)
            self.cancelled.emit(job)
            self.finished.emit(job)
            self._emit_idle_if_done()

    def cancel_kind(self, *kinds: str) -> None:
        for job in self.jobs():
            if job.kind in kinds:
                self.cancel(job)

    def cancel_all(self) -> None:
        for job in self.jobs():
            self.cancel(job)

    def shutdown(self, wait_ms: int = 60_000) -> bool:
        """Cancel everything and stop the thread; returns once the current tile is done."""
        if self._closed:
            return True
        self._closed = True
        self.cancel_all()
        self._thread.quit()
        stopped = self._thread.wait(wait_ms)
        self._current = None  # its queued "finished" will not be delivered any more
        self._pending.clear()
        return stopped

    # --- internals ---------------------------------------------------------------------
    def _next(self) -> None:
        if self._pending:
            self._current = self._pending.popleft()
            self._dispatch.emit(self._current)

    @pyqtSlot(object, object)
    def _on_succeeded(self, job: Job, result) -> None:
        if job.on_success is not None and not self._closed:  # closed: no one is left to show it
            job.on_success(job, result)
        self.succeeded.emit(job, result)

    @pyqtSlot(object, str, str)
    def _on_failed(self, job: Job, title: str, message: str) -> None:
        if job.on_failure is not None and not self._closed:
            job.on_failure(job, title, message)
        self.failed.emit(job, title, message)

    @pyqtSlot(object)
    def _on_finished(self, job: Job) -> None:
        if job is self._current:
            self._current = None
        self.finished.emit(job)
        if not self._closed:
            self._next()
        self._emit_idle_if_done()

    def _emit_idle_if_done(self) -> None:
        if not self.is_busy():
            self.busy_changed.emit(False)
