"""Simplified Chinese (and any later language): the catalogues are complete and in step
with the code, every user-visible string is marked, and each front end speaks the
system's language (English under LANG=C)."""
from __future__ import annotations

import ast
import gettext
import re
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cmfnet_core import i18n
from tests.conftest import ROOT

babel = pytest.importorskip("babel", reason="the catalogue checks need Babel (the dev extra)")
spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "tools" / "i18n.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)

ZH = {"LANG": "zh_CN.UTF-8"}
PO_FILES = tool.po_files()


def cli(*args, env: dict) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    return subprocess.run([sys.executable, "-m", "cmfnet_core.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**environ, "PYTHONPATH": str(ROOT), **env})


# --------------------------------------------------------------------------- catalogues

def test_there_is_a_simplified_chinese_catalogue():
    assert [p.parent.parent.name for p in PO_FILES] == ["zh_CN"]
    assert "zh_CN" in i18n.available_languages()


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated_not_fuzzy_and_keeps_its_placeholders(po):
    assert tool.problems(tool.read(po)) == []


def test_the_checker_catches_a_missing_fuzzy_or_broken_entry():
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale="zh_CN")
    catalog.add("{path}: no such file", "{path}：文件不存在")
    catalog.add("Saved {path}", "已保存 {name}")
    catalog.add("Open photos", "")
    catalog.add("Cancel", "取消", flags=["fuzzy"])
    catalog.add("invalid choice: %(value)r", "无效的选择")
    assert sorted(p.split(":")[0] for p in tool.problems(catalog)) == [
        "fuzzy", "placeholders differ", "placeholders differ", "untranslated"]


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_the_catalogues_hold_exactly_the_messages_marked_in_the_code(po):
    """``python tools/i18n.py extract`` has been run since the last marked string changed."""
    marked = {m.id for m in tool.extract() if m.id}
    held = {m.id for m in tool.read(po) if m.id}
    assert marked - held == set(), "run: python tools/i18n.py extract, then translate"
    assert held - marked == set(), "run: python tools/i18n.py extract (drops the old entries)"


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_the_compiled_catalogue_is_the_one_babel_makes_from_the_po(po):
    mo = po.with_suffix(".mo")
    assert mo.is_file() and mo.read_bytes() == tool.mo_bytes(po), \
        "run: python tools/i18n.py compile"


# ------------------------------------------------------------------ everything is marked

# calls whose first argument (or these keywords) a user reads
SHOWN_BY = {"setText", "setToolTip", "setStatusTip", "setWindowTitle", "setPlaceholderText",
            "setIconText", "setSpecialValueText", "showMessage", "addMenu", "addToolBar",
            "QAction", "QLabel", "QPushButton", "QDockWidget", "QToolButton", "QCheckBox",
            "QGroupBox", "addRow", "addButton", "setHorizontalHeaderLabels", "information",
            "warning", "critical", "question", "about", "getOpenFileName", "getOpenFileNames",
            "getSaveFileName", "getExistingDirectory", "notify", "_error", "message",
            "set_menu_label", "set_documentation", "progress_init", "add_argument_group"}
SHOWN_KEYWORDS = {"help", "description", "epilog", "tip", "title"}
SCANNED = [*sorted((ROOT / "plugin" / "app").glob("*.py")),
           ROOT / "cmfnet_core" / "cli.py",
           ROOT / "plugin" / "desktop" / "restore_here.py",
           ROOT / "plugin" / "gimp" / "cmfnet-restore" / "cmfnet-restore.py"]
# words for machines or identical in every language (file filters' patterns, units)
NOT_WORDS = {"", "CMFNet Restore", "px", "%"}


def _unmarked_text(node) -> bool:
    """A literal with words in it, not inside _() / N_()."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = re.sub(r"<[^>]*>", "", node.value).strip()  # markup (<b>, <br>) is not words
        return text not in NOT_WORDS and any(c.isalpha() for c in text)
    if isinstance(node, ast.JoinedStr):
        return any(_unmarked_text(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _unmarked_text(node.left) or _unmarked_text(node.right)
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(_unmarked_text(e) for e in node.elts)
    return False


def unmarked_strings(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        shown = list(node.args[:2]) if called in SHOWN_BY else []
        shown += [k.value for k in node.keywords if k.arg in SHOWN_KEYWORDS]
        for arg in shown:
            if _unmarked_text(arg):
                found.append(f"{name}:{arg.lineno}: {ast.unparse(arg)[:60]}")
    return found


def test_the_scan_finds_an_unmarked_label():
    sample = ('QLabel("Hello")\nbar.setToolTip(_("fine"))\n'
              'p.add_argument("--x", help="words")\nshow(f"Saved {path}")\n'
              'box.showMessage(f"Saved {path}", 10)\nQLabel(" px ")\nQLabel(f"<b>{title}</b>")\n'
              'QLabel(f"<b>{title}</b> saved")\n')
    assert [line.split(":")[1] for line in unmarked_strings(sample, "sample")] == ["1", "3", "5", "8"]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_user_visible_strings_are_marked_for_translation(path):
    assert unmarked_strings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))) == []


# ---------------------------------------------------------------------- the language

@pytest.mark.parametrize("environ,expected", [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_CN"}, "zh_CN"),
    ({"LANG": "zh_SG.UTF-8"}, "zh_CN"),
    ({"LANGUAGE": "zh", "LANG": "en_US.UTF-8"}, "zh_CN"),
    ({"LANGUAGE": "de:zh_CN:en", "LANG": "de_DE.UTF-8"}, "zh_CN"),
    ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh_CN"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "C"}, "zh_CN"),
    ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANG": "C"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "zh_TW.UTF-8"}, "en"),  # traditional characters: no catalogue yet
    ({}, "en"),
])
def test_the_language_follows_the_system_with_english_as_fallback(environ, expected):
    assert i18n.choose_language(environ=environ) == expected


def test_windows_and_macos_ask_the_operating_system():
    assert i18n.system_languages({}, platform="linux") == []
    assert i18n.system_languages({"LANG": "zh_CN.UTF-8"}, platform="darwin") == ["zh_CN"]


def test_a_preference_wins_over_the_system():
    assert i18n.choose_language("en", environ=ZH) == "en"
    assert i18n.choose_language("zh_CN", environ={"LANG": "C"}) == "zh_CN"
    assert i18n.choose_language(i18n.SYSTEM, environ=ZH) == "zh_CN"
    assert i18n.choose_language("xx_YY", environ={"LANG": "C"}) == "en"  # no such catalogue


def test_messages_and_tables_follow_a_change_of_language():
    titles = i18n.Translated({"deblur": i18n.N_("Deblur")})
    i18n.set_language("zh_CN")
    assert i18n._("Deblur") == "去模糊" and titles["deblur"] == "去模糊"
    assert dict(titles.items()) == {"deblur": "去模糊"}
    assert i18n._("a message nobody translated") == "a message nobody translated"
    i18n.set_language("en")
    assert titles["deblur"] == "Deblur"


def test_the_seed_articles_terms_are_used_and_kept():
    catalog = {m.id: m.string for m in tool.read(PO_FILES[0]) if m.id}
    assert catalog["Deblur"] == "去模糊" and catalog["Dehaze"] == "去雾"
    assert catalog["Deraindrop"] == "去雨水" and catalog["Restore"] == "图像恢复"
    strings = " ".join(s if isinstance(s, str) else " ".join(s) for s in catalog.values())
    assert "去雨滴" not in strings  # one word for deraindrop, everywhere


# ------------------------------------------------------------------------------ the CLI

def test_cmfnet_help_is_chinese_under_a_chinese_locale():
    result = cli("--help", env=ZH)
    assert result.returncode == 0
    assert result.stdout.startswith("用法：cmfnet")
    for words in ("位置参数", "选项", "显示此帮助信息并退出", "用 CMFNet 让模糊、有雾或有雨水的照片变清晰。",
                  "恢复照片，并在原图旁写出 NAME.TASK.EXT"):
        assert words in result.stdout


def test_cmfnet_restore_help_is_chinese_and_keeps_options_and_names():
    out = cli("restore", "--help", env=ZH).stdout
    for words in ("要恢复的照片", "\n引擎：\n", "\n选项：\n", "示例：", "原图从不被修改", "--out-dir", "NAME.TASK.EXT",
                  "photo.dehaze.jpg", "512"):
        assert words in out


def test_chinese_help_fits_the_terminal():
    out = cli("restore", "--help", env={**ZH, "COLUMNS": "80"}).stdout
    options = [line for line in out.split("示例：")[0].splitlines() if line.startswith(" ")]
    assert len(options) > 20 and max(i18n._columns(line) for line in options) <= 80


def test_wide_text_wraps_by_columns_and_keeps_punctuation_with_its_words():
    text = "在 stderr 上输出“PROGRESS done total”行而不是进度条（供调用 cmfnet 的程序使用）"
    lines = i18n.wrap_wide(text, 30)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(i18n._columns(line) <= 30 for line in lines)
    assert not any(line[0] in "，。）”" or line[-1] in "（“" for line in lines)
    assert i18n.wrap_wide("plain words stay whole", 11) == ["plain words", "stay whole"]


def test_bad_input_is_reported_in_chinese(tmp_path):
    result = cli("restore", "--task", "sharpen", "x.jpg", env=ZH)
    assert result.returncode == 2
    assert "无效的选择：'sharpen'" in result.stderr and "用法：" in result.stderr
    missing = tmp_path / "不在.jpg"
    result = cli("restore", "--task", "deblur", "--backend", "paddle", missing, env=ZH)
    assert result.returncode == 1
    # the prefix stays for programs that read it; the words are Chinese, the path untouched
    assert f"cmfnet: error: {missing}：文件不存在" in result.stderr


def test_settings_that_cannot_run_are_refused_in_chinese_with_their_hint():
    result = cli("restore", "--task", "deblur", "--backend", "paddle", "--precision", "bf16",
                 "--progress-lines", "x.jpg", env=ZH)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "cmfnet: error: paddle 后端只运行 fp32；bf16 需要 openvino 后端" in lines
    assert "cmfnet: hint: 请使用 --backend openvino，或 --precision fp32" in lines
    # the RESULT line's keywords stay for programs; its message is for people
    result_line = next(line for line in lines if line.startswith("RESULT\t"))
    assert result_line.split("\t")[1:5] == ["failed", "-", "-", "settings"]


def test_the_weights_commands_speak_chinese():
    out = cli("weights", "download", "--help", env=ZH).stdout
    for words in ("下载 CMFNet 作者的权重", "改从这个地址下载", "示例：", "--keep", "CMFNET_WEIGHTS_MIRROR"):
        assert words in out
    listing = cli("weights", "list", env=ZH).stdout
    assert "deblur:\n  * 轻量，自带（由本项目训练）" in listing  # task names stay: the GIMP bridge reads them
    assert "（* = 默认使用" in listing


def test_everything_is_english_under_lang_c(tmp_path):
    result = cli("--help", env={"LANG": "C"})
    assert result.stdout.startswith("usage: cmfnet") and "positional arguments" in result.stdout
    assert not any("\u4e00" <= c <= "\u9fff" for c in result.stdout)
    result = cli("restore", "--task", "deblur", "--backend", "paddle", tmp_path / "gone.jpg",
                 env={"LANG": "C"})
    assert f"{tmp_path / 'gone.jpg'}: no such file" in result.stderr


def test_detects_machine_readable_words_stay_as_they_are():
    out = cli("detect", "--help", env=ZH).stdout
    assert "PATH<TAB>TASK<TAB>CONFIDENCE" in out and "deblur、dehaze、deraindrop 或 none" in out


# ---------------------------------------------------------------------- the desktop

def test_desktop_entries_carry_chinese_names():
    from plugin.desktop import integration

    target = integration.Target(python="/venv/bin/python", project_dir=str(ROOT))
    entry = integration.freedesktop_entry(target)
    assert "Name[zh_CN]=图像恢复\n" in entry  # the one-click entry
    assert "Name[zh_CN]=去模糊并保存副本\n" in entry and "Name[zh_CN]=去雾…\n" in entry
    assert "GenericName[zh_CN]=图像恢复\n" in entry and "Keywords[zh_CN]=去模糊;" in entry
    assert "\nName=CMFNet Restore\n" in entry and "\nName=Deblur and save copy\n" in entry
    menu = integration.dolphin_service_menu(target)
    assert "Name[zh_CN]=去雨水并保存副本\n" in menu
    assert "Name[zh_CN]=图像恢复\n" in integration.dolphin_service_menu(target, top_level=True)


def test_the_runners_notifications_are_chinese(monkeypatch, tmp_path):
    from plugin.desktop import restore_here

    Result = restore_here.results.Result
    photo, out = tmp_path / "photo.jpg", tmp_path / "photo.dehaze.jpg"
    sure = Result("written", "dehaze", 0.87, None, str(photo), str(out), "看起来有雾 · 87 %")
    unsure = Result("written", "dehaze", 0.45, None, str(photo), str(out),
                    "可能有雾 · 45 %（也可能模糊 · 30 %）", unsure=True)
    broken = Result("failed", None, None, "memory", str(photo), None, f"{photo}: 内存不足")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    restore_here.load_i18n().set_language()
    try:
        assert restore_here.outcome([photo], "auto", 0, [sure]) == (
            "已去雾：photo.jpg", "看起来有雾 · 87 %：已保存 photo.dehaze.jpg", False)
        # an unsure photo (the line's UNSURE field) is said so, in Chinese
        assert restore_here.outcome([photo], "auto", 0, [unsure])[1] == (
            "把握不足，采用了可能性更大的任务：可能有雾 · 45 %（也可能模糊 · 30 %）：已保存 photo.dehaze.jpg")
        summary, body, error = restore_here.outcome([photo], "auto", 1, [broken])
        assert summary == "CMFNet Restore：无法恢复 photo.jpg" and error
        assert body.splitlines()[1] == "请在 CMFNet Restore 中打开这张照片，并在首选项中减小分块大小。"
    finally:
        restore_here.load_i18n().set_language("en")
    assert restore_here.outcome([photo], "auto", 0, [sure])[0] == "Dehazed photo.jpg"


# ---------------------------------------------------------------------------- GIMP

def test_the_gimp_plugin_gets_the_catalogue_under_its_own_domain(tmp_path):
    from plugin.gimp import installer

    installer.install_plugin("/venv/bin/python", str(ROOT), tmp_path)
    folder = tmp_path / "plug-ins" / "cmfnet-restore"
    source = (folder / "cmfnet-restore.py").read_text(encoding="utf-8")
    assert 'DOMAIN = BINARY' in source and 'return True, DOMAIN, CATALOG_DIR' in source
    assert 'BINARY = "cmfnet-restore"' in source and 'CATALOG_DIR = "locale"' in source
    catalogue = gettext.translation("cmfnet-restore", str(folder / "locale"), languages=["zh_CN"])
    assert catalogue.gettext("CMFNet _Restore…") == "CMFNet 图像恢复(_R)…"
    assert catalogue.gettext("Dehaze") == "去雾"


def test_the_gimp_bridge_reads_the_engines_chinese_words(tmp_path):
    """The engine speaks GIMP's language (it inherits GIMP's environment); the bridge, given
    the plug-in's catalogue, still tells the authors' weights apart, and shows an unsure
    result (told by the line's UNSURE field) in the engine's words."""
    from plugin.gimp import installer
    from tests.test_gimp import bridge

    installer.install_plugin("/venv/bin/python", str(ROOT), tmp_path)
    catalogue = gettext.translation("cmfnet-restore", str(tmp_path / "plug-ins" / "cmfnet-restore" / "locale"),
                                    languages=["zh_CN"])
    Result = bridge.results.Result
    src, out = "/tmp/layer.png", "/tmp/out/layer.dehaze.png"
    maybe = "可能有雾 · 55 %（也可能模糊 · 30 %）"
    bridge.set_translator(catalogue.gettext)
    try:
        unsure = [Result("written", "dehaze", 0.55, None, src, out, maybe, unsure=True).line()]
        assert bridge.engine_result(unsure, src) == bridge.EngineResult(out, "dehaze", maybe)
        sure = [Result("written", "dehaze", 0.87, None, src, out, "看起来有雾 · 87 %").line()]
        assert bridge.engine_result(sure, src).message == ""
        failed = [Result("failed", "deblur", None, "memory", src, None, f"{src}: 内存不足").line()]
        with pytest.raises(bridge.BridgeError) as error:
            bridge.engine_result(failed, src)
        assert str(error.value) == f"CMFNet 图像恢复失败：{src}: 内存不足\n请在此对话框中减小分块大小后重试。"
        cfg = bridge.Config(python="p")
        authors = {t: "作者原版（完整尺寸），下载于 2026-12-03" for t in bridge.TASKS}
        note = bridge.weights_note(cfg, bridge.AUTO_TASK, authors)
        assert note.startswith("权重：去模糊：作者原版（完整尺寸），下载于 2026-12-03；去雾：")
        assert "cmfnet weights download" not in note  # every task has the authors' already
        light = {**authors, "deblur": "轻量，自带（由本项目训练）"}
        assert "cmfnet weights download" in bridge.weights_note(cfg, bridge.AUTO_TASK, light)
    finally:
        bridge.set_translator(str)
