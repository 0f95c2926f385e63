"""The GIMP 3 bridge.

* Plain tests (default run): the GIMP-free half of the plug-in
  (``plugin/gimp/cmfnet-restore/cmfnet_gimp_bridge.py``) and the installer.
* ``pytest -m gimp``: the real thing. Builds (once, cached) a Debian 13 root
  with GIMP 3 (``tests/gimp/build_root.sh``, needs root + debootstrap + network
  the first time), installs the plug-in into a throwaway GIMP profile, runs
  ``gimp-console-3.0`` headless in the root with the project's Python
  bind-mounted at its own path, calls ``plug-in-cmfnet-restore`` on an RGBA
  image, exports the result and checks the pixels equal ``cmfnet restore``'s
  for the same input. Runs in a private mount namespace (``unshare --mount``),
  so no mount outlives the test.

Environment: ``CMFNET_GIMP_ROOT`` (the root; default
``~/.cache/cmfnet-restore/gimp-trixie``), ``CMFNET_TEST_WEIGHTS`` (weights for
both runs; default: the conformance checkpoint in tests/fixtures when present, else
the installed default weights).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE

PROJECT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = PROJECT / "plugin" / "gimp" / "cmfnet-restore"
GIMP_TESTS = PROJECT / "tests" / "gimp"


def _load_bridge():
    spec = importlib.util.spec_from_file_location("cmfnet_gimp_bridge",
                                                  PLUGIN_SRC / "cmfnet_gimp_bridge.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


bridge = _load_bridge()


# --------------------------------------------------------------------------- bridge

def _decode_png(data: bytes):
    """Tiny PNG reader for filter-0 files written by the bridge (test helper)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return ihdr, zlib.decompress(idat)


@pytest.mark.parametrize("channels,depth", [(1, 8), (2, 8), (3, 8), (4, 8), (3, 16), (4, 16)])
def test_png_writer_matches_pillow(tmp_path, channels, depth):
    np = pytest.importorskip("numpy")
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(channels * depth)
    dtype = np.uint16 if depth == 16 else np.uint8
    arr = rng.integers(0, 2 ** depth, size=(5, 7, channels), dtype=dtype)
    path = tmp_path / "x.png"
    bridge.write_png(path, 7, 5, channels, depth, arr.tobytes())  # native order, as GEGL gives
    if depth == 16 and channels in (3, 4):
        # Pillow reduces 16-bit RGB(A) to 8 bit; check the raw stream instead
        ihdr, raw = _decode_png(path.read_bytes())
        assert ihdr[:3] == (7, 5, 16)
        rows = [raw[y * (1 + 7 * channels * 2) + 1:(y + 1) * (1 + 7 * channels * 2)]
                for y in range(5)]
        got = np.frombuffer(b"".join(rows), dtype=">u2").reshape(5, 7, channels)
        assert (got == arr).all()
        return
    with Image.open(path) as im:
        got = np.asarray(im)
    assert (got.reshape(arr.shape) == arr).all()


def test_the_bridges_tasks_are_the_engines():
    """GIMP's Python cannot import cmfnet_core, so the bridge keeps a copy of the list and
    of the automatic choice's name, which comes first in the plug-in's task choice."""
    from cmfnet_core.tasks import AUTO_TASK, CHOICE_TITLES, CHOICES, TASKS

    assert bridge.TASKS == TASKS and bridge.AUTO_TASK == AUTO_TASK
    assert bridge.CHOICES == CHOICES
    assert bridge.TASK_LABELS == CHOICE_TITLES  # the app's words, in GIMP too


def test_png_writer_rejects_wrong_size():
    with pytest.raises(ValueError):
        bridge.png_bytes(4, 4, 3, 8, b"\x00" * 10)


