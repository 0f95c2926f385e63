"""The desktop app, driven through its real widgets (pytest-qt, offscreen).

The engine is real: the small official-format checkpoint (n_feat 16) is
imported into the test's own user folder, and tiles are 64 px with a 16 px
overlap, so a 96 x 128 photo runs as 12 tiles (each with 8 px of context) in well under a second.
"""
from __future__ import annotations

import os
import threading
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QMimeData, QPointF, QRect, QRectF, QSettings, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from cmfnet_core import imageio  # noqa: E402
from cmfnet_core.engine import (LIGHT_CONTEXT, PREVIEW_LONG_SIDE, Cancelled, CancelToken,  # noqa: E402
                                whole_tile_shape)
from plugin.app import jobs  # noqa: E402
from plugin.app.dialogs import DISCARD  # noqa: E402
from plugin.app.jobs import EngineOptions, Job  # noqa: E402
from plugin.app.settings import AppSettings  # noqa: E402
from plugin.app.window import FIRST_LOOK_TITLE, REFINING_TITLE, MainWindow  # noqa: E402
from plugin.app.workers import JobRunner  # noqa: E402
from tests.test_hardening import leftovers, snapshot  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
TIMEOUT = 30_000  # ms; generous, the machine running CI may be busy
TEST_OPTIONS = EngineOptions(tile=64, overlap=16, backend="paddle", threads=1)


def framed(height: int, width: int) -> tuple[int, int]:
    """The tile a preview of this size runs as: framed by the light networks' context."""
    return whole_tile_shape(height, width, LIGHT_CONTEXT)


class ScriptedPrompts:
    """Answers the window's blocking questions without showing a dialog."""

    def __init__(self):
        self.open_answer: list[str] = []
        self.save_answer: str | None = None
        self.weights_answer: str | None = None
        self.overwrite_answer = False
        self.unsaved_answer = DISCARD
        self.discard_answer = True
        self.asked: list[str] = []

    def open_files(self, folder):
        self.asked.append("open")
        return self.open_answer

    def save_path(self, suggested, title=""):
        self.asked.append(f"save_path:{Path(suggested).name}")
        return self.save_answer

    def weights_file(self, task_title):
        self.asked.append("weights")
        return self.weights_answer

    def confirm_overwrite_original(self, path):
        self.asked.append("overwrite")
        return self.overwrite_answer

    def unsaved_result(self, name):
        self.asked.append("unsaved")
        return self.unsaved_answer

    def discard_result(self, name):
        self.asked.append("discard")
        return self.discard_answer


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path) -> AppSettings:
    """Settings in a temporary INI file (QSettings' default location is redirected too)."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    store = QSettings(str(tmp_path / "app.ini"), QSettings.Format.IniFormat)
    app_settings = AppSettings(store)
    app_settings.set_engine_options(TEST_OPTIONS)
    app_settings.set_task("deblur")
    return app_settings


@pytest.fixture
def no_bundled_weights(monkeypatch, tmp_path):
    """As on a fresh install without bundled defaults: only imported weights count."""
    import cmfnet_core.weights

    monkeypatch.setattr(cmfnet_core.weights, "BUNDLED_DIR", tmp_path / "no-bundled-weights")


@pytest.fixture
def weights(small_weights) -> Path:
    """The small checkpoint imported as the user's official deblur weights."""
    from cmfnet_core.weights import import_weights

    return import_weights("deblur", small_weights)


@pytest.fixture
def photo(tmp_path) -> Path:
    """A 96 x 128 crop of a sample photo as PNG: 12 tiles of 64 px with overlap 16 (and 8 px of context)."""
    import cv2

    image = cv2.imread(str(SAMPLES / "deblur_1.png"))[150:246, 250:378]
    folder = tmp_path / "photos"
    folder.mkdir()
    path = folder / "street.png"
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def large_photo(tmp_path) -> Path:
    """A 400 x 600 crop as PNG: large enough for a first look (256 px) before the final
    preview (512 px); a 3:2 camera photo, whose first look the warm-up at start builds third."""
    import cv2

    image = cv2.imread(str(SAMPLES / "deblur_1.png"))[:400, :600]
    folder = tmp_path / "large"
    folder.mkdir()
    path = folder / "harbour.png"
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def make_window(qtbot, settings):
    windows = []

    def make(warm_up: bool = False) -> MainWindow:
        window = MainWindow(settings=settings, prompts=ScriptedPrompts(), warm_up=warm_up)
        qtbot.addWidget(window)
        # small enough that a 600 x 400 photo is shown below 512 px: its preview's final
        # pass (the screen's resolution, at least 512 px) is then the 512 px thumbnail
        window.resize(560, 420)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()  # idempotent; the threads are stopped even if a test failed


@pytest.fixture
def window(make_window, weights) -> MainWindow:
    return make_window()


class FirstTileHold:
    """Holds a run (Apply, a batch photo, a preview pass, a warm-up) on its worker thread
    right after its first step (a tile; a warm-up's first shape), until the test releases it
    or the run is cancelled.

    What the tests check (the event loop runs meanwhile, Cancel or closing stops the run
    part way) then happens at one known point of the run instead of racing fast tiles."""

    def __init__(self):
        self.released = threading.Event()
        self.held_on: list[int] = []  # the threads that were held, one entry a hold
        self.released_in_time: list[bool] = []
        self.tiles_done: list[int] = []  # every tile the worker finished, seen on its own thread

    def release(self) -> None:
        self.released.set()

    def wrap(self, work):
        def held(progress, cancel):
            original_cancel = cancel.cancel

            def cancel_and_release():  # the flag is set first, so the run stops at the next tile
                original_cancel()
                self.released.set()

            cancel.cancel = cancel_and_release

            def report(done, total):
                self.tiles_done.append(done)
                progress(done, total)  # queued to the GUI thread before the hold
                if done == 1:
                    self.held_on.append(threading.get_ident())
                    # a hang guard only: the GUI thread or the cancel releases it
                    self.released_in_time.append(self.released.wait(TIMEOUT / 1000))

            return work(report, cancel)
        return held


@pytest.fixture
def first_tile_hold(monkeypatch) -> FirstTileHold:
    hold = FirstTileHold()
    for name in ("restore_work", "batch_work"):
        make = getattr(jobs, name)
        monkeypatch.setattr(jobs, name, lambda *a, make=make, **k: hold.wrap(make(*a, **k)))
    yield hold
    hold.release()  # a failed test must not leave a worker waiting


@pytest.fixture
def final_preview_hold(monkeypatch) -> FirstTileHold:
    """Holds each preview's final pass (the screen's resolution, at least 512 px) once its
    first tile is done, before it returns."""
    hold = FirstTileHold()
    make = jobs.preview_work

    def held(*args, long_side=PREVIEW_LONG_SIDE, **kwargs):
        work = make(*args, long_side=long_side, **kwargs)
        return hold.wrap(work) if long_side >= PREVIEW_LONG_SIDE else work

    monkeypatch.setattr(jobs, "preview_work", held)
    yield hold
    hold.release()


