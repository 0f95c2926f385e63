"""Per-tile executors: the one step that runs the network on a batch of tiles.

The engine hands a backend float32 N x 3 x H x W RGB tiles (H, W multiples of
8) and gets the network's output back (not clamped). Everything else (tiling,
blending, image formats) stays in the engine, so a faster executor only has to
implement :class:`Backend`.

* ``paddle``: the reference (exact, fp32), also the GPU path.
* ``openvino``: the fast CPU path (see ``openvino_backend.py``), when present.
"""
from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from .weights import Weights

BACKENDS = ("auto", "paddle", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("cpu", "gpu")


class Backend(Protocol):
    name: str
    precision: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Network output for float32 N x 3 x H x W RGB tiles in [0, 1]."""


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class PaddleBackend:
    """Paddle dygraph, fp32: the reference every other path is measured against."""

    name = "paddle"
    precision = "fp32"

    def __init__(self, weights: Weights, device: str = "cpu", threads: int | None = None,
                 local_window: int = 0):
        import paddle

        from .weights import build_network

        if not paddle.in_dynamic_mode():
            # paddle keeps its eager/static switch per thread; a worker thread started after
            # paddle was imported elsewhere can come up static, where the network cannot run
            paddle.disable_static()
        if device == "gpu":
            paddle.set_device("gpu")
        else:
            paddle.set_device("cpu")
            paddle.base.core.set_num_threads(threads or default_threads())
        self._paddle = paddle
        self.device = device
        self.network = build_network(weights, local_window=local_window)

    def run(self, batch: np.ndarray) -> np.ndarray:
        paddle = self._paddle
        if not paddle.in_dynamic_mode():
            paddle.disable_static()
        with paddle.no_grad():
            return self.network(paddle.to_tensor(np.ascontiguousarray(batch, np.float32))).numpy()


def check_options(*, backend: str = "auto", device: str = "cpu", precision: str = "auto") -> tuple[str, list[str]]:
    """Check the settings once, before any photo: (the backend that will run, notes for the user).

    A combination that cannot run raises ValueError (bad usage) with one clear line.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if backend == "auto":
        backend = "paddle" if device == "gpu" or not _openvino_available() else "openvino"
    notes = []
    if backend == "openvino":
        if device == "gpu":
            raise ValueError("the openvino backend runs on the CPU; use --backend paddle with --device gpu")
        if precision == "bf16":
            from .openvino_backend import NO_BF16_NOTE, cpu_has_bf16

            if not cpu_has_bf16():
                notes.append(NO_BF16_NOTE)
    elif precision == "bf16":
        raise ValueError("the paddle backend runs fp32 only; bf16 needs --backend openvino")
    if device == "gpu" and not _paddle_has_cuda():
        raise ValueError("--device gpu needs the paddlepaddle-gpu package "
                         "(pip install paddlepaddle-gpu); this install is CPU-only")
    return backend, notes


def _paddle_has_cuda() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda()


def make_backend(weights: Weights, *, backend: str = "auto", device: str = "cpu",
                 precision: str = "auto", threads: int | None = None,
                 local_window: int = 0, tile_shape: tuple[int, int] | None = None) -> Backend:
    """The executor for these settings; ``auto`` picks OpenVINO on CPU when installed."""
    backend, _ = check_options(backend=backend, device=device, precision=precision)
    if backend == "openvino":
        from .openvino_backend import OpenVINOBackend

        return OpenVINOBackend(weights, precision=precision, threads=threads,
                               local_window=local_window, tile_shape=tile_shape)
    return PaddleBackend(weights, device=device, threads=threads, local_window=local_window)


def _openvino_available() -> bool:
    if os.environ.get("CMFNET_BACKEND") == "paddle":
        return False
    try:
        import importlib.util

        return (importlib.util.find_spec("openvino") is not None
                and importlib.util.find_spec("cmfnet_core.openvino_backend") is not None)
    except (ImportError, ValueError):
        return False
