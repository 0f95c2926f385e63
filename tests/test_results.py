"""The RESULT line: ``cmfnet restore --progress-lines``' result for programs, and the one
parser the GIMP bridge and the right-click runner share (``cmfnet_core/results.py``).

The end-to-end tests run the real CLI (a subprocess, the small real checkpoint) and
read its real output through the bridge's and the runner's own code, so rewording a
human message cannot break them and a changed RESULT line cannot pass them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmfnet_core import errors, results
from cmfnet_core.results import Result, parse_result, quote_path, unquote_path
from tests.conftest import ROOT, imports_outside_stdlib
from tests.test_gimp import PLUGIN_SRC, bridge

RESULTS_SOURCE = ROOT / "cmfnet_core" / "results.py"
RUNNER = ROOT / "plugin" / "desktop" / "restore_here.py"
FAST = ["--backend", "paddle", "--tile", "64", "--overlap", "16"]
ODD_NAMES = ["holiday photo.png", "tab\there.png", "new\nline.png", "100%.png", "%41.png",
             "-", "ünïcødé 写真.jpg", os.fsdecode(b"not-utf8-\xff.png"), "a\\b.png"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_any_file_name_survives_a_result_line(name):
    line = Result("written", "dehaze", 0.871, None, f"/photos/{name}", f"/out/{name}",
                  "Looks hazy · 87 %").line()
    assert "\n" not in line and line.count("\t") == 8 and line.rsplit("\t", 2)[0].isascii()
    assert parse_result(line) == Result("written", "dehaze", 0.87, None, f"/photos/{name}",
                                        f"/out/{name}", "Looks hazy · 87 %")
    assert unquote_path(quote_path(name)) == name


def test_absent_fields_are_a_dash_and_a_message_stays_one_field():
    line = Result("failed", error="weights", message="bad\tweights\nfile").line()
    assert line == "RESULT\tfailed\t-\t-\tweights\t-\t-\tbad weights file\t-"
    assert parse_result(line) == Result("failed", None, None, "weights", None, None, "bad weights file")


def test_an_unsure_detection_is_a_field_of_its_own_not_the_messages_words():
    """Programs tell an unsure pick by the UNSURE field: MESSAGE is in the user's language."""
    unsure = Result("written", "dehaze", 0.45, None, "a.png", "a.dehaze.png",
                    "可能有雾 · 45 %（也可能模糊 · 30 %）", unsure=True)
    assert unsure.line().endswith("\t可能有雾 · 45 %（也可能模糊 · 30 %）\tunsure")
    assert parse_result(unsure.line()) == unsure
    skipped = Result("skipped", "deblur", 0.4, None, "b.png", None, "", unsure=True)
    assert parse_result(skipped.line()) == skipped  # an empty message keeps its place
    sure = Result("written", "dehaze", 0.87, None, "a.png", "a.dehaze.png", "Maybe hazy · 87 %")
    assert sure.line().endswith("\t-") and parse_result(sure.line()).unsure is False


def test_a_line_from_before_the_unsure_field_still_reads_as_not_unsure():
    older = "RESULT\twritten\tdehaze\t0.45\t-\ta.png\ta.dehaze.png\tMaybe hazy · 45 % (or blurry · 30 %)\n"
    assert parse_result(older) == Result("written", "dehaze", 0.45, None, "a.png", "a.dehaze.png",
                                         "Maybe hazy · 45 % (or blurry · 30 %)", unsure=False)


def test_other_lines_are_not_results_and_later_fields_are_ignored():
    for other in ("PROGRESS 1 2", "cmfnet: error: x", "RESULT written", "RESULT\tmaybe\t-\t-\t-\t-\t-\t",
                  "RESULT\twritten\tdeblur\tsure\t-\ta\tb\t", "result\twritten\t-\t-\t-\ta\tb\t"):
        assert parse_result(other) is None, other
    later = "RESULT\tskipped\tnone\t0.91\t-\ta.png\t-\tLooks fine · 91 %\t-\tdehaze\t0.05\n"
    assert parse_result(later) == Result("skipped", "none", 0.91, None, "a.png", None, "Looks fine · 91 %")
    assert parse_result(later.replace("%\t-\t", "%\tunsure\t")).unsure
    assert not parse_result(later.replace("%\t-\t", "%\tperhaps\t")).unsure  # a value it does not know


