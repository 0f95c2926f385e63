"""The `cmfnet` command, run as a user would: real files, real exit codes."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAST = ["--backend", "paddle", "--tile", "64", "--overlap", "16"]


def cmfnet(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cmfnet_core.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, **kwargs)


def test_restore_writes_name_task_ext_beside_the_original(photo_file, small_weights):
    before = photo_file.read_bytes()
    result = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    out = photo_file.with_name("holiday photo.deblur.png")
    assert result.stdout.strip() == str(out) and out.exists()
    assert photo_file.read_bytes() == before
    again = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights, "-q", *FAST)
    assert again.stdout.strip().endswith("holiday photo.deblur-2.png")
    out.write_bytes(b"the first result")
    replaced = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights, "-q",
                      "--overwrite", *FAST)
    assert replaced.stdout.strip() == str(out) and out.read_bytes() != b"the first result"
    assert not photo_file.with_name("holiday photo.deblur-3.png").exists()


def test_a_bad_file_fails_alone_and_the_exit_code_says_so(tmp_path, photo_file, small_weights):
    broken = tmp_path / "-broken.jpg"  # a leading dash must not be taken for an option
    broken.write_text("not a photo")
    result = cmfnet("restore", "--task", "deblur", "--weights", small_weights, "-q", *FAST,
                    "--", broken, photo_file)
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1 and "-broken.jpg" in result.stderr
    assert photo_file.with_name("holiday photo.deblur.png").exists()
    assert not (tmp_path / "-broken.deblur.jpg").exists()


def test_unusable_weights_exit_3_with_the_reason(photo_file, tmp_path):
    fake = tmp_path / "model.pth"
    fake.write_text("nope")
    result = cmfnet("restore", photo_file, "--task", "dehaze", "--weights", fake)
    assert result.returncode == 3
    assert "model.pth" in result.stderr and "Traceback" not in result.stderr


def test_the_original_is_never_the_output_without_overwrite(photo_file, small_weights):
    before = photo_file.read_bytes()
    result = cmfnet("restore", photo_file, "-o", photo_file, "--task", "deblur",
                    "--weights", small_weights, *FAST)
    assert result.returncode == 1 and "--overwrite" in result.stderr
    assert photo_file.read_bytes() == before


def test_progress_lines_for_other_programs(photo_file, small_weights):
    result = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights,
                    "--progress-lines", *FAST)
    lines = [line.split() for line in result.stderr.splitlines() if line.startswith("PROGRESS")]
    total = int(lines[0][2])
    assert [int(done) for _, done, _ in lines] == list(range(total + 1))


# `cmfnet` with one hold: after its first tile it waits for stdin to close. The test sends
# its signal first and closes stdin after, so the signal always lands between tiles 1 and 2
# (4 fast tiles would otherwise race it to the end and write the output).
HOLD_AFTER_FIRST_TILE = """
import sys
from cmfnet_core.engine import Restorer
restore = Restorer.restore
def held(self, image, *args, progress=None, **kwargs):
    def report(done, total):
        progress(done, total)
        if done == 1:
            sys.stdin.read()
    return restore(self, image, *args, progress=report, **kwargs)
Restorer.restore = held
from cmfnet_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_leaves_no_output(photo_file, small_weights, sig):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_AFTER_FIRST_TILE, "restore", str(photo_file), "--task", "deblur",
         "--weights", str(small_weights), "--progress-lines", *FAST],
        cwd=ROOT, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    progress = []
    for line in process.stderr:
        if line.startswith("PROGRESS "):
            progress.append(line)
        if line.startswith("PROGRESS 1 "):
            process.send_signal(sig)
            break
    _, rest = process.communicate(timeout=120)  # closes stdin: the held run goes on, interrupted
    assert process.returncode == 130, rest
    assert int(progress[0].split()[2]) > 1 and len(progress) == 2  # interrupted part way
    assert "PROGRESS" not in rest  # not one more tile after the signal
    assert sorted(p.name for p in photo_file.parent.iterdir()) == [photo_file.name]


def test_weights_import_and_list(small_weights):
    imported = cmfnet("weights", "import", "deraindrop", small_weights, "--name", "official-small")
    assert imported.returncode == 0, imported.stderr
    listing = cmfnet("weights", "list")
    lines = listing.stdout.splitlines()
    at = next(i for i, l in enumerate(lines) if "official-small" in l)  # its path, under its words
    assert lines[at - 1].strip() == "* imported from small_official.pth (light)"
    assert "n_feat" not in listing.stdout


def test_help_teaches_and_does_not_load_the_frameworks():
    result = cmfnet("restore", "--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "--task" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from cmfnet_core import cli\n"
         "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in ('paddle', 'openvino', 'torch', 'PyQt6') if m in sys.modules))"],
        capture_output=True, text=True, cwd=ROOT)
    assert probe.stdout.strip().endswith("[]")


