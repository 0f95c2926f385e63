"""Shared fixtures: the conformance material, small real weights, isolated user folders;
and the rule that every skip says why (a marker or an optional dependency)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CONFORMANCE = FIXTURES / "conformance"
SHARP_PHOTO = FIXTURES / "photos" / "sharp_street.png"
SAMPLES = ROOT / "resources" / "samples"
# The development photos (research-only, 160 MB) stay outside the repository: tests that
# read them carry the `data` marker and are skipped, naming it, where they are absent.
SHARED = ROOT.parent / "shared"
DEV_DATA = SHARED / "data"

# A skip must say which marker or optional dependency it waits for (or, "platform: ...",
# which system it cannot run on); any other skip, say material gone missing, fails the run.
# pytest.importorskip says "could not import ...".
EXPECTED_SKIP = re.compile(r"(Skipped: )?(could not import |optional dependency |platform: |marker (\w+): )")
_UNEXPECTED_SKIPS: list[str] = []
_MARKERS: set[str] = set()


def pytest_configure(config):
    _MARKERS.update(registered_markers(config))


def pytest_collection_modifyitems(config, items):
    if DEV_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"marker data: needs the development photos at {DEV_DATA}")
    for item in items:
        if item.get_closest_marker("data"):
            item.add_marker(skip)


def registered_markers(config) -> set[str]:
    return {line.split(":")[0].strip() for line in config.getini("markers")}


def skip_is_expected(reason: str, markers: set[str]) -> bool:
    found = EXPECTED_SKIP.match(reason)
    return bool(found) and (found.group(3) is None or found.group(3) in markers)


def _note_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not skip_is_expected(reason, _MARKERS):
            _UNEXPECTED_SKIPS.append(f"{report.nodeid}: {reason}")


pytest_runtest_logreport = pytest_collectreport = _note_skip


def pytest_terminal_summary(terminalreporter):
    if _UNEXPECTED_SKIPS:
        terminalreporter.section("skips that name no marker or optional dependency", red=True)
        for line in _UNEXPECTED_SKIPS:
            terminalreporter.line(line)
        terminalreporter.line("(say why in the reason: 'marker NAME: ...', 'optional dependency X ...', "
                              "'platform: ...'; see tests/conftest.py)")


def pytest_sessionfinish(session, exitstatus):
    if _UNEXPECTED_SKIPS and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Imported weights and compiled-model caches go to temporary folders, never ~/."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("CMFNET_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("CMFNET_CACHE_DIR", str(base / "cache"))
    return base


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """Tests read the English messages whatever the machine's language (test_i18n switches)."""
    from cmfnet_core import i18n

    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    i18n.set_language(i18n.ENGLISH)
    yield
    i18n.set_language(i18n.ENGLISH)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The conformance checkpoints and the official code's outputs (tests/fixtures/README.md)."""
    return CONFORMANCE


@pytest.fixture(scope="session")
def small_weights(conformance_dir) -> Path:
    """Official-format checkpoint of a small CMFNet (n_feat 16): real weights, quick to run."""
    return conformance_dir / "small_official.pth"


@pytest.fixture(scope="session")
def small_restorer(small_weights):
    """The exact Paddle path with small tiles, so a small image still has several tiles."""
    from cmfnet_core.engine import Restorer

    return Restorer("deblur", small_weights, tile=64, overlap=16, backend="paddle")


@pytest.fixture(scope="session")
def photo_rgb() -> np.ndarray:
    """A real photo crop (RGB uint8, 72 x 100: not a multiple of 8, so padding is exercised)."""
    import cv2

    image = cv2.imread(str(SAMPLES / "deblur_1.png"))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[100:172, 200:300].copy()


@pytest.fixture
def photo_file(tmp_path, photo_rgb) -> Path:
    """The photo crop as a PNG file in a temporary folder."""
    import cv2

    path = tmp_path / "holiday photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def fake_backends(monkeypatch):
    """The engine's backends replaced by ones that return their input and note which
    tile shape each was built for (``built``) and which shapes ran (``ran``): what a
    restore compiles, without compiling anything."""
    from types import SimpleNamespace

    from cmfnet_core import engine

    log = SimpleNamespace(built=[], ran=[])

    class Identity:
        name, precision = "fake", "fp32"

        def run(self, batch):
            log.ran.append(tuple(batch.shape[2:]))
            return batch

    def make_backend(weights, *, tile_shape, **options):
        log.built.append(tuple(tile_shape))
        return Identity()

    monkeypatch.setattr(engine, "make_backend", make_backend)
    return log


from cmfnet_core.training.metrics import psnr  # noqa: E402,F401  (the project's one psnr, for tests)


def imports_outside_stdlib(load: str, *argv: str) -> list[str]:
    """The top-level modules beyond the standard library that ``load`` (Python code, run in
    an interpreter with no site-packages, ``argv`` as its sys.argv[1:]) leaves imported:
    what a front end needs where only a bare Python runs it (GIMP's, a file manager's)."""
    import subprocess
    import sys

    code = (load + "\nimport sys\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))")
    result = subprocess.run([sys.executable, "-S", "-I", "-c", code, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture
def weights_server(monkeypatch):
    """A real HTTP server on 127.0.0.1 (tests/weights_server.py): add files, then download them.
    The machine's proxy settings are cleared: requests to it must not go through a proxy."""
    from tests.weights_server import WeightsServer

    for scheme in ("http", "https", "all", "no"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            monkeypatch.delenv(name, raising=False)

    server = WeightsServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def full_size_checkpoint(tmp_path_factory) -> bytes:
    """The bytes of a checkpoint shaped exactly like the authors' release files: the full-size
    network (random weights, fixed seed) saved by torch as the official train.py saves it,
    with 'module.' keys and a real Adam optimizer state (about 207 MB)."""
    torch = pytest.importorskip("torch", reason="writing an official-format checkpoint needs torch")
    from cmfnet_core.network_config import Config, expected_shapes

    generator = torch.Generator().manual_seed(0)
    state = {f"module.{key}": torch.randn(*shape, generator=generator) * 0.02
             for key, shape in expected_shapes(Config()).items()}
    params = list(state.values())
    optimizer = {
        "state": {i: {"step": torch.tensor(3000.0), "exp_avg": torch.zeros_like(p),
                      "exp_avg_sq": torch.full_like(p, 1e-8)} for i, p in enumerate(params)},
        "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                          "amsgrad": False, "params": list(range(len(params)))}],
    }
    path = tmp_path_factory.mktemp("release") / "deblur_GoPro_CMFNet.pth"
    torch.save({"epoch": 3000, "state_dict": state, "optimizer": optimizer}, path)
    return path.read_bytes()