def test_the_gimp_plugin_carries_an_identical_copy_and_installs_it(tmp_path):
    from plugin.gimp import installer

    assert (PLUGIN_SRC / "cmfnet_results.py").read_bytes() == RESULTS_SOURCE.read_bytes()
    installer.install_plugin("/venv/bin/python", "/proj", tmp_path)
    installed = tmp_path / "plug-ins" / "cmfnet-restore" / "cmfnet_results.py"
    assert installed.read_bytes() == RESULTS_SOURCE.read_bytes()


def test_the_parser_needs_only_the_standard_library():
    """GIMP's Python and the runner's may have no numpy: the module imports nothing else."""
    load = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('r', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); sys.modules['r'] = m\n"
            "spec.loader.exec_module(m)")
    assert set(imports_outside_stdlib(load, str(RESULTS_SOURCE))) - {"r", "__main__"} == set()


def test_gimp_and_the_runner_have_words_for_every_kind_of_failure():
    from plugin.desktop import restore_here

    assert set(bridge.NEXT_STEPS) == set(restore_here.NEXT_STEPS) == set(errors.KINDS)
    for steps in (bridge.NEXT_STEPS, restore_here.NEXT_STEPS):
        for kind, words in steps.items():
            assert bool(words) == (kind != "interrupted"), kind
            assert "use --" not in words and "--tile" not in words  # no command line there
    assert "cmfnet-restore.json" in bridge.NEXT_STEPS["backend"]  # GIMP's place for engine options
    assert all("--" not in words for words in restore_here.NEXT_STEPS.values())


# --- the real CLI, read by the real readers --------------------------------------------------

def run_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cmfnet_core.cli", "restore", *map(str, args),
                           "--progress-lines"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, **kwargs)


def test_each_photo_gets_one_result_line_in_order(tmp_path, photo_file, small_weights):
    odd = tmp_path / "tab\there 100%.png"
    odd.write_bytes(photo_file.read_bytes())
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    run = run_cli(odd, fake, photo_file, "--task", "deblur", "--weights", small_weights, *FAST)
    said = results.results_in(run.stderr)
    assert [(r.status, r.task, r.error, r.source) for r in said] == [
        ("written", "deblur", None, str(odd)), ("failed", "deblur", "image", str(fake)),
        ("written", "deblur", None, str(photo_file))]
    assert [Path(r.output).is_file() for r in said if r.output] == [True, True]
    assert said[0].output == str(tmp_path / "tab\there 100%.deblur.png")
    assert said[1].message.startswith(str(fake)) and said[0].confidence is None


def test_automatic_results_carry_the_task_and_the_confidence(tmp_path, photo_file):
    """The bundled detector and weights, as a user runs it: whatever it decides, the line
    says it (written: the task that ran; skipped: what it saw) with its confidence."""
    run = run_cli(photo_file, *FAST[:2])
    assert run.returncode == 0, run.stderr
    (said,) = results.results_in(run.stderr)
    assert said.status in ("written", "skipped") and 0 <= said.confidence <= 1
    assert said.task in ("deblur", "dehaze", "deraindrop", "none")
    if said.status == "written":
        assert Path(said.output).name == f"holiday photo.{said.task}.png"
        assert run.stdout.splitlines() == [said.output]
    else:
        assert said.output is None and run.stdout == ""


def test_an_unsure_photo_is_flagged_in_any_language_and_read_so_by_the_runner(tmp_path, photo_file):
    """The real CLI in Chinese, with a detector weights file that is unsure of every photo
    (40 % blurry): both of its answers carry UNSURE, and the right-click runner, in English,
    says the photo was a guess from the field alone (its words are Chinese)."""
    from plugin.desktop import restore_here
    from tests.test_detect import UNSURE, constant_detector

    environ = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env = dict(environ, LANG="zh_CN.UTF-8", PYTHONPATH=str(ROOT),
               CMFNET_DETECTOR=str(constant_detector(tmp_path, UNSURE)))
    run = run_cli(photo_file, *FAST, env=env)
    assert run.returncode == 0, run.stderr
    (skipped,) = results.results_in(run.stderr)
    assert (skipped.status, skipped.task, skipped.unsure) == ("skipped", "deblur", True)
    assert not skipped.message.startswith("Maybe")  # the words are Chinese; the field is not
    run = run_cli(photo_file, "--if-unsure", "likely", *FAST, env=env)
    assert run.returncode == 0, run.stderr
    (written,) = results.results_in(run.stderr)
    assert (written.status, written.task, written.unsure) == ("written", "deblur", True)
    name = "holiday photo.deblur.png"
    assert restore_here.outcome([photo_file], "auto", 0, [written])[1] == \
        f"Not sure, took the likelier: {written.message}: saved {name}"
    assert bridge.engine_result([written.line()], str(photo_file)) == \
        bridge.EngineResult(str(tmp_path / name), "deblur", written.message)