def test_the_package_exports_the_engine_contract():
    """docs/ARCHITECTURE.md's imports work, and ``__all__`` is the contract, no more."""
    import cmfnet_core
    from cmfnet_core import engine, imageio, weights

    assert sorted(cmfnet_core.__all__) == ["CancelToken", "Cancelled", "ImageError", "Restorer",
                                           "TASKS", "WeightsError", "load_network"]
    star: dict = {}
    exec("from cmfnet_core import *", star)
    assert star["Restorer"] is engine.Restorer and star["CancelToken"] is engine.CancelToken
    assert star["Cancelled"] is engine.Cancelled and star["ImageError"] is imageio.ImageError
    assert star["WeightsError"] is weights.WeightsError and star["TASKS"] == weights.TASKS
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    imports = [line for line in doc.splitlines() if line.startswith("from cmfnet_core import")]
    assert imports
    for line in imports:
        exec(line, {})


def test_usage_errors_exit_2():
    assert cmfnet("restore", "x.jpg", "--weights", "w.pth").returncode == 2  # which task is the file for?
    assert cmfnet("restore", "a.jpg", "b.jpg", "-o", "c.jpg", "--task", "deblur").returncode == 2


def test_core_never_imports_qt():
    """One direction of flow: plugin/ depends on cmfnet_core, never the reverse."""
    for path in (ROOT / "cmfnet_core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("PyQt", "PySide", "qtpy", "superqt", "plugin", "gi")), \
                    f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("command,option", [("train", "--resume"), ("bench", "--tiles")])
def test_heavier_commands_explain_their_options(command, option):
    result = cmfnet(command, "--help")
    assert result.returncode == 0 and option in result.stdout


# --- what a new user tries first (issue 10) ------------------------------------------

def test_out_dir_is_created_with_its_parents(photo_file, small_weights, tmp_path):
    folder = tmp_path / "restored" / "2026"
    result = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights,
                    "--out-dir", f"{folder}/", "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder / "holiday photo.deblur.png")
    assert (folder / "holiday photo.deblur.png").is_file()


def test_an_out_dir_that_cannot_be_created_says_why(photo_file, small_weights, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    result = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights,
                    "--out-dir", tmp_path / "taken" / "sub", "-q", *FAST)
    assert result.returncode == 2
    assert "cannot create the folder" in result.stderr and "Traceback" not in result.stderr


def test_a_reader_that_closes_early_gets_no_traceback():
    """`cmfnet weights list | head -1`: the pipe is closed before cmfnet writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before cmfnet starts, so it is closed whenever cmfnet writes
    try:
        process = subprocess.Popen([sys.executable, "-m", "cmfnet_core.cli", "weights", "list"], cwd=ROOT,
                                   stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    _, stderr = process.communicate(timeout=120)
    assert stderr == ""
    assert process.returncode == 141


def test_version_names_the_package_and_its_frameworks():
    from importlib.metadata import version

    result = cmfnet("--version")
    assert result.returncode == 0
    first, libraries = result.stdout.splitlines()
    assert first == f"cmfnet {version('cmfnet-restore')}"
    assert f"paddlepaddle {version('paddlepaddle')}" in libraries
    assert f"openvino {version('openvino')}" in libraries


def test_bf16_asked_for_says_what_runs(photo_file, small_weights):
    pytest.importorskip("openvino")
    from cmfnet_core.backends.precision import NO_BF16_NOTE, cpu_has_bf16

    result = cmfnet("restore", photo_file, "--task", "deblur", "--weights", small_weights, "-q",
                    "--backend", "openvino", "--precision", "bf16", "--tile", "64", "--overlap", "16")
    assert result.returncode == 0, result.stderr
    assert (NO_BF16_NOTE in result.stderr) == (not cpu_has_bf16())


def test_two_runs_into_one_folder_at_once_both_succeed(photo_file, small_weights):
    command = [sys.executable, "-m", "cmfnet_core.cli", "restore", str(photo_file), "--task", "deblur",
               "--weights", str(small_weights), "-q", *FAST]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outcomes = [(run.communicate(timeout=300), run.returncode) for run in runs]
    assert [code for _, code in outcomes] == [0, 0], [err for (_, err), _ in outcomes]
    written = sorted(out.strip() for (out, _), _ in outcomes)
    assert written == [str(photo_file.with_name("holiday photo.deblur-2.png")),
                       str(photo_file.with_name("holiday photo.deblur.png"))]


@pytest.mark.parametrize("settings", [["--backend", "paddle", "--precision", "bf16"],
                                      ["--backend", "openvino", "--device", "gpu"]])
def test_settings_that_cannot_run_are_refused_once_before_any_photo(photo_file, small_weights, settings):
    result = cmfnet("restore", photo_file, photo_file, "--task", "deblur", "--weights", small_weights,
                    "-q", *settings)
    assert result.returncode == 2 and result.stderr.count("error:") == 1, result.stderr
    assert sorted(p.name for p in photo_file.parent.iterdir()) == [photo_file.name]


def test_restoring_with_the_light_bundled_weights_says_once_how_to_get_the_authors(photo_file, tmp_path):
    second = photo_file.with_name("second.png")
    second.write_bytes(photo_file.read_bytes())
    result = cmfnet("restore", photo_file, second, "--task", "deraindrop", "-q", *FAST)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "cmfnet weights download" in line]
    assert notes == ["cmfnet: note: deraindrop ran on the light weights that come with this tool, "
                     "which change raindrops only a little; the authors' full-size weights restore "
                     "visibly: cmfnet weights download deraindrop"]
    dehaze = cmfnet("restore", photo_file, "--task", "dehaze", "-q", *FAST)  # its light weights hold up
    assert dehaze.returncode == 0 and "weights download" not in dehaze.stderr
