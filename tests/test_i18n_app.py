"""The desktop app in Simplified Chinese: its own words from our catalogue, Qt's
standard dialogs from Qt's qtbase translation, the language from the system or
Preferences; English under LANG=C."""
from __future__ import annotations

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QSettings  # noqa: E402
from PyQt6.QtWidgets import QDialogButtonBox, QMessageBox  # noqa: E402

from cmfnet_core import i18n  # noqa: E402
from plugin.app.preferences import PreferencesDialog  # noqa: E402
from plugin.app.settings import AppSettings  # noqa: E402
from plugin.app.translations import install_translations, qt_translations_dir  # noqa: E402
from plugin.app.window import MainWindow  # noqa: E402
from tests.test_app import TEST_OPTIONS, ScriptedPrompts  # noqa: E402

SB = QMessageBox.StandardButton


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    s = AppSettings(QSettings(str(tmp_path / "app.ini"), QSettings.Format.IniFormat))
    s.set_engine_options(TEST_OPTIONS)
    return s


@pytest.fixture
def speak(qapp, monkeypatch):
    """``speak(preference, LANG)``: the app's language as main() sets it; English afterwards."""
    def set_to(preference=None, lang="C.UTF-8"):
        monkeypatch.setenv("LANG", lang)
        return install_translations(qapp, preference)

    yield set_to
    install_translations(qapp, i18n.ENGLISH)


def make_window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings=settings, prompts=ScriptedPrompts(), warm_up=False)
    qtbot.addWidget(window)
    return window


def question_buttons() -> list[str]:
    """A Qt standard dialog: the unsaved-result question's buttons, as Qt itself labels them."""
    box = QMessageBox(QMessageBox.Icon.Question, "", "", SB.Save | SB.Discard | SB.Cancel)
    return [box.button(b).text() for b in (SB.Save, SB.Discard, SB.Cancel)]


def test_qt_ships_its_chinese_translation():
    from pathlib import Path

    assert (Path(qt_translations_dir()) / "qtbase_zh_CN.qm").is_file()


def test_the_app_speaks_chinese_under_a_chinese_locale(qtbot, settings, speak):
    assert speak(lang="zh_CN.UTF-8") == "zh_CN"
    window = make_window(qtbot, settings)
    assert [a.text() for a in window.menuBar().actions()] == ["文件(&F)", "视图(&V)", "恢复(&R)", "帮助(&H)"]
    assert window.open_action.text() == "打开(&O)…"
    assert window.open_action.iconText() == "打开"  # the toolbar: no "(O)", as "&Open…" shows "Open"
    assert window.weights_action.iconText() == "权重"
    assert window.apply_action.toolTip() == "以全分辨率恢复整张照片"
    assert [window.task_combo.itemText(i) for i in range(window.task_combo.count())] == \
        ["自动", "去模糊", "去雾", "去雨水"]
    assert window.compare_button.text() == "按住查看原图"
    assert question_buttons() == ["保存", "丢弃", "取消"]  # Qt's own words, from qtbase_zh_CN.qm


def test_everything_is_english_under_lang_c(qtbot, settings, speak):
    assert speak(lang="C") == "en"
    window = make_window(qtbot, settings)
    assert [a.text() for a in window.menuBar().actions()] == ["&File", "&View", "&Restore", "&Help"]
    assert window.task_combo.itemText(2) == "Dehaze"
    assert question_buttons() == ["Save", "Discard", "Cancel"]


def test_the_preferences_language_wins_over_the_system(qtbot, settings, speak):
    dialog = PreferencesDialog(TEST_OPTIONS, language=settings.language())
    qtbot.addWidget(dialog)
    names = [dialog.language.itemText(i) for i in range(dialog.language.count())]
    assert names == ["System language", "English", "简体中文"]
    assert dialog.chosen_language() == i18n.SYSTEM  # the default: follow the system
    dialog.language.setCurrentIndex(2)
    settings.set_language(dialog.chosen_language())
    assert AppSettings(settings.store).language() == "zh_CN"

    assert speak(settings.language(), lang="C") == "zh_CN"  # what main() does at start
    chinese = PreferencesDialog(TEST_OPTIONS, language=settings.language())
    qtbot.addWidget(chinese)
    assert chinese.windowTitle() == "首选项" and chinese.language.currentText() == "简体中文"
    buttons = chinese.findChild(QDialogButtonBox)
    assert buttons.button(QDialogButtonBox.StandardButton.Cancel).text() == "取消"

    settings.set_language(i18n.ENGLISH)
    assert speak(settings.language(), lang="zh_CN.UTF-8") == "en"
    assert question_buttons()[0] == "Save"


def test_the_weights_dialog_speaks_chinese(qtbot, speak):
    from plugin.app.weights_dialog import HEADLINES, WeightsDialog

    assert speak(lang="zh_CN.UTF-8") == "zh_CN"
    dialog = WeightsDialog(ScriptedPrompts())
    qtbot.addWidget(dialog)
    try:
        assert dialog.windowTitle() == "权重"
        assert dialog.download_all.text() == "下载作者的权重（每个约 200 MB）"
        assert dialog.download_buttons["deblur"].text() == "下载"
        assert dialog.import_buttons["deblur"].text() == "导入…"
        assert dialog.choices["dehaze"].currentText() == "轻量，自带（由本项目训练）"
        assert HEADLINES["offline"] == "无法连接下载服务器。你连上互联网了吗？"  # read when shown
    finally:
        dialog.shutdown()


def test_a_problem_is_said_in_the_language_of_now_though_its_table_was_built_before(speak):
    """errors.KINDS is built at import, in English; titles and hints come out at use."""
    from cmfnet_core.errors import SettingsError, classify

    assert speak(lang="zh_CN.UTF-8") == "zh_CN"
    memory = classify(MemoryError())
    assert (memory.title, memory.message) == ("内存不足", "内存不足，无法恢复此照片")
    assert memory.gui_hint == "请在首选项中减小分块大小后重试。"
    assert memory.cli_hint == "请尝试更小的 --tile"
    assert classify(KeyboardInterrupt()).gui_hint == ""  # no hint, not the catalogue's header
    speak(lang="C")
    assert classify(SettingsError("x")).title == "These settings cannot run here"


def test_preferences_refuse_in_chinese(qtbot, speak):
    assert speak(lang="zh_CN.UTF-8") == "zh_CN"
    dialog = PreferencesDialog(TEST_OPTIONS)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.backend.setCurrentText("paddle")
    dialog.precision.setCurrentText("bf16")
    with qtbot.waitSignal(dialog.refused, timeout=30_000):  # the check runs off the GUI thread
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.problem.text() == ("paddle 后端只运行 fp32；bf16 需要 openvino 后端\n\n"
                                     "请在首选项中选择 openvino 后端，或把精度选为 fp32。")


def test_help_usage_is_the_chinese_readme_in_chinese(qtbot, settings, speak):
    assert speak(lang="zh_CN.UTF-8") == "zh_CN"
    window = make_window(qtbot, settings)
    titles = [action.text() for action in window.menuBar().actions()[-1].menu().actions()]
    assert titles == ["用法(&U)", "模型卡片(&M)", "关于(&A)"]
    usage = window.show_usage()
    text = usage.browser.toPlainText()
    assert usage.windowTitle() == "CMFNet Restore：用法"
    assert text.startswith("使用") and "cmfnet weights download" in text and "都跟随系统语言" not in text  # the section only
    usage.close()