@pytest.fixture
def startup_warmup_hold(monkeypatch) -> FirstTileHold:
    """Holds the warm-up for typical photos (the one at start) after its first shape."""
    hold = FirstTileHold()
    make = jobs.warmup_work

    def held(*args, photos=None, **kwargs):
        work = make(*args, photos=photos, **kwargs)
        return hold.wrap(work) if photos is None else work

    monkeypatch.setattr(jobs, "warmup_work", held)
    yield hold
    hold.release()


def wait_job(qtbot, runner: JobRunner, kind: str, trigger, match=None):
    """Run ``trigger`` and wait until a job of ``kind`` (for which ``match(job)`` holds, if
    given) has finished; return (job, outcome)."""
    outcome = {}
    runner.succeeded.connect(lambda j, r: outcome.setdefault(j, ("succeeded", r)))
    runner.failed.connect(lambda j, t, m: outcome.setdefault(j, ("failed", (t, m))))
    runner.cancelled.connect(lambda j: outcome.setdefault(j, ("cancelled", None)))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT,
                          check_params_cb=lambda j: j.kind == kind and (match is None or match(j))) as blocker:
        trigger()
    job = blocker.args[0]
    return job, outcome.get(job, ("?", None))


def is_final(job: Job) -> bool:
    return job.context["final"]


def pick_for_the_batch(window: MainWindow, task: str) -> None:
    """Tell the batch to run ``task`` on every photo (its default is Automatic)."""
    window.batch.task_combo.setCurrentIndex(window.batch.task_combo.findData(task))  # as a user would
    assert window.batch.choice() == task


def open_photo(qtbot, window: MainWindow, path: Path):
    """Open ``path`` and wait for its thumbnail preview (reading, then previewing; for a large
    photo a first look comes before: this waits for the final one)."""
    return wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([path]), match=is_final)


def shown_after(window: MainWindow) -> list:
    """Every "after" layer the view is given from now on: (width, height), or None (cleared)."""
    shown = []
    set_after = window.view.set_after

    def record(image):
        shown.append(None if image is None else (image.width(), image.height()))
        set_after(image)

    window.view.set_after = record
    return shown


HAZY = {"deblur": 0.05, "dehaze": 0.87, "deraindrop": 0.05, "none": 0.03}
FINE = {"deblur": 0.03, "dehaze": 0.03, "deraindrop": 0.03, "none": 0.91}
UNSURE = {"deblur": 0.3, "dehaze": 0.45, "deraindrop": 0.1, "none": 0.15}


class FakeDetector:
    """Stands in for the trained detector: answers what the test says for each photo size,
    notes the thread that asked, and can hold the asking thread until released."""

    def __init__(self):
        self.verdicts: dict[tuple[int, int], dict] = {}
        self.threads: list[int] = []
        self.hold: threading.Event | None = None

    def __call__(self, image, detector=None):
        from cmfnet_core.detect import Detection

        self.threads.append(threading.get_ident())
        if self.hold is not None:
            assert self.hold.wait(TIMEOUT / 1000), "the test never released the detector"
        return Detection(self.verdicts[image.shape[:2]])


@pytest.fixture
def detector(monkeypatch) -> FakeDetector:
    import cmfnet_core.detect

    fake = FakeDetector()
    monkeypatch.setattr(cmfnet_core.detect, "detect", fake)
    yield fake
    if fake.hold is not None:
        fake.hold.set()  # a failed test must not leave a worker waiting


@pytest.fixture
def dehaze_weights(small_weights) -> Path:
    """The small checkpoint as the dehaze weights too: previews in Dehaze stay quick."""
    from cmfnet_core.weights import import_weights

    return import_weights("dehaze", small_weights)


# --- the window ---------------------------------------------------------------------------

def test_new_user_without_weights_sees_banner_and_can_import(qtbot, no_bundled_weights, make_window,
                                                             small_weights):
    window = make_window()
    assert window.stack.currentWidget() is window.welcome
    assert window.banner.isVisible() and "No weights installed" in window.banner.label.text()
    assert not window.apply_action.isEnabled()
    window.prompts.weights_answer = str(small_weights)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.IMPORT, window.banner.button.click)
    assert outcome == "succeeded"
    assert not window.banner.isVisible()
    assert "official" in window.weights_label.text()


def test_model_warms_up_in_the_background_at_start(qtbot, make_window, weights):
    window = make_window(warm_up=True)
    assert [j.kind for j in window.engine.jobs()] == [jobs.WARMUP]
    assert not window.progress.isVisible()  # silent: nothing for the user to wait for
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.WARMUP, lambda: None)
    assert outcome == "succeeded" and len(window.cache._items) == 1


def test_open_shows_photo_then_preview(qtbot, window, photo):
    job, (outcome, preview) = open_photo(qtbot, window, photo)
    assert outcome == "succeeded"
    doc = window.document
    assert doc.path == photo and doc.pixels.shape == (96, 128, 3)
    assert window.stack.currentIndex() == 1
    assert doc.preview is not None and doc.preview.shape == doc.pixels.shape
    assert window.view.item.has_after()
    assert "street.png" in window.windowTitle()
    assert window.settings.recent_files()[0] == str(photo.resolve())


def final_pass_held(job, done, total) -> bool:
    """A final preview pass has run its tile (and is held there by ``final_preview_hold``)."""
    return job.kind == jobs.PREVIEW and is_final(job) and done == 1


def outcomes_of(runner: JobRunner) -> dict:
    outcomes = {}
    runner.succeeded.connect(lambda j, r: outcomes.setdefault(j, "succeeded"))
    runner.cancelled.connect(lambda j: outcomes.setdefault(j, "cancelled"))
    runner.failed.connect(lambda j, t, m: outcomes.setdefault(j, "failed"))
    return outcomes


