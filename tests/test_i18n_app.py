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
