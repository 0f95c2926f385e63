"""The app's Weights dialog and the light-weights info bar, against a real local HTTP server.

The download runs for real (cmfnet_core.download over 127.0.0.1) on the
dialog's own worker thread; the tests only click and wait for signals.
"""
from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from cmfnet_core.download import SOURCES, DownloadError  # noqa: E402
from cmfnet_core.weights import TASKS, default_weights, import_weights, user_weights_dir  # noqa: E402
from plugin.app import jobs  # noqa: E402
from plugin.app.weights_dialog import DOWNLOAD, PROGRESS_INTERVAL_S, WeightsDialog  # noqa: E402
from tests.test_app import (TIMEOUT, ScriptedPrompts, make_window, photo, settings,  # noqa: E402,F401
                            wait_job)
from tests.weights_server import CHUNK  # noqa: E402

PAYLOAD = os.urandom(800_000)


@pytest.fixture
def dialog(qtbot):
    shown = WeightsDialog(ScriptedPrompts())
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.shutdown()


def test_the_list_says_in_words_what_each_task_uses(dialog):
    for task in ("deblur", "dehaze", "deraindrop"):
        assert dialog.choices[task].currentText() == "light, bundled (trained by this project)"
        assert dialog.download_buttons[task].text() == "Download"
    assert dialog.download_all.text() == "Download the authors' weights (about 200 MB each)"
    assert dialog.download_all.isEnabled()


def test_a_refresh_reads_each_weights_folder_once(dialog, small_weights, monkeypatch):
    """The list, the defaults and what is missing come from one listing per task: each task's
    two folders (bundled, the user's) are scanned once per refresh, on the GUI thread."""
    from collections import Counter

    from cmfnet_core import weights

    import_weights("dehaze", small_weights)  # the user's folder holds something too
    scanned = Counter()
    scan = weights._scan

    def counting(folder, task, bundled):
        scanned[(task, bundled)] += 1
        return scan(folder, task, bundled)

    monkeypatch.setattr(weights, "_scan", counting)
    dialog.refresh()
    assert scanned == Counter({(task, bundled): 1 for task in TASKS for bundled in (True, False)})
    assert dialog.choices["dehaze"].currentText() == "imported from small_official.pth (light)"
    assert dialog.missing() == list(TASKS) and dialog.download_all.isEnabled()


def test_download_moves_the_progress_bar_then_installs_and_the_list_updates(
        qtbot, dialog, weights_server, full_size_checkpoint, monkeypatch):
    weights_server.add("deraindrop_DeRainDrop_CMFNet.pth", full_size_checkpoint)
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    seen = []
    dialog.runner.progress.connect(lambda job, done, total: seen.append((done, dialog.bar.value())))
    with qtbot.waitSignal(dialog.weights_changed, timeout=120_000) as changed:
        dialog.download_buttons["deraindrop"].click()
        assert dialog.bar.isVisible() and dialog.cancel_button.isVisible()
    assert changed.args == ["deraindrop"]
    assert len({done for done, _ in seen}) > 10 and seen[-1][0] == len(full_size_checkpoint) // 1000
    assert len({value for _, value in seen}) > 10  # the bar itself moved
    qtbot.waitUntil(lambda: not dialog.bar.isVisible(), timeout=TIMEOUT)
    assert dialog.choices["deraindrop"].currentText().startswith("the authors' (full-size), downloaded")
    assert dialog.choices["deraindrop"].isEnabled()  # bundled or the authors': the user's choice
    assert not dialog.download_buttons["deraindrop"].isEnabled()
    assert "installed and used from now on" in dialog.status.text()
    assert default_weights("deraindrop").downloaded

    bundled = dialog.choices["deraindrop"].findText("light, bundled (trained by this project)")
    with qtbot.waitSignal(dialog.weights_changed):
        dialog.choices["deraindrop"].activated.emit(bundled)
    assert default_weights("deraindrop").bundled