def test_a_large_photo_shows_a_first_look_then_the_final_preview_in_its_place(
        qtbot, window, large_photo, fake_backends, final_preview_hold):
    """A 600 px photo's preview: first at 256 px (a quarter of the pixels, so about a quarter
    of the time), on screen while the 512 px one runs, which then takes its place. Both are
    drawn over the whole photo: nothing moves when one replaces the other."""
    shown = shown_after(window)
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT, check_params_cb=final_pass_held):
        window.open_paths([large_photo])
    # the final pass is held after its tile: this is what the user sees meanwhile
    doc, view = window.document, window.view
    assert shown == [(256, 171)] and doc.preview.shape == (171, 256, 3) and not doc.preview_final
    assert window.statusBar().currentMessage() == ("Deblur preview: a first look at 256 × 171, Before "
                                                   "shown at the same resolution — refining…")
    assert window.progress.isVisible() and window.progress.label.text().startswith(REFINING_TITLE)
    placed = (view.item.image_rect(), view.scale_factor())
    assert placed[0] == QRectF(0, 0, 600, 400)

    job, (outcome, final) = wait_job(qtbot, window.engine, jobs.PREVIEW, final_preview_hold.release,
                                     match=is_final)
    assert outcome == "succeeded" and final.shape == (341, 512, 3)
    assert shown == [(256, 171), (512, 341)] and doc.preview is final and doc.preview_final
    assert window.statusBar().currentMessage().startswith("Deblur preview at 512 × 341")
    assert (view.item.image_rect(), view.scale_factor()) == placed
    assert not window.progress.isVisible()


def test_the_first_look_has_its_own_title_while_it_runs(qtbot, window, large_photo, fake_backends):
    titles = []
    window.engine.started.connect(lambda job: titles.append(window.progress.label.text()))
    open_photo(qtbot, window, large_photo)
    previews = [t for t in titles if t.startswith("Preview")]
    assert previews == [f"{FIRST_LOOK_TITLE}: starting…", f"{REFINING_TITLE}: starting…"]


def test_a_task_change_during_the_final_pass_cancels_it_and_its_result_is_never_shown(
        qtbot, window, dehaze_weights, large_photo, fake_backends, final_preview_hold):
    shown = shown_after(window)
    outcomes = outcomes_of(window.engine)
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT, check_params_cb=final_pass_held) as held:
        window.open_paths([large_photo])
    stale = held.args[0]
    assert stale.context["task"] == "deblur" and shown == [(256, 171)]

    job, (outcome, _) = wait_job(
        qtbot, window.engine, jobs.PREVIEW,
        lambda: window.task_combo.setCurrentIndex(window.task_combo.findData("dehaze")),
        match=lambda j: is_final(j) and j.context["task"] == "dehaze")
    assert outcome == "succeeded"
    # its tile had run when the task changed; the result was dropped, not delivered
    assert outcomes[stale] == "cancelled" and final_preview_hold.released_in_time[0]
    # Deblur's first look, cleared at the change, then Dehaze's two passes: no Deblur 512 px
    assert shown == [(256, 171), None, (256, 171), (512, 341)]
    assert window.document.preview_task == "dehaze" and window.document.preview_final


def test_a_new_photo_cancels_the_previous_photos_preview(qtbot, window, large_photo, photo,
                                                         fake_backends, final_preview_hold):
    shown = shown_after(window)
    outcomes = outcomes_of(window.engine)
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT, check_params_cb=final_pass_held) as held:
        window.open_paths([large_photo])
    stale = held.args[0]
    job, (outcome, preview) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([photo]),
                                       match=lambda j: j.context["doc"].path == photo)
    assert outcome == "succeeded" and window.document.path == photo
    assert outcomes[stale] == "cancelled"
    assert shown == [(256, 171), (128, 96)]  # the harbour's final preview never came on screen
    assert window.document.preview is preview


def test_cancel_during_the_final_pass_keeps_the_first_look_and_f5_refines_it(
        qtbot, window, large_photo, fake_backends, final_preview_hold):
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT, check_params_cb=final_pass_held):
        window.open_paths([large_photo])
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, window.progress.cancel_button.click)
    assert outcome == "cancelled" and is_final(job)
    doc = window.document
    assert doc.preview.shape == (171, 256, 3) and not doc.preview_final and window.view.item.has_after()
    assert window.statusBar().currentMessage().startswith("Preview stopped at the first look")
    # Refresh: the final pass alone; the first look stays on screen until it is done
    passes = []
    window.engine.started.connect(lambda j: j.kind == jobs.PREVIEW and passes.append(is_final(j)))
    job, (outcome, final) = wait_job(qtbot, window.engine, jobs.PREVIEW, window.refresh_action.trigger)
    assert outcome == "succeeded" and passes == [True] and doc.preview is final and doc.preview_final


def test_a_first_look_that_fails_brings_one_dialog_not_two(qtbot, window, large_photo, monkeypatch):
    def broken(*args, **kwargs):
        def work(progress, cancel):
            raise RuntimeError("engine exploded")
        return work

    monkeypatch.setattr(jobs, "preview_work", broken)
    outcomes = outcomes_of(window.engine)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([large_photo]),
                                 match=is_final)
    assert outcome == "cancelled"  # it would have failed the same way
    assert {is_final(j): outcomes[j] for j in outcomes if j.kind == jobs.PREVIEW} == {
        False: "failed", True: "cancelled"}  # the first look failed; its final pass never ran
    assert window.errors.box.isVisible() and "engine exploded" in window.errors.box.text()
    window.errors.box.accept()


PER_SHAPE_OPTIONS = EngineOptions(tile=64, overlap=16, backend="openvino", threads=1)  # a model per shape


def test_opening_a_photo_cancels_the_warm_up_for_typical_photos(
        qtbot, settings, make_window, weights, large_photo, fake_backends, startup_warmup_hold, monkeypatch):
    """The engine runs one job at a time: the warm-up for typical photos would hold the photo's
    preview back. It stops after the shape it is building, and the photo's own first look is
    built instead, from the size in its header, while its pixels are still being decoded."""
    settings.set_engine_options(PER_SHAPE_OPTIONS)
    decoding = threading.Event()  # the read is held until the test has seen what ran meanwhile
    read_work = jobs.read_work

    def slow_read(path):
        def work(progress, cancel):
            assert decoding.wait(TIMEOUT / 1000), "the test never let the read finish"
            return read_work(path)(progress, cancel)
        return work

    monkeypatch.setattr(jobs, "read_work", slow_read)
    window = make_window(warm_up=True)
    outcomes = outcomes_of(window.engine)
    try:
        with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT,
                              check_params_cb=lambda j, done, total: j.kind == jobs.WARMUP and done == 1) as held:
            pass  # queued at start; held after the first of its 4 shapes
        startup = held.args[0]
        job, (outcome, _) = wait_job(qtbot, window.engine, jobs.WARMUP, lambda: window.open_paths([large_photo]),
                                     match=lambda j: j.context["photo"] == (400, 600))
        assert outcome == "succeeded" and window.document is None  # still decoding
        assert outcomes[startup] == "cancelled" and startup_warmup_hold.tiles_done == [0, 1]
        assert fake_backends.built == [framed(192, 256), framed(176, 256)]  # one typical shape, then the harbour's
    finally:
        decoding.set()
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: None, match=is_final)
    assert outcome == "succeeded"
    assert fake_backends.built == [framed(192, 256), framed(176, 256), framed(344, 512)]  # the final pass built its own


