"""Per-tile executors: the one step that runs the network on a batch of tiles.

The engine hands a backend float32 N x 3 x H x W RGB tiles (H, W multiples of
8) and gets the network's output back (not clamped). Everything else (tiling,
blending, image formats) stays in the engine, so a faster executor only has to
implement :class:`Backend`. This module holds the contract and the choice of
executor; the executors live beside it:

* ``paddle.py``: the reference (exact, fp32), also the NVIDIA (CUDA) GPU path.
* ``openvino.py``: the fast CPU path, when OpenVINO is installed, and the path
  for Intel GPUs (OpenVINO's ``GPU`` device), with
  ``export.py`` (Paddle -> ONNX -> OpenVINO IR), ``cache.py`` (the exported
  models on disk), ``precision.py`` (fp32 or bf16) and ``core.py`` (the
  process's OpenVINO runtime).

Nothing here imports the engine: the engine builds on the backends.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Protocol

import numpy as np

from ..errors import SettingsError
from ..weights import Weights
from . import precision as _precision

BACKENDS = ("auto", "paddle", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
DEVICES = ("cpu", "gpu")
#: backends that build a model for each tile shape (OpenVINO compiles one); the others run
#: every shape with one network
PER_SHAPE = frozenset({"openvino"})


class Backend(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Network output for float32 N x 3 x H x W RGB tiles in [0, 1]."""


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_options(*, backend: str = "auto", device: str = "cpu", precision: str = "auto") -> tuple[str, list[str]]:
    """Check the settings once, before any photo: (the backend that will run, notes for the user).

    ``device="gpu"`` with ``auto`` picks OpenVINO's GPU device (Intel integrated and Arc
    GPUs, what most laptops have) when OpenVINO sees one, else Paddle's CUDA when
    paddlepaddle-gpu is installed. A combination that cannot run raises ValueError (bad
    usage) with one clear line: a :class:`~cmfnet_core.errors.SettingsError`, whose hints say
    what to change on the command line and in the app.
    """
    if backend not in BACKENDS:
        raise SettingsError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise SettingsError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device not in DEVICES:
        raise SettingsError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    chosen = backend == "auto"
    if chosen:
        backend = _auto_backend(device)
    notes = []
    if backend == "openvino":
        if device == "gpu":
            if not _openvino_gpu():
                raise SettingsError("OpenVINO sees no GPU here (Intel GPUs need the GPU compute "
                                    "runtime, e.g. Debian's intel-opencl-icd)", **_USE_CPU)
            if precision == "bf16":
                raise SettingsError("GPUs run fp16 (auto) or fp32; bf16 is for CPUs",
                                    cli="use --precision auto or fp32",
                                    gui="Choose precision auto or fp32 in Preferences.")
        elif precision == "bf16" and not _precision.cpu_has_bf16():
            notes.append(_precision.NO_BF16_NOTE)
        if precision == "int8" and not _nncf_available():
            raise SettingsError("int8 precision needs the nncf package (pip install nncf)",
                                cli="install nncf, or use --precision auto",
                                gui="Install nncf, or choose precision auto in Preferences.")
    elif precision in ("bf16", "int8"):
        raise SettingsError(f"the paddle backend runs fp32 only; {precision} needs the openvino backend",
                            cli="use --backend openvino, or --precision fp32",
                            gui="Choose the openvino backend, or precision fp32, in Preferences.")
    elif device == "gpu" and not _paddle_has_cuda():
        if chosen:
            raise SettingsError("found no GPU: OpenVINO sees none (Intel GPUs need the GPU "
                                "compute runtime, e.g. Debian's intel-opencl-icd) and this "
                                "PaddlePaddle is CPU-only (NVIDIA GPUs: pip install "
                                "paddlepaddle-gpu)", **_USE_CPU)
        raise SettingsError("the paddle backend needs the paddlepaddle-gpu package to run on a GPU "
                            "(pip install paddlepaddle-gpu); this install is CPU-only", **_USE_CPU)
    return backend, notes


_USE_CPU = dict(cli="use --device cpu", gui="Choose the cpu device in Preferences.")


def _auto_backend(device: str) -> str:
    if not _openvino_available():
        return "paddle"
    if device == "gpu":
        return "openvino" if _openvino_gpu() else "paddle"
    return "openvino"


def make_backend(weights: Weights, *, backend: str = "auto", device: str = "cpu",
                 precision: str = "auto", threads: int | None = None,
                 local_window: int = 0, tile_shape: tuple[int, int] | None = None) -> Backend:
    """The executor for these settings; ``auto`` picks OpenVINO on CPU when installed.

    ``tile_shape`` is what an OpenVINO model is compiled for (Paddle runs any shape).
    """
    backend, _ = check_options(backend=backend, device=device, precision=precision)
    if backend == "openvino":
        if tile_shape is None:
            raise ValueError("the openvino backend is compiled for one tile shape: pass tile_shape")
        from .openvino import OpenVINOBackend

        return OpenVINOBackend(weights, precision=precision, threads=threads, device=device,
                               local_window=local_window, tile_shape=tile_shape)
    from .paddle import PaddleBackend

    return PaddleBackend(weights, device=device, threads=threads, local_window=local_window)


def _paddle_has_cuda() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def _openvino_gpu() -> bool:
    """True where OpenVINO has a GPU device (``GPU``, ``GPU.0``, ...)."""
    from .core import core

    try:
        return any(name.split(".")[0] == "GPU" for name in core().available_devices)
    except Exception:  # noqa: BLE001 - a broken GPU driver: no GPU
        return False


def _nncf_available() -> bool:
    try:
        return importlib.util.find_spec("nncf") is not None
    except (ImportError, ValueError):
        return False


def _openvino_available() -> bool:
    if os.environ.get("CMFNET_BACKEND") == "paddle":
        return False
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False
