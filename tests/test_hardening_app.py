"""The hardening corpus in the desktop app: an error dialog, never a crash.

Driven like ``test_app.py`` (its fixtures and helpers are reused): the real
engine with the small checkpoint, offscreen Qt, scripted prompts.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from plugin.app import jobs  # noqa: E402
from tests import corpus  # noqa: E402
from tests.test_app import (TEST_OPTIONS, make_window, open_photo, photo, settings,  # noqa: E402,F401
                            wait_job, weights, window)
from tests.test_hardening import bad_weights, leftovers, snapshot  # noqa: E402


def open_and_fail(qtbot, window, path: Path) -> str:
    """Open ``path``; the read must fail with a visible error dialog. Returns its text."""
    job, (outcome, _) = wait_job(qtbot, window.files, jobs.READ, lambda: window.open_paths([path]))
    assert outcome == "failed"
    box = window.errors.box
    assert box is not None and box.isVisible()
    text = box.text()
    box.accept()
    return text


@pytest.mark.parametrize("case", ["png_bomb", "truncated_tiff", "zero_byte", "corrupt_png", "text_named_jpg"])
def test_a_bad_photo_opens_an_error_dialog_naming_it(qtbot, window, tmp_path, case):
    make, reason = corpus.BAD_IMAGES[case]
    folder = tmp_path / "bad"  # apart from the app's settings file
    folder.mkdir()
    path = make(folder)
    before = snapshot(folder)
    text = open_and_fail(qtbot, window, path)
    assert path.name in text and re.search(reason, text.split(f"{path}: ", 1)[1]), text
    assert window.document is None and window.isVisible()
    assert snapshot(folder) == before


@pytest.mark.parametrize("case", ["cmyk_jpeg", "animated_gif", "gray16_alpha_png", "tiny_1x1"])
def test_an_unusual_photo_opens_and_previews(qtbot, window, tmp_path, case):
    path = corpus.ODD_IMAGES[case](tmp_path)
    job, (outcome, preview) = open_photo(qtbot, window, path)
    assert outcome == "succeeded"
    assert window.document is not None and preview.shape == window.document.pixels.shape


def test_the_animated_image_note_is_shown(qtbot, window, tmp_path):
    path = corpus.ODD_IMAGES["animated_gif"](tmp_path)
    wait_job(qtbot, window.files, jobs.READ, lambda: window.open_paths([path]))
    assert "first of 3 frames" in window.statusBar().currentMessage()


def test_a_failed_save_shows_a_dialog_and_leaves_no_partial_file(qtbot, window, photo, monkeypatch):
    open_photo(qtbot, window, photo)
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    before = snapshot(photo.parent)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the data is written, the flush to disk fails
    job, (outcome, (title, message)) = wait_job(qtbot, window.files, jobs.SAVE, window.save_action.trigger)
    monkeypatch.undo()
    assert outcome == "failed" and "disk is full" in message
    assert window.errors.box.isVisible() and window.errors.box.windowTitle() == "Could not save"
    window.errors.box.accept()
    assert snapshot(photo.parent) == before and leftovers(photo.parent) == []
    assert window.isWindowModified()  # the result is still there to save elsewhere


def test_saving_into_a_folder_that_is_gone_shows_a_dialog(qtbot, window, photo, tmp_path):
    open_photo(qtbot, window, photo)
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    window.prompts.save_answer = str(tmp_path / "unplugged-drive" / "street.png")
    job, (outcome, (title, message)) = wait_job(qtbot, window.files, jobs.SAVE,
                                                window.save_as_action.trigger)
    assert outcome == "failed" and "does not exist" in message
    window.errors.box.accept()


def test_importing_a_pickle_that_runs_code_is_refused_in_a_dialog(qtbot, window, tmp_path, small_weights):
    hostile = bad_weights("runs_code", tmp_path, small_weights)
    window.prompts.weights_answer = str(hostile)
    job, (outcome, (title, message)) = wait_job(qtbot, window.engine, jobs.IMPORT, window.import_weights)
    assert outcome == "failed" and title == "Weights problem" and "refused" in message
    assert window.errors.box.isVisible()
    window.errors.box.accept()
    assert not (tmp_path / "pwned").exists()


def test_batch_cancel_in_the_middle_leaves_nothing(small_weights, tmp_path, photo_rgb):
    """The engine side of the queue: cancelled between tiles, nothing is written."""
    from cmfnet_core.engine import Cancelled, CancelToken
    from tests.test_hardening import save_png

    path = save_png(tmp_path / "one.png", photo_rgb)
    token = CancelToken()
    cache = jobs.RestorerCache()
    work = jobs.batch_work(cache, "deblur", TEST_OPTIONS, path, weights=small_weights)

    def progress(done, total):
        if done == 1:
            token.cancel()

    before = snapshot(tmp_path)
    with pytest.raises(Cancelled):
        work(progress, token)
    assert snapshot(tmp_path) == before