def test_a_photo_whose_header_says_no_size_cancels_the_warm_up_when_it_is_read(
        qtbot, settings, make_window, weights, large_photo, fake_backends, startup_warmup_hold, monkeypatch):
    settings.set_engine_options(PER_SHAPE_OPTIONS)
    monkeypatch.setattr(imageio, "header_size", lambda path: None)  # e.g. a format Pillow cannot open
    window = make_window(warm_up=True)
    outcomes = outcomes_of(window.engine)
    started = []
    window.engine.started.connect(lambda j: started.append(j.kind))
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT,
                          check_params_cb=lambda j, done, total: j.kind == jobs.WARMUP and done == 1) as held:
        pass
    job, (outcome, _) = open_photo(qtbot, window, large_photo)
    assert outcome == "succeeded" and outcomes[held.args[0]] == "cancelled"
    assert startup_warmup_hold.tiles_done == [0, 1]
    assert started[:3] == [jobs.WARMUP, jobs.PREVIEW, jobs.PREVIEW]  # no size: nothing else to warm
    assert fake_backends.built == [framed(192, 256), framed(176, 256), framed(344, 512)]


class WarmDetector:
    """Stands in for the bundled detector: notes the threads it ran on."""

    def __init__(self):
        self.threads = []

    def __call__(self, image):
        self.threads.append(threading.get_ident())


@pytest.mark.parametrize("detector_weights", ["installed", "missing"])
def test_warm_up_with_automatic_warms_the_detector_then_the_task_in_effect(
        qtbot, settings, make_window, weights, monkeypatch, detector_weights):
    import cmfnet_core.detect

    warm = WarmDetector()

    def default_detector(backend="auto"):
        if detector_weights == "missing":
            raise cmfnet_core.detect.DetectorError("cannot read the detector's weights")
        return warm

    monkeypatch.setattr(cmfnet_core.detect, "default_detector", default_detector)
    settings.set_task("auto")
    window = make_window(warm_up=True)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.WARMUP, lambda: None)
    assert outcome == "succeeded" and job.context["task"] == "auto"
    assert warm.threads == ([job.thread_id] if detector_weights == "installed" else [])
    # the task Automatic starts from; "auto" itself has no weights to ask the cache for
    assert [key[0] for key in window.cache._items] == ["deblur"]
    assert window.statusBar().currentMessage() == ""  # a missing detector is told when a photo opens


def test_automatic_looks_at_the_photo_and_preselects_the_task_it_needs(
        qtbot, settings, make_window, weights, dehaze_weights, photo, detector):
    settings.set_task("auto")
    detector.verdicts[(96, 128)] = HAZY
    detector.hold = threading.Event()
    window = make_window()
    assert window.task_combo.currentText() == "Automatic"
    wait_job(qtbot, window.files, jobs.READ, lambda: window.open_paths([photo]))
    # the photo is shown while it is looked at, on the engine's thread; nothing runs before
    assert window.stack.currentIndex() == 1
    assert window.detection_label.text() == "<i>Looking at the photo…</i>"
    assert not window.apply_action.isEnabled()  # which task to apply is not known yet
    detector.hold.set()
    job, (outcome, preview) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: None)
    assert outcome == "succeeded" and job.context["task"] == "dehaze"
    assert detector.threads and threading.get_ident() not in detector.threads
    assert window.task == "dehaze" and window.document.preview_task == "dehaze"
    assert window.task_combo.currentData() == "auto"
    assert window.task_combo.currentText() == "Automatic: Dehaze"
    assert window.detection_label.text() == "Looks hazy · 87 %"
    assert "Automatic restores it with Dehaze" in window.detection_label.toolTip()
    assert " — Dehaze — " in window.windowTitle() and window.apply_action.isEnabled()

    # the user can still pick another task; why Automatic chose Dehaze stays on show
    job, _ = wait_job(qtbot, window.engine, jobs.PREVIEW,
                      lambda: window.task_combo.setCurrentIndex(window.task_combo.findData("deblur")))
    assert job.context["task"] == "deblur"
    assert window.task == "deblur" and window.settings.task() == "deblur"
    assert window.task_combo.itemText(0) == "Automatic"
    assert window.detection_label.text() == "Looks hazy · 87 %"
    assert "Automatic would pick dehaze" in window.detection_label.toolTip()
    # back to Automatic: the photo's own task again, without looking at it again
    asked = len(detector.threads)
    job, _ = wait_job(qtbot, window.engine, jobs.PREVIEW,
                      lambda: window.task_combo.setCurrentIndex(window.task_combo.findData("auto")))
    assert window.task == "dehaze" and job.context["task"] == "dehaze"
    assert len(detector.threads) == asked and window.settings.task() == "auto"


def test_automatic_leaves_a_photo_that_looks_fine_as_it_is_as_the_command_line_does(
        qtbot, settings, make_window, weights, photo, detector):
    settings.set_task("auto")
    detector.verdicts[(96, 128)] = FINE
    window = make_window()
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.DETECT, lambda: window.open_paths([photo]))
    assert outcome == "succeeded"
    # the Task box shows what will run: nothing, as `cmfnet restore` skips it
    assert window.task_combo.currentText() == "Automatic: leave as it is"
    assert window.detection_label.text() == "Looks fine · 91 %"
    assert "pick a task to restore it anyway" in window.detection_label.toolTip()
    assert not window.apply_action.isEnabled() and window.document.preview is None
    assert "pick a task to restore it" in window.apply_action.toolTip()
    assert not any(j.kind == jobs.PREVIEW for j in window.engine.jobs())
    # restoring it anyway is the user's call: a task picked by hand previews and applies
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW,
                                 lambda: window.task_combo.setCurrentIndex(window.task_combo.findData("deblur")),
                                 match=is_final)
    assert outcome == "succeeded" and job.context["task"] == "deblur"
    assert window.apply_action.isEnabled() and window.task_combo.itemText(0) == "Automatic"


def test_an_unsure_photo_preselects_the_likely_task_and_shows_the_runner_up(
        qtbot, settings, make_window, weights, dehaze_weights, photo, detector):
    settings.set_task("auto")
    detector.verdicts[(96, 128)] = UNSURE
    window = make_window()
    job, (outcome, _) = open_photo(qtbot, window, photo)
    assert outcome == "succeeded" and job.context["task"] == "dehaze"
    assert window.task_combo.currentText() == "Automatic: Dehaze"
    assert window.detection_label.text() == "Hazy 45 % · Blurry 30 %"
    assert "Not sure: Automatic preselects Dehaze" in window.detection_label.toolTip()
    assert window.apply_action.isEnabled()