def test_parse_progress():
    assert bridge.parse_progress("PROGRESS 3 12") == (3, 12)
    assert bridge.parse_progress("PROGRESS 0 1") == (0, 1)
    for bad in ("PROGRESS", "PROGRESS x 2", "PROGRESS 3 2", "PROGRESS 1 0", "progress 1 2",
                "cmfnet: note: PROGRESS 1 2", "PROGRESS 1 2 3"):
        assert bridge.parse_progress(bad) is None


def test_engine_command_and_config(tmp_path):
    py = tmp_path / "python"
    py.write_text("")
    (tmp_path / bridge.CONFIG_NAME).write_text(json.dumps(
        {"python": str(py), "project_dir": "/proj", "weights": None}))
    cfg = bridge.load_config(tmp_path, environ={})
    assert cfg.python == str(py) and cfg.project_dir == "/proj"
    cmd = bridge.engine_command(cfg, "/t/in.png", "/t/out", "dehaze")
    assert cmd == [str(py), "-m", "cmfnet_core.cli", "restore", "/t/in.png", "--out-dir", "/t/out",
                   "--task", "dehaze", "--progress-lines"]
    cmd = bridge.engine_command(cfg, "i", "o", "deblur", tile=128, overlap=16, weights="/w.pth")
    assert cmd[-6:] == ["--weights", "/w.pth", "--tile", "128", "--overlap", "16"]
    env_cfg = bridge.load_config(tmp_path, environ={"CMFNET_WEIGHTS": "/x.pdparams"})
    assert env_cfg.weights == "/x.pdparams"
    assert bridge.engine_command(env_cfg, "i", "o", "deraindrop")[-2:] == ["--weights", "/x.pdparams"]
    with pytest.raises(bridge.BridgeError):
        bridge.engine_command(cfg, "i", "o", "sharpen")


def test_automatic_asks_the_engine_to_choose_with_each_tasks_default_weights(tmp_path):
    py = tmp_path / "python"
    py.write_text("")
    cfg = bridge.Config(python=str(py), weights="/configured/deblur.pth")
    assert bridge.engine_command(cfg, "i.png", "o", "auto") == [
        str(py), "-m", "cmfnet_core.cli", "restore", "i.png", "--out-dir", "o", "--task", "auto",
        "--progress-lines", "--if-unsure", "likely"]  # the configured file restores one task:
    # not used to choose; a layer the detector is unsure about gets the likely task, said after
    with pytest.raises(bridge.BridgeError, match="choose that task"):
        bridge.engine_command(cfg, "i.png", "o", "auto", weights="/w.pth")


def test_engine_result_reads_the_result_line_about_its_layer(tmp_path):
    """The lines are made by the engine's own writer (cmfnet_core.results); tests/test_results.py
    runs the real CLI through the same code."""
    from cmfnet_core.results import Result

    src, other = str(tmp_path / "in 0.png"), str(tmp_path / "in-1.png")
    out = str(tmp_path / "out-0" / "in 0.dehaze.png")
    lines = ["cmfnet: whatever the engine says for people", "PROGRESS 1 1",
             Result("skipped", "none", 0.9, None, other, None, "Looks fine · 90 %").line(),
             Result("written", "dehaze", 0.87, None, src, out, "Looks hazy · 87 %").line()]
    assert bridge.engine_result(lines, src) == bridge.EngineResult(out, "dehaze")
    # a layer that looks fine: nothing written, and the engine's words for why
    assert bridge.engine_result(lines, other) == bridge.EngineResult(None, None, "Looks fine · 90 %")
    failed = [Result("failed", "deblur", None, "memory", src, None, f"{src}: not enough memory").line()]
    with pytest.raises(bridge.BridgeError) as error:
        bridge.engine_result(failed, src)
    assert error.value.kind == "memory"
    assert str(error.value) == (f"CMFNet Restore failed: {src}: not enough memory\n"
                                f"{bridge.NEXT_STEPS['memory']}")
    with pytest.raises(bridge.BridgeError, match="said nothing about the layer"):
        bridge.engine_result([f"{out}"], src)  # a path alone is not a result
    # an unsure layer (the line's UNSURE field): restored with the likely task, and the
    # engine's words to say so, whatever language they are in
    for maybe in ("Maybe hazy · 55 % (or blurry · 30 %)", "可能有雾 · 55 %（也可能模糊 · 30 %）",
                  "Vielleicht dunstig · 55 % (oder unscharf · 30 %)"):
        unsure = [Result("written", "dehaze", 0.55, None, src, out, maybe, unsure=True).line()]
        assert bridge.engine_result(unsure, src) == bridge.EngineResult(out, "dehaze", maybe)
    # a sure one is not called a guess, whatever its words
    sure = [Result("written", "dehaze", 0.55, None, src, out, "Maybe hazy · 55 %").line()]
    assert bridge.engine_result(sure, src) == bridge.EngineResult(out, "dehaze")