def test_the_dialog_hears_a_download_per_percent_or_tenth_of_a_second_not_per_chunk(
        qtbot, dialog, weights_server, monkeypatch):
    """Each progress report is a signal queued to the GUI thread: a fast line delivering 64 KiB
    chunks would flood it; the dialog needs a step per percent or per tenth of a second."""
    chunks = 400
    body = os.urandom(chunks * CHUNK)
    weights_server.add(SOURCES["dehaze"], body)
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    seen = []
    dialog.runner.progress.connect(lambda job, done, total: seen.append(done))
    started = time.monotonic()
    job, (outcome, result) = wait_job(qtbot, dialog.runner, DOWNLOAD, dialog.download_buttons["dehaze"].click)
    elapsed = time.monotonic() - started
    assert outcome == "succeeded" and isinstance(result, DownloadError) and result.reason == "content"
    assert seen[0] == 0 and seen[-1] == len(body) // 1000  # the start and the end are always heard
    assert seen == sorted(seen) and len(set(seen)) > 50  # the bar still moves in steps
    assert len(seen) <= 101 + elapsed / PROGRESS_INTERVAL_S + 1
    assert len(seen) < chunks / 2


def test_cancel_stops_the_download_keeps_what_arrived_and_changes_nothing(
        qtbot, dialog, weights_server, monkeypatch):
    weights_server.add("deblur_GoPro_CMFNet.pth", PAYLOAD, pace=0.05)  # a slow line
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    with qtbot.waitSignal(dialog.runner.progress, timeout=TIMEOUT,
                          check_params_cb=lambda job, done, total: done > 100):
        dialog.download_buttons["deblur"].click()
    with qtbot.waitSignal(dialog.runner.cancelled, timeout=2000):
        dialog.cancel_button.click()
    assert "download cancelled" in dialog.status.text()
    part = user_weights_dir() / "deblur" / "deblur_GoPro_CMFNet.pth.part"
    assert 100_000 < part.stat().st_size < len(PAYLOAD)
    assert PAYLOAD.startswith(part.read_bytes())
    qtbot.waitUntil(lambda: dialog.download_buttons["deblur"].isEnabled(), timeout=TIMEOUT)
    assert default_weights("deblur").bundled


def test_offline_is_said_in_plain_words_with_the_way_by_hand(qtbot, dialog, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}/")
    job, (outcome, _) = wait_job(qtbot, dialog.runner, DOWNLOAD, dialog.download_buttons["dehaze"].click)
    assert outcome == "succeeded"  # the job ran; its result is the error, worded by the dialog
    text = dialog.error.text()
    assert dialog.error.isVisible() and "Are you connected to the internet?" in text
    assert "github.com/FanChiMao/CMFNet/releases" in text and "Import…" in text
    assert "CMFNET_WEIGHTS_MIRROR" in text


def test_import_in_the_dialog_makes_the_file_the_default(qtbot, dialog, small_weights):
    dialog.prompts.weights_answer = str(small_weights)
    with qtbot.waitSignal(dialog.weights_changed, timeout=TIMEOUT):
        dialog.import_buttons["dehaze"].click()
    assert dialog.choices["dehaze"].currentText() == "imported from small_official.pth (light)"
    assert default_weights("dehaze").path.name == "small_official.pdparams"


def test_restoring_with_the_light_bundled_weights_offers_the_authors_once(qtbot, make_window, photo):
    window = make_window()
    window.choose("deblur")
    wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([photo]))
    assert not window.light_bar.isVisible()
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    assert window.light_bar.isVisible() and "light weights" in window.light_bar.label.text()
    window.light_bar.close_button.click()
    assert not window.light_bar.isVisible()
    wait_job(qtbot, window.engine, jobs.APPLY, window.apply_action.trigger)
    assert not window.light_bar.isVisible()  # once per session
    window.light_bar.button.click()
    assert window.weights_dialog is not None and window.weights_dialog.isVisible()


def test_the_weights_action_opens_the_dialog_and_a_change_reaches_the_toolbar(qtbot, make_window,
                                                                             small_weights):
    window = make_window()
    window.choose("deblur")
    assert "light, bundled" in window.weights_label.text()
    window.weights_action.trigger()
    shown = window.weights_dialog
    assert shown.isVisible() and shown.prompts is window.prompts
    window.prompts.weights_answer = str(small_weights)
    with qtbot.waitSignal(shown.weights_changed, timeout=TIMEOUT):
        shown.import_buttons["deblur"].click()
    assert "imported from small_official.pth" in window.weights_label.text()