def test_a_task_picked_by_hand_is_for_that_photo_the_next_one_starts_from_automatic(
        qtbot, settings, make_window, weights, dehaze_weights, photo, detector):
    import cv2

    hazy = photo.with_name("hazy.png")
    cv2.imwrite(str(hazy), cv2.imread(str(photo))[:64, :80])
    detector.verdicts.update({(96, 128): FINE, (64, 80): HAZY})
    settings.set_task("auto")
    window = make_window()
    wait_job(qtbot, window.engine, jobs.DETECT, lambda: window.open_paths([photo]))
    wait_job(qtbot, window.engine, jobs.PREVIEW,
             lambda: window.task_combo.setCurrentIndex(window.task_combo.findData("deblur")), match=is_final)
    assert window.choice == "deblur"
    job, (outcome, _) = open_photo(qtbot, window, hazy)
    assert outcome == "succeeded" and job.context["task"] == "dehaze"
    assert window.choice == "auto" and window.task_combo.currentText() == "Automatic: Dehaze"
    assert window.detection_label.text() == "Looks hazy · 87 %"
    assert window.settings.task() == "auto"


def test_a_task_picked_by_hand_stays_and_the_detection_is_advice(qtbot, window, photo, detector):
    detector.verdicts[(96, 128)] = HAZY
    assert window.choice == "deblur"  # as the settings say
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.DETECT, lambda: window.open_paths([photo]))
    assert outcome == "succeeded"
    assert window.task == "deblur" and window.document.preview_task == "deblur"
    assert window.detection_label.text() == "Looks hazy · 87 %"
    assert "Automatic would pick dehaze" in window.detection_label.toolTip()


def test_without_the_detector_automatic_still_opens_and_previews(qtbot, settings, make_window,
                                                                 weights, photo, monkeypatch):
    import cmfnet_core.detect

    def no_detector(image, detector=None):
        raise cmfnet_core.detect.DetectorError("cannot read the detector's weights")

    monkeypatch.setattr(cmfnet_core.detect, "detect", no_detector)
    settings.set_task("auto")
    window = make_window()
    job, (outcome, _) = open_photo(qtbot, window, photo)
    assert outcome == "succeeded" and job.context["task"] == "deblur"
    assert window.detection_label.text() == "<i>Automatic unavailable</i>"
    assert "detector's weights" in window.detection_label.toolTip()
    assert window.errors.box is None or not window.errors.box.isVisible()  # advice, not an error


def test_a_batch_with_automatic_restores_each_photo_with_what_it_needs(
        qtbot, settings, make_window, weights, dehaze_weights, photo, detector):
    import cv2

    meadow = photo.with_name("meadow.png")
    cv2.imwrite(str(meadow), cv2.imread(str(photo))[:64, :80])
    lane = photo.with_name("lane.png")
    cv2.imwrite(str(lane), cv2.imread(str(photo))[:48, :64])
    detector.verdicts.update({(96, 128): HAZY, (64, 80): FINE, (48, 64): UNSURE})
    window = make_window()
    assert window.choice == "deblur"  # picked for a photo: the batch runs Automatic all the same
    assert window.batch.choice() == "auto"
    window.batch.add_files([photo, meadow, lane])
    with qtbot.waitSignal(window.batch.finished, timeout=TIMEOUT):
        window.batch.run_button.click()
    entries = window.batch.entries
    assert [(e.status, e.detail) for e in entries] == [
        ("Saved", "street.dehaze.png (Dehaze: looks hazy · 87 %)"), ("Left as it is", "Looks fine · 91 %"),
        ("Saved", "lane.dehaze.png (Dehaze: not sure: Hazy 45 % · Blurry 30 %)")]
    assert sorted(p.name for p in photo.parent.iterdir()) == ["lane.dehaze.png", "lane.png", "meadow.png",
                                                              "street.dehaze.png", "street.png"]
    assert not window.batch.run_button.isEnabled()  # nothing left to do


def test_apply_runs_off_the_gui_thread_while_the_event_loop_keeps_running(qtbot, window, photo,
                                                                          first_tile_hold):
    open_photo(qtbot, window, photo)
    progress = []

    def on_progress(job, done, total):
        progress.append((done, total))
        if done == 1:  # delivered by the GUI event loop while the worker waits for it
            first_tile_hold.release()

    window.engine.progress.connect(on_progress)
    job, (outcome, result) = wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    assert outcome == "succeeded"
    assert job.thread_id is not None and job.thread_id != threading.get_ident()
    assert window.engine.worker_thread() is not QApplication.instance().thread()
    # the run was held mid-way on its worker until the GUI thread answered: a stalled loop never would
    assert first_tile_hold.held_on == [job.thread_id] and first_tile_hold.released_in_time == [True]
    total = progress[-1][1]
    assert total == 12 and progress == [(i, total) for i in range(total + 1)]
    assert window.document.result is result and result.shape == (96, 128, 3)
    assert window.isWindowModified() and not window.progress.isVisible()

    window.prompts.unsaved_answer = "cancel"  # closing asks first; Cancel keeps the window open
    assert not window.close() and window.isVisible() and "unsaved" in window.prompts.asked


def test_cancel_stops_after_the_running_tile_and_keeps_no_result(qtbot, window, photo, first_tile_hold):
    open_photo(qtbot, window, photo)
    progress = []

    def on_progress(job, done, total):
        progress.append(done)
        if done == 1:
            window.progress.cancel_button.click()  # the real Cancel button, while tile 2 waits

    window.engine.progress.connect(on_progress)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    assert outcome == "cancelled"
    assert first_tile_hold.released_in_time == [True]  # released by the cancel itself
    assert progress == [0, 1] and first_tile_hold.tiles_done == [0, 1]  # not one tile more
    assert window.document.result is None and not window.isWindowModified()
    assert not window.save_action.isEnabled()  # nothing to save: the photo is as it was opened


def test_cancelling_a_batch_part_way_through_a_photo_writes_nothing(qtbot, window, photo, first_tile_hold):
    """A batch run writes each result beside its photo: cancelled mid-photo, it writes none."""
    before = snapshot(photo.parent)
    window.batch.add_files([photo])
    pick_for_the_batch(window, "deblur")

    def on_progress(job, done, total):
        if job.kind == jobs.BATCH and done == 1:
            window.progress.cancel_button.click()

    window.engine.progress.connect(on_progress)
    with qtbot.waitSignal(window.batch.finished, timeout=TIMEOUT):
        window.batch.run_button.click()
    assert [e.status for e in window.batch.entries] == ["Cancelled"]
    assert first_tile_hold.released_in_time == [True] and first_tile_hold.tiles_done == [0, 1]
    assert snapshot(photo.parent) == before and leftovers(photo.parent) == []