@pytest.mark.parametrize("selection,expected", [
    ((40, 30, 20, 10), (8, 0, 84, 72)),        # margin on every side, clipped at the top
    ((0, 0, 5, 5), (0, 0, 37, 37)),            # in a corner: clipped to the layer
    ((90, 60, 10, 10), (58, 28, 42, 52)),      # in the opposite corner
    ((-10, -10, 300, 300), (0, 0, 100, 80)),   # larger than the layer: the whole layer
])
def test_a_selection_is_restored_with_a_margin_of_context(selection, expected):
    box = bridge.context_box(bridge.Box(*selection), 100, 80)
    assert (box.x, box.y, box.width, box.height) == expected
    assert bridge.CONTEXT_MARGIN == 32


def test_a_selection_beside_the_layer_is_refused():
    for outside in ((0, 0, 0, 10), (200, 10, 5, 5)):
        with pytest.raises(bridge.BridgeError, match="does not touch"):
            bridge.context_box(bridge.Box(*outside), 100, 80, margin=0)


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(bridge.BridgeError, match="install.py"):
        bridge.load_config(tmp_path, environ={})


FAKE_ENGINE = r"""
import sys, time
for i in range(4):
    print(f"PROGRESS {i} 3", file=sys.stderr, flush=True)
    time.sleep(float(sys.argv[1]))
print("cmfnet: error: " + sys.argv[2], file=sys.stderr)
sys.exit(int(sys.argv[3]))
"""


