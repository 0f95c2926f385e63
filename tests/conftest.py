"""Shared fixtures: the conformance material, small real weights, isolated user folders."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SAMPLES = ROOT / "resources" / "samples"


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
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance material not found at {CONFORMANCE}")
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


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