def test_save_writes_name_task_ext_and_keeps_the_original(qtbot, window, photo):
    from cmfnet_core.imageio import read_image

    original = photo.read_bytes()
    open_photo(qtbot, window, photo)
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    job, (outcome, written) = wait_job(qtbot, window.files, jobs.SAVE, window.save_action.trigger)
    assert outcome == "succeeded"
    assert written == photo.parent / "street.deblur.png"
    assert np.array_equal(read_image(written).pixels, window.document.result)
    assert photo.read_bytes() == original
    assert not window.isWindowModified()

    # the strength slider blends restored and original in what is saved
    window.compare.strength.setValue(40)
    assert window.isWindowModified()
    window.prompts.save_answer = str(photo.with_name("street.soft.png"))
    job, (outcome, soft) = wait_job(qtbot, window.files, jobs.SAVE, window.save_as_action.trigger)
    expected = jobs.blend(window.document.pixels, window.document.result, 0.4)
    assert np.array_equal(read_image(soft).pixels, expected)

    # Save As onto the original: refused unless the user confirms
    window.prompts.save_answer = str(photo)
    window.prompts.overwrite_answer = False
    assert window.save_as_action.trigger() is None
    assert "overwrite" in window.prompts.asked
    assert photo.read_bytes() == original


def test_sixteen_bit_photo_is_saved_sixteen_bit(qtbot, window, tmp_path):
    import cv2

    from cmfnet_core.imageio import read_image

    deep = tmp_path / "scan.png"
    ramp = np.linspace(0, 65535, 64 * 64 * 3).reshape(64, 64, 3).astype(np.uint16)
    cv2.imwrite(str(deep), ramp)
    open_photo(qtbot, window, deep)
    assert window.document.pixels.dtype == np.uint16
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    job, (outcome, written) = wait_job(qtbot, window.files, jobs.SAVE, window.save_action.trigger)
    saved = read_image(written)
    assert written.name == "scan.deblur.png" and saved.info.bit_depth == 16
    assert saved.pixels.dtype == np.uint16 and np.array_equal(saved.pixels, window.document.result)


def test_unreadable_file_shows_an_error_dialog(qtbot, window, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo at all")
    job, (outcome, (title, message)) = wait_job(qtbot, window.files, jobs.READ,
                                                lambda: window.open_paths([broken]))
    assert outcome == "failed"
    assert window.errors.box is not None and window.errors.box.isVisible()
    assert "broken.jpg" in window.errors.box.text()
    assert window.document is None
    window.errors.box.accept()


def test_task_without_weights_shows_banner_and_disables_apply(qtbot, no_bundled_weights, window, photo):
    open_photo(qtbot, window, photo)
    assert window.apply_action.isEnabled() and not window.banner.isVisible()
    window.task_combo.setCurrentIndex(window.task_combo.findData("dehaze"))  # only deblur weights here
    assert window.task == "dehaze" and window.settings.task() == "dehaze"
    assert window.banner.isVisible() and "Dehaze" in window.banner.label.text()
    assert not window.apply_action.isEnabled() and not window.view.item.has_after()
    assert window.request_preview() is None


def test_region_preview_by_dragging_a_rectangle(qtbot, window, photo):
    open_photo(qtbot, window, photo)
    window.region_action.trigger()
    view = window.view
    start = view.mapFromScene(QPointF(10, 10))
    end = view.mapFromScene(QPointF(70, 60))

    def drag():
        qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(view.viewport(), pos=end)
        qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)

    job, (outcome, patch) = wait_job(qtbot, window.engine, jobs.REGION, drag)
    assert outcome == "succeeded"
    rect = job.context["rect"]
    assert patch.shape[:2] == (rect.height(), rect.width()) and rect.width() >= 50
    assert len(view.item._patches) == 1
    assert not window.region_action.isChecked()


def test_split_slider_and_hold_to_compare(qtbot, window, photo):
    open_photo(qtbot, window, photo)
    window.compare.split.setValue(250)
    assert window.view.item.split == pytest.approx(0.25)
    qtbot.keyPress(window, Qt.Key.Key_B)
    assert window.view.item.show_before
    qtbot.keyRelease(window, Qt.Key.Key_B)
    assert not window.view.item.show_before
    window.compare.strength.setValue(40)
    assert window.view.item.strength == pytest.approx(0.4) and window.document.strength == pytest.approx(0.4)

    # zoom: 100 %, zoom in, fit
    view = window.view
    window.actual_action.trigger()
    assert view.scale_factor() == pytest.approx(1.0) and window.zoom_label.text() == "100 %"
    window.zoom_in_action.trigger()
    assert view.scale_factor() == pytest.approx(1.25)
    window.fit_action.trigger()
    assert view.visible_image_rect() == QRect(0, 0, 128, 96)

    # the divider can be dragged on the photo itself; the slider follows
    line = view.mapFromScene(QPointF(128 * 0.25, 48))
    target = view.mapFromScene(QPointF(128 * 0.75, 48))
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=line)
    qtbot.mouseMove(view.viewport(), pos=target)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert view.item.split == pytest.approx(0.75, abs=0.03)
    assert window.compare.split.value() == pytest.approx(750, abs=30)


def test_a_thumbnail_preview_is_drawn_enlarged_smoothly(qtbot):
    """A first look is 256 px over a photo of thousands: enlarged pixel by pixel, it would show
    blocks the restoration did not make."""
    from PyQt6.QtGui import QColor, QImage, QPainter

    from plugin.app.viewer import PhotoView

    view = PhotoView()
    qtbot.addWidget(view)
    photo = QImage(64, 8, QImage.Format.Format_RGB888)
    photo.fill(QColor(128, 128, 128))
    view.set_photo(photo)
    view.set_split(0.0)  # the restoration over all of it
    thumbnail = QImage(2, 1, QImage.Format.Format_RGB888)
    thumbnail.setPixelColor(0, 0, QColor(0, 0, 0))
    thumbnail.setPixelColor(1, 0, QColor(255, 255, 255))
    view.set_after(thumbnail)
    canvas = QImage(64, 8, QImage.Format.Format_RGB888)  # one photo pixel per pixel: not zoomed out
    painter = QPainter(canvas)
    view.scene().render(painter, QRectF(0, 0, 64, 8), view.item.image_rect())
    painter.end()
    row = [canvas.pixelColor(x, 4).red() for x in range(64)]
    assert row[0] < 20 and row[-1] > 235 and any(60 < v < 200 for v in row)  # a ramp, not two blocks