def test_run_engine_reports_progress_and_errors():
    seen = []
    out = bridge.run_engine([sys.executable, "-c", FAKE_ENGINE, "0", "fine", "0"],
                            lambda d, t: seen.append((d, t)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert out == ["cmfnet: error: fine"]
    with pytest.raises(bridge.BridgeError, match="no weights for dehaze"):
        bridge.run_engine([sys.executable, "-c", FAKE_ENGINE, "0", "no weights for dehaze", "3"])


def test_run_engine_cancel_stops_the_engine():
    started = time.monotonic()
    with pytest.raises(bridge.Cancelled):
        bridge.run_engine([sys.executable, "-c", FAKE_ENGINE, "30", "x", "0"],
                          lambda d, t: False)  # cancel at the first line; the engine sleeps
    assert time.monotonic() - started < 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="platform: PR_SET_PDEATHSIG is Linux-only")
def test_engine_dies_with_the_plugin(tmp_path):
    """GIMP's Cancel on the progress bar kills the plug-in process; the engine must follow."""
    import signal

    pidfile = tmp_path / "engine.pid"
    engine = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    plugin = (f"import sys; sys.path.insert(0, {str(PLUGIN_SRC)!r}); import cmfnet_gimp_bridge as b; "
              f"b.run_engine([sys.executable, '-c', {engine!r}])")
    proc = subprocess.Popen([sys.executable, "-c", plugin])
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        engine_pid = int(pidfile.read_text())
        os.kill(proc.pid, signal.SIGKILL)  # what gimp_plug_in_close(plug_in, TRUE) ends in
        proc.wait()
        for _ in range(100):
            try:
                os.kill(engine_pid, 0)
            except ProcessLookupError:
                break
            # a zombie of a dead parent is reaped by init; check its state
            try:
                state = Path(f"/proc/{engine_pid}/stat").read_text().split()[2]
            except OSError:
                break
            if state == "Z":
                break
            time.sleep(0.05)
        else:
            os.kill(engine_pid, signal.SIGKILL)
            pytest.fail("the engine outlived the killed plug-in")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_child_environment_drops_gimps_python_settings():
    env = bridge.child_environment({"PYTHONHOME": "/gimp", "PYTHONPATH": "/gimp/lib", "HOME": "/h"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env and env["HOME"] == "/h"


def test_installer_writes_plugin_folder(tmp_path):
    sys.path.insert(0, str(PROJECT))
    from plugin.gimp import installer

    written = installer.install_plugin("/venv/bin/python", "/proj", tmp_path / "profile")
    d = tmp_path / "profile" / "plug-ins" / "cmfnet-restore"
    assert sorted(Path(p).name for p in written) == [
        "cmfnet-restore.json", "cmfnet-restore.mo", "cmfnet-restore.py", "cmfnet_gimp_bridge.py",
        "cmfnet_results.py"]
    assert (d / "locale" / "zh_CN" / "LC_MESSAGES" / "cmfnet-restore.mo").is_file()
    assert os.access(d / "cmfnet-restore.py", os.X_OK)
    assert not os.access(d / "cmfnet_gimp_bridge.py", os.X_OK)
    assert json.loads((d / "cmfnet-restore.json").read_text())["python"] == "/venv/bin/python"


def test_plugin_source_keeps_gimp_at_the_edge():
    src = (PLUGIN_SRC / "cmfnet-restore.py").read_text()
    assert "<Image>/Filters/Enhance" in src and 'set_image_types("RGB*, GRAY*")' in src
    assert "undo_group_start" in src and "undo_group_end" in src
    bridge_src = (PLUGIN_SRC / "cmfnet_gimp_bridge.py").read_text()
    assert "import gi" not in bridge_src and "from gi" not in bridge_src


# --------------------------------------------------------------------------- real GIMP

def _gimp_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
        "cmfnet-restore" / "gimp-trixie"
    return Path(os.environ.get("CMFNET_GIMP_ROOT") or default)


def _test_weights() -> str | None:
    if os.environ.get("CMFNET_TEST_WEIGHTS"):
        return os.environ["CMFNET_TEST_WEIGHTS"]
    w = CONFORMANCE / "small_official.pth"
    return str(w) if w.is_file() else None


def _project_python() -> str:
    venv = PROJECT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _read_png(path):
    """H x W (x C) array in RGB(A) order, 8 or 16 bit, as stored."""
    cv2 = pytest.importorskip("cv2")
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    if arr.ndim == 3:
        arr = arr[..., [2, 1, 0, 3]] if arr.shape[2] == 4 else arr[..., ::-1]
    return arr


def _make_input(kind: str, h: int = 48, w: int = 64):
    """(array, babl format GIMP dumps the result layer in) for one test case."""
    import numpy as np

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.float64)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255)
    if kind == "rgba8":  # alpha varies and is never 0 (PNG export drops colour under alpha 0)
        alpha = (40 + (xx * 3 + yy * 2) % 215)[..., None]
        return np.concatenate([rgb, alpha], -1).astype(np.uint8), "R'G'B'A u8"
    if kind == "rgb8":
        return rgb.astype(np.uint8), "R'G'B' u8"
    if kind == "gray8":
        return rgb.mean(-1).astype(np.uint8), "Y' u8"
    if kind == "rgb16":
        return (rgb * 257 + rng.integers(0, 257, rgb.shape)).astype(np.uint16), "R'G'B' u16"
    raise ValueError(kind)


GIMP_CASES = [("rgba8", "deblur", "Deblur"), ("gray8", "dehaze", "Dehaze"),
              ("rgb16", "deraindrop", "Deraindrop")]


STAND_IN_DETECTOR = """\
# Test stand-in for the trained detector (tests/test_gimp.py): the same verdict for every photo.
import cmfnet_core.detect as detect


class _StandIn:
    def __call__(self, image):
        return detect.Detection({verdict!r})


detect.default_detector = lambda backend="auto": _StandIn()
"""
HAZY = {"deblur": 0.05, "dehaze": 0.87, "deraindrop": 0.05, "none": 0.03}
FINE = {"deblur": 0.03, "dehaze": 0.03, "deraindrop": 0.03, "none": 0.91}


class Gimp3:
    """Runs the installed plug-in in real GIMP 3 (the trixie root) on one input PNG."""

    def __init__(self, tmp_path: Path):
        if os.geteuid() != 0:
            pytest.skip("marker gimp: needs root (debootstrap, chroot, bind mounts)")
        if not shutil.which("unshare"):
            pytest.skip("marker gimp: needs unshare (util-linux)")
        self.root = _gimp_root()
        t0 = time.monotonic()
        build = subprocess.run(["sh", str(GIMP_TESTS / "build_root.sh"), str(self.root)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            pytest.fail(f"building the GIMP root failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
        self.build_s = time.monotonic() - t0
        self.python = _project_python()
        probe = subprocess.run([self.python, "-c", "import sys, cmfnet_core.cli; print(sys.base_prefix)"],
                               capture_output=True, text=True, cwd=PROJECT)
        if probe.returncode != 0:
            pytest.skip(f"marker gimp: the project's Python cannot import cmfnet_core: {probe.stderr[-500:]}")
        self.base_prefix = probe.stdout.strip().splitlines()[-1]
        self.tmp = tmp_path
        self.job = tmp_path / "job"
        self.job.mkdir()

    def write_input(self, pixels) -> Path:
        h, w = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        bridge.write_png(self.job / "in.png", w, h, channels, pixels.dtype.itemsize * 8,
                         pixels.tobytes())
        return self.job / "in.png"

    def cli(self, *args: str, env=None) -> subprocess.CompletedProcess:
        """``cmfnet ARGS`` on the host, for what the plug-in's result must equal."""
        return subprocess.run([self.python, "-m", "cmfnet_core.cli", *args], capture_output=True,
                              text=True, cwd=PROJECT, env=env)

    def stand_in_detector(self, verdict: dict) -> tuple[str, dict]:
        """Make the detector say ``verdict`` (class -> probability) for every photo, in GIMP
        and on the host: (the project's Python as the plug-in must name it, the host's
        environment for ``cli``). A wrapper in the job folder starts the real interpreter
        with a ``sitecustomize`` that swaps the detector."""
        site = self.job / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(STAND_IN_DETECTOR.format(verdict=verdict))
        wrapper = self.job / "python"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH=/mnt/job/site CMFNET_BACKEND=paddle '
                           f'exec {self.python} "$@"\n')
        wrapper.chmod(0o755)
        return "/mnt/job/python", dict(os.environ, PYTHONPATH=str(site), CMFNET_BACKEND="paddle")

    def run_plugin(self, task: str, raw_format: str, weights: str | None = None,
                   select=None, python: str | None = None, lang: str = "C.UTF-8") -> dict:
        """Call plug-in-cmfnet-restore non-interactively on in.png; the batch's result.json."""
        gimp_weights = ""
        if weights:
            shutil.copy(weights, self.job / Path(weights).name)
            gimp_weights = "/mnt/job/" + Path(weights).name
        sys.path.insert(0, str(PROJECT))
        from plugin.gimp import installer

        installer.install_plugin(python or self.python, str(PROJECT), self.job / "profile")
        shutil.copy(GIMP_TESTS / "batch.py", self.job / "batch.py")
        (self.job / "params.json").write_text(json.dumps(
            {"input": "in.png", "task": task, "weights": gimp_weights, "raw_format": raw_format,
             "select": select}))
        binds = sorted({self.base_prefix, str(PROJECT)})
        t0 = time.monotonic()
        run = subprocess.run(["unshare", "--mount", "sh", str(GIMP_TESTS / "run_in_root.sh"),
                              str(self.root), str(self.job), *binds],
                             capture_output=True, text=True, timeout=900,
                             env=dict(os.environ, CMFNET_TEST_LANG=lang))
        self.gimp_s = time.monotonic() - t0
        log = f"--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
        (self.tmp / "gimp.log").write_text(log)
        print(log)
        assert run.returncode == 0, log
        return json.loads((self.job / "result.json").read_text())

    def new_layer(self, like):
        """The plug-in's layer as GIMP holds it (dumped by batch.py), shaped like ``like``."""
        import numpy as np

        return np.frombuffer((self.job / "out.raw").read_bytes(), like.dtype).reshape(like.shape)


@pytest.mark.gimp
@pytest.mark.parametrize("kind,task,label", GIMP_CASES, ids=[c[0] for c in GIMP_CASES])
def test_gimp_plugin_matches_cli(tmp_path, kind, task, label):
    np = pytest.importorskip("numpy")
    gimp = Gimp3(tmp_path)
    pixels, raw_format = _make_input(kind)
    h, w = pixels.shape[:2]
    source = gimp.write_input(pixels)
    weights = _test_weights()
    t1 = time.monotonic()
    cli = gimp.cli("restore", str(source), "-o", str(tmp_path / "expected.png"), "--task", task,
                   "--progress-lines", *(["--weights", weights] if weights else []))
    cli_s = time.monotonic() - t1
    assert cli.returncode == 0, cli.stderr
    result = gimp.run_plugin(task, raw_format, weights)

    expected = _read_png(tmp_path / "expected.png")
    exported = _read_png(gimp.job / "out.png")
    raw = gimp.new_layer(expected)
    print(f"TIMING {kind}: root={gimp.build_s:.1f}s cli={cli_s:.1f}s gimp={gimp.gimp_s:.1f}s "
          f"plugin={result['plugin_seconds']}s result={result}")
    assert result["layers"] == [label, "Background"] or result["layers"][0] == label
    assert result["size"] == [w, h] and result["offsets"] == [0, 0]
    assert result["has_alpha"] == (kind == "rgba8")
    assert expected.shape == pixels.shape and expected.dtype == pixels.dtype
    if kind == "rgba8":
        assert (expected[..., 3] == pixels[..., 3]).all(), "the CLI must pass alpha through"
    assert (raw == expected).all(), "the new layer differs from `cmfnet restore`"
    assert exported.shape == expected.shape and (exported == expected).all(), \
        "the exported PNG differs from `cmfnet restore`"
    assert not (expected == pixels).all(), "the engine changed nothing"


@pytest.mark.gimp
def test_gimp_speaks_chinese_where_gimp_does(tmp_path):
    """Under LANG=zh_CN.UTF-8 GIMP registers the plug-in's Chinese menu label (from the
    catalogue the installer puts in its locale/ folder) and the new layer has the
    task's Chinese name; under C.UTF-8 (the other GIMP tests) they are English."""
    pytest.importorskip("numpy")
    gimp = Gimp3(tmp_path)
    pixels, raw_format = _make_input("rgb8")
    gimp.write_input(pixels)
    weights = _test_weights()
    result = gimp.run_plugin("dehaze", raw_format, weights, lang="zh_CN.UTF-8")
    assert result["menu_label"] == "CMFNet 图像恢复(_R)…"
    assert result["layers"][0] == "去雾"


SELECTION = (44, 28, 40, 24)  # x, y, width, height in a 128 x 96 photo


@pytest.mark.gimp
@pytest.mark.parametrize("shape", ["rectangle", "ellipse"])
def test_gimp_plugin_restores_only_the_selection(tmp_path, shape):
    """With a selection, the new layer is the source outside it, byte for byte, and the
    restoration inside it; the engine got the selection's box plus 32 px of context."""
    np = pytest.importorskip("numpy")
    gimp = Gimp3(tmp_path)
    pixels, raw_format = _make_input("rgb8", h=96, w=128)
    source = gimp.write_input(pixels)
    x, y, w, h = SELECTION
    box = bridge.context_box(bridge.Box(x, y, w, h), 128, 96)
    assert (box.x, box.y, box.width, box.height) == (12, 0, 104, 84)  # clipped at the top
    crop = tmp_path / "crop.png"
    bridge.write_png(crop, box.width, box.height, 3, 8,
                     pixels[box.y:box.y + box.height, box.x:box.x + box.width].tobytes())
    weights = _test_weights()
    cli = gimp.cli("restore", str(crop), "-o", str(tmp_path / "expected.png"), "--task", "deblur",
                   *(["--weights", weights] if weights else []))
    assert cli.returncode == 0, cli.stderr
    restored_box = _read_png(tmp_path / "expected.png")

    result = gimp.run_plugin("deblur", raw_format, weights, select=[shape, list(SELECTION)])
    assert result["layers"] == ["Deblur", "Background"] and result["size"] == [128, 96]
    layer = gimp.new_layer(pixels)
    yy, xx = np.mgrid[0:96, 0:128]
    if shape == "rectangle":
        inside = (xx >= x) & (xx < x + w) & (yy >= y) & (yy < y + h)
        outside = ~inside
    else:  # GIMP antialiases the ellipse's edge: judge the pixels clear of it on either side
        r2 = ((xx + 0.5 - (x + w / 2)) / (w / 2)) ** 2 + ((yy + 0.5 - (y + h / 2)) / (h / 2)) ** 2
        inside, outside = r2 < 0.7, r2 > 1.3  # outside: the box's corners too (mask 0 there)
    assert (layer[outside] == pixels[outside]).all(), "pixels outside the selection changed"
    expected = pixels.copy()
    expected[box.y:box.y + box.height, box.x:box.x + box.width] = restored_box
    changed = (layer[inside] != pixels[inside]).any(axis=-1).mean()
    assert changed > 0.5, f"only {changed:.0%} of the selected pixels changed"
    assert (layer[inside] == expected[inside]).all(), \
        "inside the selection the layer is not what the engine made of the box"


@pytest.mark.gimp
@pytest.mark.parametrize("verdict", [HAZY, FINE], ids=["hazy", "fine"])
def test_gimp_automatic_does_what_cmfnet_restore_does(tmp_path, verdict):
    """Automatic: the layer is named after the task `cmfnet restore --task auto` chooses for
    the same pixels and holds its result; a layer that looks fine gets no new layer and a
    message. The detector's verdict is the test's (a stand-in), the rest is real."""
    np = pytest.importorskip("numpy")
    gimp = Gimp3(tmp_path)
    pixels, raw_format = _make_input("rgb8", h=96, w=128)
    source = gimp.write_input(pixels)
    python, env = gimp.stand_in_detector(verdict)
    out_dir = tmp_path / "expected"
    cli = gimp.cli("restore", str(source), "--out-dir", str(out_dir), "--task", "auto", env=env)
    assert cli.returncode == 0, cli.stderr
    result = gimp.run_plugin("auto", raw_format, python=python)
    written = sorted(out_dir.iterdir()) if out_dir.exists() else []
    if verdict is FINE:
        assert written == [] and result["layers"] == ["Background"]
        assert "left the layer as it is (Background: Looks fine · 91 %)" in \
            (tmp_path / "gimp.log").read_text()
        return
    assert [p.name for p in written] == ["in.dehaze.png"]
    assert result["layers"] == ["Dehaze", "Background"]
    assert (gimp.new_layer(pixels) == _read_png(written[0])).all()


@pytest.mark.gimp
def test_gimp_dialog_interactive(tmp_path):
    """The interactive path: GIMP's GUI on a private Xvfb display, the plug-in's
    dialog (GimpUi.ProcedureDialog) comes up, Return presses OK with the defaults
    (Automatic first), and the layer of the task the (stand-in) detector chose appears."""
    np = pytest.importorskip("numpy")
    for tool in ("Xvfb", "xdotool"):
        if not shutil.which(tool):
            pytest.skip(f"marker gimp: needs {tool} (Debian: xvfb, xdotool)")
    gimp = Gimp3(tmp_path)
    job = gimp.job
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    gimp.write_input(pixels)
    python, _ = gimp.stand_in_detector(HAZY)
    sys.path.insert(0, str(PROJECT))
    from plugin.gimp import installer

    # no task is set: the dialog starts from the procedure's default, Automatic
    installer.install_plugin(python, str(PROJECT), job / "profile")
    shutil.copy(GIMP_TESTS / "batch.py", job / "batch.py")
    (job / "params.json").write_text(json.dumps(
        {"input": "in.png", "task": None, "weights": "", "raw_format": "R'G'B' u8",
         "interactive": True}))

    display = f":{70 + os.getpid() % 25}"
    xvfb = subprocess.Popen(["Xvfb", display, "-ac", "-screen", "0", "1280x1024x24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = None
    try:
        time.sleep(1)
        env = dict(os.environ, CMFNET_TEST_DISPLAY=display, DISPLAY=display)
        run = subprocess.Popen(["unshare", "--mount", "sh", str(GIMP_TESTS / "run_in_root.sh"),
                                str(gimp.root), str(job), *sorted({gimp.base_prefix, str(PROJECT)})],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^CMFNet Restore$"],
                               env=env, capture_output=True, text=True, timeout=300)
        window = found.stdout.split()[0]
        time.sleep(2)
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, timeout=30)
        subprocess.run(["xdotool", "key", "--clearmodifiers", "Return"], env=env, check=True,
                       timeout=30)
        out, _ = run.communicate(timeout=600)
        print(out)
        assert run.returncode == 0, out
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        xvfb.terminate()
        xvfb.wait()
    result = json.loads((job / "result.json").read_text())
    assert result["layers"] == ["Dehaze", "Background"]
    assert "duplicate mnemonic" not in out


def test_the_dialog_names_the_weights_and_how_to_get_the_authors():
    listing = subprocess.run([sys.executable, "-m", "cmfnet_core.cli", "weights", "list"],
                             capture_output=True, text=True, cwd=PROJECT, check=True).stdout
    used = bridge.parse_weights_list(listing)
    assert used == {t: "light, bundled (trained by this project)" for t in bridge.TASKS}
    cfg = bridge.Config(python=sys.executable)
    note = bridge.weights_note(cfg, bridge.AUTO_TASK, used)
    assert note.startswith("Weights: Deblur: light, bundled (trained by this project); Dehaze:")
    assert "cmfnet weights download" in note and "Restore ▸ Weights…" in note
    authors = dict.fromkeys(bridge.TASKS, "the authors' (full-size), downloaded 2026-12-03")
    assert "cmfnet weights download" not in bridge.weights_note(cfg, "deblur", authors)
    assert bridge.weights_note(bridge.Config(python="p", weights="/w/mine.pdparams"), "deblur", authors) \
        .startswith("Weights: mine.pdparams (set in cmfnet-restore.json")


def test_a_weights_failure_says_how_to_get_the_authors_weights(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint('cmfnet: error: deblur.pdparams: sha256 does not match', "
                      "file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(bridge.BridgeError, match="sha256 does not match\nTo get the CMFNet authors' "
                                                 "weights, run 'cmfnet weights download'"):
        bridge.run_engine([sys.executable, str(script)])
