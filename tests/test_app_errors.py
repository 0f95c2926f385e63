"""Each kind of failure in the desktop app: a dialog in the app's own words (the core's
classifier, ``cmfnet_core.errors``), a traceback in the log only for a bug; Preferences
that refuse settings which cannot run; the Help menu.

Driven like ``test_app.py`` (its fixtures and helpers are reused): the real engine with
the small checkpoint, offscreen Qt, scripted prompts."""
from __future__ import annotations

import logging
import os
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtWidgets import QDialogButtonBox  # noqa: E402

from cmfnet_core import errors  # noqa: E402
from cmfnet_core.backends import check_options  # noqa: E402
from cmfnet_core.errors import SettingsError, classify  # noqa: E402
from plugin.app import jobs  # noqa: E402
from plugin.app.jobs import EngineOptions  # noqa: E402
from plugin.app.preferences import CHECK, PreferencesDialog  # noqa: E402
from tests.test_app import (TEST_OPTIONS, TIMEOUT, make_window, photo, settings,  # noqa: E402,F401
                            wait_job, weights, window)

OPENVINO_FAILURE = ("Exception from src/inference/src/cpp/infer_request.cpp:223:\n"
                    "Check failed: the CPU plugin could not run the model\n")


def tracebacks(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


def shown_dialog(window) -> tuple[str, str]:
    box = window.errors.box
    assert box is not None and box.isVisible()
    said = (box.windowTitle(), box.text())
    box.accept()
    return said


def test_a_text_file_named_jpg_gets_a_clear_dialog_and_no_traceback(qtbot, window, tmp_path, caplog,
                                                                    capfd):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a photo")
    caplog.set_level(logging.INFO)
    job, (outcome, _) = wait_job(qtbot, window.files, jobs.READ, lambda: window.open_paths([fake]))
    title, text = shown_dialog(window)
    assert outcome == "failed" and title == "Cannot use this photo"
    assert "holiday.jpg could not be opened" in text and errors.KINDS["image"].gui_hint in text
    assert tracebacks(caplog) == [] and "Traceback" not in capfd.readouterr().err
    assert any("holiday.jpg" in record.getMessage() for record in caplog.records)  # one log line


def test_importing_a_file_that_is_not_weights_gets_a_clear_dialog_and_no_traceback(
        qtbot, window, tmp_path, caplog, capfd):
    fake = tmp_path / "CMFNet_deblur.pth"
    fake.write_bytes(b"PK\x03\x04 not really a checkpoint")
    window.prompts.weights_answer = str(fake)
    job, (outcome, (title, message)) = wait_job(qtbot, window.engine, jobs.IMPORT, window.import_weights)
    assert outcome == "failed" and title == "Weights problem"
    assert shown_dialog(window) == (title, message)
    assert "CMFNet_deblur.pth" in message and "Restore ▸ Weights…" in message
    assert tracebacks(caplog) == [] and "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("raise_,title,words", [
    (RuntimeError(OPENVINO_FAILURE), "The engine failed", "choose the paddle backend"),
    (MemoryError(), "Out of memory", "Lower the tile size in Preferences"),
    (PermissionError(13, "Permission denied"), "File error", "you may write there"),
])
def test_an_engine_failure_is_said_in_the_apps_words(qtbot, window, photo, monkeypatch, caplog,
                                                     raise_, title, words):
    def failing(*args, **kwargs):
        def work(progress, cancel):
            raise raise_
        return work

    monkeypatch.setattr(jobs, "preview_work", failing)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([photo]))
    said_title, text = shown_dialog(window)
    assert outcome == "failed" and said_title == title and words in text
    assert "--" not in text and "cmfnet " not in text  # no command-line words in a dialog
    assert tracebacks(caplog) == []
    if title == "The engine failed":
        assert text.startswith("Check failed: the CPU plugin could not run the model")


def test_a_bug_says_so_and_logs_its_traceback(qtbot, window, photo, monkeypatch, caplog):
    def buggy(*args, **kwargs):
        def work(progress, cancel):
            return None + 1
        return work

    monkeypatch.setattr(jobs, "preview_work", buggy)
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([photo]))
    title, text = shown_dialog(window)
    assert (outcome, title) == ("failed", "Unexpected error") and text.startswith("TypeError: ")
    assert "please report it" in text
    (logged,) = tracebacks(caplog)
    assert logged.exc_info[0] is TypeError


def test_automatic_without_its_detector_says_choose_the_task(qtbot, make_window, weights, photo,
                                                             tmp_path, monkeypatch):
    fake = tmp_path / "detector.pdparams"
    fake.write_text("nope")
    monkeypatch.setenv("CMFNET_DETECTOR", str(fake))
    monkeypatch.setattr("cmfnet_core.detect._defaults", {})
    window = make_window()
    window.choose("auto")
    job, (outcome, (title, message)) = wait_job(qtbot, window.engine, jobs.DETECT,
                                                lambda: window.open_paths([photo]))
    assert outcome == "failed" and title == "Automatic is not available"
    assert message.endswith("Choose the task yourself.") and "--task" not in message
    assert window.statusBar().currentMessage().startswith("Automatic is not available: ")


# --- Preferences ------------------------------------------------------------------------------

def press_ok(dialog: PreferencesDialog) -> None:
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()