def test_drop_several_files_makes_a_batch_that_runs_in_the_background(qtbot, window, photo):
    second = photo.with_name("lane.png")
    second.write_bytes(photo.read_bytes())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo)), QUrl.fromLocalFile(str(second))])
    pos = QPointF(window.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.batch_dock.isVisible() and len(window.batch.entries) == 2
    broken = photo.with_name("broken.jpg")
    broken.write_bytes(b"\xff\xd8 truncated")
    window.batch.add_files([broken])  # e.g. from a second drop: one bad file must not stop the rest
    pick_for_the_batch(window, "deblur")
    with qtbot.waitSignal(window.batch.finished, timeout=TIMEOUT):
        window.batch.run_button.click()
    assert [e.status for e in window.batch.entries] == ["Saved", "Saved", "Failed"]
    assert window.batch.entries[0].detail == "street.deblur.png (Deblur, picked for the batch)"
    assert (photo.parent / "street.deblur.png").exists() and (photo.parent / "lane.deblur.png").exists()
    assert window.batch.entries[2].detail and "Failed" in window.batch.table.item(2, 1).text()


def test_closing_during_a_batch_run_cancels_it_and_writes_nothing(qtbot, window, photo, first_tile_hold):
    before = snapshot(photo.parent)
    window.batch.add_files([photo])
    pick_for_the_batch(window, "deblur")
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT,
                          check_params_cb=lambda j, done, total: j.kind == jobs.BATCH and done == 1):
        window.batch.run_button.click()
    # the worker is held after tile 1 of 6: closing now is closing during the run, every time
    assert window.close()
    assert window.engine.worker_thread().isFinished()
    assert first_tile_hold.released_in_time == [True]  # the close cancelled it (else: hang guard)
    assert first_tile_hold.tiles_done == [0, 1]  # stopped within the tile, not at the end
    assert snapshot(photo.parent) == before and leftovers(photo.parent) == []


# --- the job runner on its own (no engine) ----------------------------------------------------

def test_runner_reports_progress_in_order_and_always_finishes(qtbot):
    runner = JobRunner("test-runner")
    busy = []
    runner.busy_changed.connect(busy.append)
    try:
        def counting(progress, cancel):
            for i in range(4):
                progress(i, 3)
            return "ok"

        def broken(progress, cancel):
            raise TypeError("engine exploded")  # a bug; superqt would swallow this one

        ok = Job("apply", counting)
        signals = [runner.started, runner.progress, runner.progress, runner.progress, runner.progress,
                   runner.succeeded, runner.finished]
        with qtbot.waitSignals(signals, order="strict", timeout=TIMEOUT):
            runner.submit(ok)
        bad = Job("apply", broken)
        with qtbot.waitSignals([runner.failed, runner.finished], order="strict", timeout=TIMEOUT) as b:
            runner.submit(bad)
        title, message = b.all_signals_and_args[0].args[1:]
        assert (title, message.split("\n\n")[0]) == ("Unexpected error", "TypeError: engine exploded")
        assert not runner.is_busy() and busy == [True, False, True, False]

        def hungry(progress, cancel):
            raise MemoryError()

        with qtbot.waitSignal(runner.failed, timeout=TIMEOUT) as b:
            runner.submit(Job("apply", hungry))
        assert b.args[1] == "Out of memory" and "tile size" in b.args[2]
    finally:
        assert runner.shutdown()
    late = runner.submit(Job("preview", lambda p, c: None))  # a late handler while closing
    assert late.token.cancelled and not runner.is_busy()


def test_settings_are_remembered(settings, tmp_path):
    again = AppSettings(QSettings(str(tmp_path / "app.ini"), QSettings.Format.IniFormat))
    assert again.engine_options() == TEST_OPTIONS
    again.add_recent_file(tmp_path / "a.png")
    again.add_recent_file(tmp_path / "b.png")
    again.add_recent_file(tmp_path / "a.png")
    assert [Path(p).name for p in again.recent_files()] == ["a.png", "b.png"]


def test_preferences_dialog_rounds_to_valid_tiles(qtbot):
    from plugin.app.preferences import PreferencesDialog

    dialog = PreferencesDialog(TEST_OPTIONS)
    qtbot.addWidget(dialog)
    dialog.tile.setValue(300)
    dialog.overlap.setValue(250)
    options = dialog.options()
    assert (options.tile, options.overlap, options.backend) == (296, 144, "paddle")


def test_main_opens_files_with_task(qtbot, settings, monkeypatch, photo):
    from plugin.app import main as app_main

    seen = {}

    def fake_exec():
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        seen.update(task=window.task, files=[(j.kind, j.context.get("path")) for j in window.files.jobs()],
                    engine=[j.kind for j in window.engine.jobs()], batch=window.batch.choice())
        window.prompts = ScriptedPrompts()
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", staticmethod(fake_exec))
    assert app_main.main([str(photo), "--task", "dehaze"]) == 0
    # the photo's size comes first (its header), then its pixels; nothing is warmed for
    # typical photos meanwhile: the size says exactly what this photo's first look needs
    assert seen == {"task": "dehaze", "files": [(jobs.SIZE, photo), (jobs.READ, photo)], "engine": [],
                    "batch": "dehaze"}  # several files would make a batch: told a task, it runs that


def test_display_conversion_of_every_pixel_layout(qtbot):
    from PyQt6.QtGui import QImage

    from plugin.app.qimage import to_qimage

    gray16 = np.full((3, 5), 65535, np.uint16)
    assert to_qimage(gray16).format() == QImage.Format.Format_Grayscale8
    assert to_qimage(gray16).pixelColor(0, 0).red() == 255
    gray_alpha = np.dstack([np.zeros((3, 5), np.uint8), np.full((3, 5), 128, np.uint8)])
    assert to_qimage(gray_alpha).format() == QImage.Format.Format_RGBA8888
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[..., 0] = 200
    image = to_qimage(rgb[:, ::-1])  # not contiguous: copied
    assert (image.width(), image.height()) == (5, 3) and image.pixelColor(4, 2).red() == 200


def test_restorer_cache_keeps_the_most_recent(small_weights):
    made = []

    def factory(task, path, **kwargs):
        made.append((task, kwargs["tile"]))
        return SimpleNamespace(prepare_precision=lambda: [])  # a Restorer, as far as the cache asks

    cache = jobs.RestorerCache(factory, keep=2)
    first = cache.get("deblur", TEST_OPTIONS, small_weights)
    assert cache.get("deblur", TEST_OPTIONS, small_weights) is first
    cache.get("deblur", EngineOptions(tile=128), small_weights)
    cache.get("deblur", EngineOptions(tile=192), small_weights)
    assert cache.get("deblur", TEST_OPTIONS, small_weights) is not first  # evicted, rebuilt
    assert made == [("deblur", 64), ("deblur", 128), ("deblur", 192), ("deblur", 64)]


def run_work(work):
    return work(lambda done, total: None, CancelToken())


def test_a_preview_has_a_first_look_only_where_it_is_much_cheaper_than_the_final_pass():
    assert jobs.preview_sides(1064, 1600) == (256, 512)  # 256 x 170 first: a quarter of the pixels
    assert jobs.preview_sides(3024, 4032) == (256, 512)
    assert jobs.preview_sides(96, 128) == (512,)  # previewed as it is, in one pass
    assert jobs.preview_sides(270, 360) == (512,)  # a first look would cost over half the final pass


