"""Each job carries what its outcome does: the runner calls a job's ``on_success`` with
its result (``on_failure`` with the failure's title and message), on the runner's (GUI)
thread, before its ``succeeded`` (``failed``) signal; never once the runner is shut down."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from cmfnet_core.engine import Cancelled  # noqa: E402
from plugin.app.jobs import Job  # noqa: E402
from plugin.app.workers import JobRunner  # noqa: E402

TIMEOUT = 30_000  # ms


@pytest.fixture
def runner():
    runner = JobRunner("test-callbacks")
    yield runner
    runner.shutdown()


def test_a_jobs_own_callback_gets_its_result_on_the_gui_thread_before_the_signal(qtbot, runner):
    seen = []
    runner.succeeded.connect(lambda job, result: seen.append(("signal", result)))
    job = Job("any", lambda progress, cancel: 42,
              on_success=lambda j, result: seen.append(("callback", j, result, threading.get_ident())))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(job)
    assert seen == [("callback", job, 42, threading.get_ident()), ("signal", 42)]
    assert job.thread_id != threading.get_ident()  # the work itself ran on the worker


def test_no_callback_for_a_failed_or_cancelled_job(qtbot, runner):
    called = []

    def broken(progress, cancel):
        raise ValueError("not a photo")

    def cancelled(progress, cancel):
        raise Cancelled()

    for work in (broken, cancelled):
        with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
            runner.submit(Job("any", work, on_success=lambda j, r: called.append(r)))
    pending = Job("any", lambda p, c: "late", on_success=lambda j, r: called.append(r))
    hold = threading.Event()
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(Job("any", lambda p, c: hold.wait(TIMEOUT / 1000)))
        runner.submit(pending)
        runner.cancel(pending)  # dropped before it started
        hold.set()
    assert called == []


def test_a_failed_job_tells_its_own_on_failure_before_the_signal(qtbot, runner):
    seen = []
    runner.failed.connect(lambda job, title, message: seen.append(("signal", title)))

    def broken(progress, cancel):
        raise MemoryError()

    job = Job("any", broken, on_success=lambda j, r: seen.append(("success", r)),
              on_failure=lambda j, title, message: seen.append(
                  ("callback", j, title, "tile size" in message)))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT):
        runner.submit(job)
    assert seen == [("callback", job, "Out of memory", True), ("signal", "Out of memory")]


def test_no_callback_once_the_runner_is_shut_down(qtbot):
    runner = JobRunner("test-callbacks-closing")
    called, started = [], threading.Event()

    def slow(progress, cancel):
        started.set()
        return "done"

    runner.submit(Job("any", slow, on_success=lambda j, r: called.append(r)))
    assert started.wait(TIMEOUT / 1000)
    assert runner.shutdown()  # the outcome is still queued for the GUI thread
    qtbot.wait(50)  # let queued signals arrive
    assert called == []
