"""One error path: the core's classifier, and each kind of failure as ``cmfnet restore``
says it (one line, the next step once, its exit code, its RESULT line).

The failures are real where they can be made so (a text file named .jpg, a weights
file that is not one, settings that cannot run, a real OpenVINO error); the engine's
own failures (out of memory, a backend that breaks mid-run, a bug) are raised from
inside a real run by a one-line patch of ``Restorer.restore``."""
from __future__ import annotations

import subprocess
import sys

import pytest

from cmfnet_core import cli, errors
from cmfnet_core.errors import classify
from cmfnet_core.results import results_in
from tests.conftest import ROOT

FAST = ["--backend", "paddle", "--tile", "64", "--overlap", "16"]


# --- the classifier ---------------------------------------------------------------------

def fake_photo(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_text("not a photo")
    return path


def raised(call, *args, **kwargs) -> BaseException:
    try:
        call(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - what is raised is the subject
        return exc
    raise AssertionError(f"{call} raised nothing")


def test_real_failures_are_sorted_into_kinds_with_exit_codes(tmp_path):
    from cmfnet_core.backends import check_options
    from cmfnet_core.detect import Detector
    from cmfnet_core.engine import Cancelled
    from cmfnet_core.imageio import read_image
    from cmfnet_core.weights import read_weights

    weights = tmp_path / "model.pth"
    weights.write_text("nope")
    cases = {
        "image": (raised(read_image, fake_photo(tmp_path)), 1),
        "weights": (raised(read_weights, weights), 3),
        "detector": (raised(Detector, weights), 3),
        "settings": (raised(check_options, backend="paddle", precision="bf16"), 2),
        "memory": (MemoryError(), 1),
        "file": (PermissionError(13, "Permission denied", str(tmp_path / "out.png")), 1),
        "interrupted": (Cancelled(), 130),
        "internal": (raised(lambda: None + 1), 70),
    }
    for kind, (exc, code) in cases.items():
        problem = classify(exc)
        assert (problem.kind, problem.exit_code) == (kind, code), (kind, exc)
        assert problem.message and "\n" not in problem.message
        assert problem.expected == (kind != "internal")
    assert "holiday.jpg" in classify(cases["image"][0]).message
    assert set(cases) | {"backend"} == set(errors.KINDS)


def test_a_real_openvino_failure_is_a_backend_problem_said_in_its_own_one_line(tmp_path):
    openvino = pytest.importorskip("openvino")
    model = tmp_path / "model.xml"
    model.write_text("<net>")
    problem = classify(raised(openvino.Core().read_model, str(model)))
    assert problem.kind == "backend" and problem.exit_code == 1
    assert problem.message.startswith("Unable to read the model") and "model.xml" in problem.message
    assert "Exception from src" not in problem.message  # OpenVINO's C++ frames are left out


def test_a_frameworks_page_of_text_becomes_its_reason_line():
    paddle_text = ("\n\n--------------------------------------\nC++ Traceback (most recent call last):\n"
                   "0   paddle::Foo\n1   paddle::Bar\n----------------------\n"
                   "Error Message Summary:\n----------------------\n"
                   "ResourceExhaustedError: Out of memory error on GPU 0.\n")
    problem = classify(RuntimeError(paddle_text))
    assert problem.kind == "memory"
    assert problem.message == "not enough memory (ResourceExhaustedError: Out of memory error on GPU 0.)"
    assert classify(NotImplementedError("later")).kind == "internal"  # a RuntimeError, but ours


def test_each_kind_has_a_next_step_for_the_command_line_and_for_the_app():
    for kind, words in errors.KINDS.items():
        if kind == "interrupted":
            continue
        assert words.cli_hint and words.gui_hint, kind
        assert "Preferences" not in words.cli_hint and "▸" not in words.cli_hint
        assert "--" not in words.gui_hint and "cmfnet " not in words.gui_hint  # no CLI words in a dialog


def test_settings_say_what_is_wrong_neutrally_and_how_to_change_it_where_you_are():
    from cmfnet_core.backends import check_options

    problem = classify(raised(check_options, backend="paddle", precision="int8"))
    assert "--" not in problem.message and "paddle backend runs fp32 only" in problem.message
    assert "--backend openvino" in problem.cli_hint
    assert "Preferences" in problem.gui_hint and "--" not in problem.dialog_text()


# --- each kind through `cmfnet restore` ----------------------------------------------------

# a run in which the first photo's restore raises what CMFNET_TEST_RAISE names, the others run
FAIL_FIRST_RESTORE = """
import os, sys
from cmfnet_core.engine import Restorer
restore = Restorer.restore
calls = []
def failing_once(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        raise eval(os.environ["CMFNET_TEST_RAISE"])
    return restore(self, *args, **kwargs)
Restorer.restore = failing_once
from cmfnet_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cmfnet(*args, env=None, failing=None):
    import os

    environ = dict(os.environ, **(env or {}))
    command = [sys.executable, "-m", "cmfnet_core.cli"]
    if failing:
        environ["CMFNET_TEST_RAISE"] = failing
        command = [sys.executable, "-c", FAIL_FIRST_RESTORE]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=environ)


def said(result) -> tuple[list[str], list[str]]:
    """(error lines, hint lines) of a run, for people."""
    lines = result.stderr.splitlines()
    return ([line for line in lines if line.startswith("cmfnet: error: ")],
            [line for line in lines if line.startswith("cmfnet: hint: ")])


def test_a_photo_that_is_not_one_fails_alone_with_the_image_hint(tmp_path, photo_file, small_weights):
    fake = fake_photo(tmp_path)
    result = cmfnet("restore", fake, photo_file, fake, "--task", "deblur", "--weights", small_weights,
                    "--progress-lines", *FAST)
    errors_said, hints = said(result)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors_said) == 2 and all("holiday.jpg" in line for line in errors_said)
    assert hints == [f"cmfnet: hint: {errors.KINDS['image'].cli_hint}"]  # once per kind
    assert [(r.status, r.error) for r in results_in(result.stderr)] == [
        ("failed", "image"), ("written", None), ("failed", "image")]


@pytest.mark.parametrize("kind,args,env,code", [
    ("weights", ["--task", "dehaze", "--weights", "{fake_weights}"], {}, 3),
    ("detector", ["--task", "auto"], {"CMFNET_DETECTOR": "{fake_weights}"}, 3),
    ("settings", ["--task", "deblur", "--weights", "{weights}", "--backend", "paddle",
                  "--precision", "bf16"], {}, 2),
    ("settings", ["--task", "deblur", "--weights", "{weights}", "--tile", "100"], {}, 2),
])
def test_a_run_that_cannot_start_says_why_once_and_exits_with_its_code(
        tmp_path, photo_file, small_weights, kind, args, env, code):
    (tmp_path / "elsewhere").mkdir()
    fake = tmp_path / "elsewhere" / "model.pdparams"
    fake.write_text("nope")
    fill = dict(fake_weights=fake, weights=small_weights)
    before = sorted(p.name for p in photo_file.parent.iterdir())
    result = cmfnet("restore", photo_file, photo_file, *[a.format(**fill) for a in args],
                    "--progress-lines", env={k: v.format(**fill) for k, v in env.items()})
    errors_said, hints = said(result)
    assert result.returncode == code and len(errors_said) == 1 and len(hints) == 1, result.stderr
    assert "Traceback" not in result.stderr and "PROGRESS" not in result.stderr
    (whole,) = results_in(result.stderr)
    assert (whole.status, whole.error, whole.source) == ("failed", kind, None)
    assert whole.message == errors_said[0].removeprefix("cmfnet: error: ")
    assert sorted(p.name for p in photo_file.parent.iterdir()) == before  # nothing written


@pytest.mark.parametrize("raise_,kind,hint", [
    ("RuntimeError('Exception from src/inference/src/cpp/infer_request.cpp:223:\\n"
     "Check failed: the CPU plugin could not run the model')", "backend", "--backend paddle"),
    ("MemoryError()", "memory", "--tile"),
    ("PermissionError(13, 'Permission denied')", "file", "disk"),
])
def test_an_engine_failure_fails_that_photo_and_the_batch_goes_on(photo_file, small_weights, raise_,
                                                                  kind, hint):
    second = photo_file.with_name("second.png")
    second.write_bytes(photo_file.read_bytes())
    result = cmfnet("restore", photo_file, second, "--task", "deblur", "--weights", small_weights,
                    "--progress-lines", *FAST, failing=raise_)
    errors_said, hints = said(result)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(errors_said) == 1 and str(photo_file) in errors_said[0]
    assert len(hints) == 1 and hint in hints[0]
    first, then = results_in(result.stderr)
    assert (first.status, first.error, first.source) == ("failed", kind, str(photo_file))
    assert (then.status, then.output) == ("written", str(second.with_name("second.deblur.png")))
    assert result.stdout.splitlines() == [then.output]
    if kind == "backend":  # OpenVINO's frames left out, its reason kept
        assert "Check failed: the CPU plugin could not run the model" in errors_said[0]
        assert "Exception from src" not in result.stderr


def test_a_bug_is_not_a_photos_failure_it_stops_with_its_traceback_and_exit_70(photo_file, small_weights):
    second = photo_file.with_name("second.png")
    second.write_bytes(photo_file.read_bytes())
    result = cmfnet("restore", photo_file, second, "--task", "deblur", "--weights", small_weights,
                    "--progress-lines", *FAST, failing="TypeError('unsupported operand')")
    assert result.returncode == errors.EXIT_INTERNAL == 70
    assert "Traceback (most recent call last)" in result.stderr
    (error,) = said(result)[0]
    assert error.startswith("cmfnet: error: internal error: ") and str(photo_file) in error
    assert error.endswith("TypeError: unsupported operand")
    assert "please report" in result.stderr
    (only,) = results_in(result.stderr)
    assert (only.status, only.error) == ("failed", "internal")
    assert not second.with_name("second.deblur.png").exists()  # not run as if nothing happened


# --- `cmfnet detect` says its failures as restore does --------------------------------------

def test_detect_says_a_photo_that_is_not_one_once_per_photo_with_the_image_hint(tmp_path, photo_file):
    fake = fake_photo(tmp_path)
    result = cmfnet("detect", fake, photo_file, fake)
    errors_said, hints = said(result)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(errors_said) == 2 and all(str(fake) in line for line in errors_said)
    assert hints == [f"cmfnet: hint: {errors.KINDS['image'].cli_hint}"]  # once per kind
    (looked,) = result.stdout.splitlines()  # the photo between them was still looked at
    assert looked.startswith(f"{photo_file}\t")


def test_detect_without_its_weights_says_why_once_and_exits_with_the_detectors_code(tmp_path, photo_file):
    from cmfnet_core.detect import Detector

    missing = tmp_path / "detector.pdparams"
    result = cmfnet("detect", photo_file, env={"CMFNET_DETECTOR": str(missing)})
    errors_said, hints = said(result)
    assert result.returncode == errors.KINDS["detector"].exit_code == 3
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert errors_said == [f"cmfnet: error: {classify(raised(Detector, missing)).message}"]
    assert "detector.pdparams" in errors_said[0]
    # restore's hint for this (choose --task yourself) is no way on for detect
    assert hints == [f"cmfnet: hint: {cli.DETECT_WITHOUT_DETECTOR}"]