def test_warmup_builds_the_first_look_of_any_typical_photo(fake_backends, small_weights):
    """Before any photo is known: the first looks of phones' 4:3 and cameras' 3:2 photos, either
    way up, are what the user will wait for. That is as many shapes as the restorer keeps (a
    fifth would evict the first one warmed); a final pass builds its own while the first look
    is on screen."""
    from cmfnet_core.engine import KEEP_BACKENDS

    cache = jobs.RestorerCache()
    run_work(jobs.warmup_work(cache, "deblur", PER_SHAPE_OPTIONS, small_weights))
    assert fake_backends.built == [framed(192, 256), framed(256, 192), framed(176, 256), framed(256, 176)]
    assert len(fake_backends.built) == KEEP_BACKENDS
    for photo in [(3000, 4000), (4000, 3000), (3648, 5472), (5472, 3648), (1064, 1600)]:
        image = np.zeros((*photo, 3), np.uint8)
        run_work(jobs.preview_work(cache, "deblur", PER_SHAPE_OPTIONS, image, small_weights,
                                   long_side=jobs.preview_sides(*photo)[0]))
    assert len(fake_backends.built) == 4  # no first look compiled anything


def test_warmup_for_a_known_photo_builds_its_preview(fake_backends, small_weights):
    cache = jobs.RestorerCache()
    run_work(jobs.warmup_work(cache, "deblur", PER_SHAPE_OPTIONS, small_weights, photos=[(1080, 1920)]))
    assert fake_backends.built == [framed(144, 256), framed(288, 512)]  # its first look, then its final pass
    image = np.zeros((1080, 1920, 3), np.uint8)
    for side in jobs.preview_sides(1080, 1920):
        run_work(jobs.preview_work(cache, "deblur", PER_SHAPE_OPTIONS, image, small_weights, long_side=side))
    assert len(fake_backends.built) == 2

    # a photo being opened: its first look alone, built but not run (that look runs next)
    fake_backends.built.clear()
    fake_backends.ran.clear()
    run_work(jobs.warmup_work(jobs.RestorerCache(), "deblur", PER_SHAPE_OPTIONS, small_weights,
                              photos=[(1080, 1920)], opening=True))
    assert fake_backends.built == [framed(144, 256)] and fake_backends.ran == []


def test_opening_with_one_network_for_every_shape_still_runs_its_small_tile(fake_backends, small_weights):
    """Paddle builds one network for all shapes and its first run is its slow part (seconds):
    a 64 px tile does that set-up while the photo is decoded."""
    run_work(jobs.warmup_work(jobs.RestorerCache(), "deblur", TEST_OPTIONS, small_weights,
                              photos=[(1080, 1920)], opening=True))
    assert fake_backends.built == fake_backends.ran == [(64, 64)]


def test_warming_what_is_warm_already_runs_nothing(fake_backends, small_weights):
    cache = jobs.RestorerCache()
    work = jobs.warmup_work(cache, "deblur", PER_SHAPE_OPTIONS, small_weights, photos=[(1080, 1920)])
    run_work(work)
    ran = list(fake_backends.ran)
    run_work(work)  # e.g. the photo warmed at start is the one opened: a tile's time saved per shape
    assert fake_backends.ran == ran == [framed(144, 256), framed(288, 512)]


def test_automatic_warm_up_for_a_photo_being_opened_warms_the_detector_alone(
        fake_backends, small_weights, monkeypatch):
    """Which task to build is not known until the detector has looked at the photo."""
    import cmfnet_core.detect

    warm = WarmDetector()
    monkeypatch.setattr(cmfnet_core.detect, "default_detector", lambda backend="auto": warm)
    cache = jobs.RestorerCache()
    run_work(jobs.warmup_work(cache, "auto", PER_SHAPE_OPTIONS, photos=[(1080, 1920)],
                              opening=True, fallback=None))
    assert len(warm.threads) == 1 and cache._items == {} and fake_backends.built == []


def test_a_preview_cancelled_while_its_tile_runs_returns_nothing(fake_backends, small_weights):
    token = CancelToken()
    image = np.zeros((400, 600, 3), np.uint8)
    work = jobs.preview_work(jobs.RestorerCache(), "deblur", TEST_OPTIONS, image, small_weights)

    def progress(done, total):
        if done == 1:  # the tile has run: the task changed meanwhile, say
            token.cancel()

    with pytest.raises(Cancelled):
        work(progress, token)


def test_command_line():
    from plugin.app.main import parse_args

    args, qt_args = parse_args(["one.jpg", "two.jpg", "--task", "dehaze"])
    assert args.files == ["one.jpg", "two.jpg"] and args.task == "dehaze" and qt_args == []


def test_blend_and_eta():
    original = np.zeros((2, 2, 3), np.uint16)
    restored = np.full((2, 2, 3), 1000, np.uint16)
    assert jobs.blend(original, restored, 0.25).tolist() == np.full((2, 2, 3), 250).tolist()
    clock = iter([0.0, 1.0, 2.0])
    eta = jobs.Eta(lambda: next(clock))
    assert eta.update(0, 4) is None and eta.update(1, 4) == pytest.approx(3.0)
    assert jobs.format_eta(75) == "about 1 min 15 s left"


# --- a bare desktop: Qt's X11 plugin without its system libraries ----------------------

LDD_ON_A_BARE_DESKTOP = """\
\tlinux-vdso.so.1 (0x00007ffd5c9f2000)
\tlibQt6XcbQpa.so.6 => /venv/PyQt6/Qt6/lib/libQt6XcbQpa.so.6 (0x00007f3b1c400000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f3b1c3d0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
"""


def test_missing_xcb_libraries_become_one_apt_line():
    from plugin.app import qt_platform

    missing = qt_platform.missing_libraries(LDD_ON_A_BARE_DESKTOP)
    assert missing == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert qt_platform.apt_hint(qt_platform.packages_for(missing)) == \
        "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1"


def test_the_real_xcb_plugin_is_checked_with_ldd():
    from plugin.app import qt_platform

    assert qt_platform.xcb_plugin() is not None and qt_platform.xcb_plugin().name == "libqxcb.so"
    # whatever this machine lacks maps to installable package names, never to bare sonames
    assert all(".so" not in package for package in qt_platform.missing_packages())


def test_gui_without_the_xcb_libraries_says_what_to_install(monkeypatch, capsys):
    from plugin.app import main as app_main, qt_platform

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(qt_platform, "missing_packages", lambda: ["libxcb-cursor0"])
    assert app_main.main([]) == 2
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-cursor0" in err and err.count("\n") == 1
    # offscreen (as in these tests) or another platform asked for: no check, no false alarm
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert qt_platform.xcb_problem([]) is None