def test_the_gimp_bridge_reads_the_real_clis_result(tmp_path, photo_file, small_weights):
    out = tmp_path / "out"
    out.mkdir()
    cfg = bridge.Config(python=sys.executable, weights=str(small_weights),
                        extra_args=FAST)
    command = bridge.engine_command(cfg, str(photo_file), str(out), "dehaze")
    seen = []
    lines = bridge.run_engine(command, lambda done, total: seen.append((done, total)),
                              environ=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert seen[-1][0] == seen[-1][1] > 1
    result = bridge.engine_result(lines, str(photo_file))
    assert result == bridge.EngineResult(str(out / "holiday photo.dehaze.png"), "dehaze")
    assert Path(result.path).is_file()


def test_the_gimp_bridge_says_a_real_failure_in_gimps_words(tmp_path, small_weights):
    fake = tmp_path / "in-0.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    cfg = bridge.Config(python=sys.executable, weights=str(small_weights), extra_args=FAST)
    command = bridge.engine_command(cfg, str(fake), str(tmp_path), "deblur")
    with pytest.raises(bridge.BridgeError) as failed:
        bridge.run_engine(command, environ=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert failed.value.kind == "image"
    assert str(fake) in str(failed.value) and bridge.NEXT_STEPS["image"] in str(failed.value)
    # a tile the engine refuses: the plug-in's own fields are what to change
    cfg.extra_args = ["--backend", "paddle"]
    command = bridge.engine_command(cfg, str(fake), str(tmp_path), "deblur", tile=100)
    with pytest.raises(bridge.BridgeError) as failed:
        bridge.run_engine(command, environ=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert failed.value.kind == "settings" and "multiples of 8" in str(failed.value)
    assert "--tile" not in str(failed.value)


def runner(tmp_path, *args) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """The right-click runner with the real CLI; returns its run and the notifications sent."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    notes = tmp_path / "notes.log"
    (bin_dir / "notify-send").write_text(  # arguments end in \x1f, notifications in \x1e
        f"#!/bin/sh\nprintf '%s\\037' \"$@\" >> '{notes}'\nprintf '\\036' >> '{notes}'\n")
    (bin_dir / "notify-send").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.run([sys.executable, str(RUNNER), "--python", sys.executable, *map(str, args)],
                         env=env, capture_output=True, text=True, timeout=300)
    sent = notes.read_text().split("\x1e")[:-1] if notes.exists() else []
    return run, [note.split("\x1f")[:-1] for note in sent]


def test_the_runner_reads_the_real_clis_result(tmp_path, photo_file, small_weights):
    run, notes = runner(tmp_path, "--task", "deblur", "--weights", small_weights, "--save", photo_file)
    assert run.returncode == 0, run.stderr
    summary, body = notes[-1][-2:]
    assert summary == "Deblurred holiday photo.png" and body == "holiday photo.deblur.png"


def test_the_runner_says_a_real_failure_and_what_to_do(tmp_path, photo_file, small_weights):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    run, notes = runner(tmp_path, "--task", "deblur", "--weights", small_weights, "--save",
                        fake, photo_file)
    from plugin.desktop import restore_here

    assert run.returncode == 1
    summary, body = notes[-1][-2:]
    assert summary == "Deblurred 1 of 2 photos; 1 could not be restored"
    message, step = body.split("\n")
    assert message.startswith(f"{fake}: not an image") and step == restore_here.NEXT_STEPS["image"]
    # no weights at all: the whole run failed, said once, with its next step
    run, notes = runner(tmp_path, "--task", "deblur", "--weights", tmp_path / "none.pth", "--save",
                        photo_file)
    assert run.returncode == 3
    summary, body = notes[-1][-2:]
    assert summary == "CMFNet Restore: restore failed"
    assert "none.pth" in body and body.endswith(restore_here.NEXT_STEPS["weights"])