def refused_on_ok(qtbot, dialog: PreferencesDialog) -> str:
    """Press OK and wait for the check (off the GUI thread) to refuse; what the dialog says."""
    with qtbot.waitSignal(dialog.refused, timeout=TIMEOUT) as refused:
        press_ok(dialog)
    return refused.args[0]


@pytest.mark.parametrize("backend,precision,words", [
    ("paddle", "bf16", "Choose the openvino backend, or precision fp32, in Preferences."),
    ("paddle", "int8", "Choose the openvino backend, or precision fp32, in Preferences."),
])
def test_preferences_refuse_settings_that_cannot_run(qtbot, backend, precision, words):
    dialog = PreferencesDialog(TEST_OPTIONS)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.backend.setCurrentText(backend)
    dialog.precision.setCurrentText(precision)
    said = refused_on_ok(qtbot, dialog)
    assert dialog.isVisible() and dialog.result() != dialog.DialogCode.Accepted  # not saved
    assert said == dialog.problem.text()
    assert dialog.problem.isVisible() and "paddle backend runs fp32 only" in said and words in said
    assert "--" not in said
    dialog.precision.setCurrentText("fp32")  # a combination that runs is taken
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        press_ok(dialog)
    assert dialog.options() == EngineOptions(**{**TEST_OPTIONS.__dict__, "precision": "fp32"})


def test_the_window_keeps_its_settings_when_preferences_are_refused(qtbot, window, monkeypatch):
    def answer(dialog):  # what the user does while the dialog is open
        dialog.show()
        dialog.precision.setCurrentText("int8")
        refused_on_ok(qtbot, dialog)  # still open
        assert dialog.isVisible()
        dialog.reject()
        return dialog.result()

    monkeypatch.setattr(PreferencesDialog, "exec", answer)
    window.edit_preferences()
    assert window.options == TEST_OPTIONS and window.settings.engine_options() == TEST_OPTIONS


def test_choosing_the_gpu_is_checked_off_the_gui_thread_and_said_as_before(qtbot, monkeypatch):
    """Looking for a GPU imports Paddle or starts OpenVINO (seconds): the check runs on a
    worker thread, the dialog stays responsive, and what it says is the core's own words."""
    from plugin.app import preferences

    checked_on = []

    def recording(**settings):
        checked_on.append(threading.current_thread())
        return check_options(**settings)

    monkeypatch.setattr(preferences, "check_options", recording)
    dialog = PreferencesDialog(TEST_OPTIONS)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.device.setCurrentText("gpu")
    dialog.backend.setCurrentText("auto")
    try:  # what this machine answers, asked here as the CLI would
        check_options(backend="auto", device="gpu", precision=TEST_OPTIONS.precision)
        words = None
    except SettingsError as exc:
        words = classify(exc).dialog_text()
    outcome = dialog.accepted if words is None else dialog.refused
    with qtbot.waitSignal(outcome, timeout=TIMEOUT):
        press_ok(dialog)
        assert not dialog.ok_button.isEnabled() and dialog.isVisible()  # checking, not frozen
    assert len(checked_on) == 1 and checked_on[0] is not threading.main_thread()
    if words is not None:  # no GPU here: the same words as before, and nothing saved
        assert dialog.problem.isVisible() and dialog.problem.text() == words
        assert "Choose the cpu device in Preferences." in words
        assert dialog.isVisible() and dialog.ok_button.isEnabled()


def test_closing_preferences_while_checking_drops_the_check(qtbot, window):
    dialog = PreferencesDialog(TEST_OPTIONS, window, runner=window.files)
    dialog.show()
    dialog.precision.setCurrentText("int8")  # would be refused
    with qtbot.waitSignal(window.files.finished, timeout=TIMEOUT,
                          check_params_cb=lambda job: job.kind == CHECK):
        press_ok(dialog)
        dialog.reject()
    assert dialog.result() == dialog.DialogCode.Rejected and not dialog.isVisible()
    assert not dialog.problem.isVisible()  # the outcome that came after was not shown


# --- Help -------------------------------------------------------------------------------------

def test_help_has_the_usage_the_model_card_and_the_version(qtbot, window, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    from cmfnet_core.versions import version_of

    titles = [action.text() for action in window.menuBar().actions()[-1].menu().actions()]
    assert titles == ["&Usage", "&Model Card", "&About"]
    about = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: about.append(text))
    window.about_action.trigger()
    version = version_of("cmfnet-restore")
    assert version != "none" and f"</b> {version}<br>" in about[0]
    usage = window.show_usage()
    text = usage.browser.toPlainText()
    assert text.startswith("Using it") and "cmfnet restore photo.jpg --task deblur" in text
    assert "CMFNET_DATA_DIR" not in text  # the section only, not the README's next ones
    card = window.show_model_card()
    assert card.isVisible() and "model card" in card.browser.toPlainText().lower()
    usage.close()
    card.close()


def test_settings_saved_before_that_cannot_run_are_said_with_where_to_change_them(
        qtbot, window, photo, caplog):
    window.options = EngineOptions(**{**TEST_OPTIONS.__dict__, "precision": "bf16"})  # paddle + bf16
    job, (outcome, _) = wait_job(qtbot, window.engine, jobs.PREVIEW, lambda: window.open_paths([photo]))
    title, text = shown_dialog(window)
    assert (outcome, title) == ("failed", "These settings cannot run here")
    assert text == ("the paddle backend runs fp32 only; bf16 needs the openvino backend\n\n"
                    "Choose the openvino backend, or precision fp32, in Preferences.")
    assert tracebacks(caplog) == []
