"""The fast CPU executor: the Paddle network, exported once, run by OpenVINO.

The model for a tile shape is exported on first use (``export.py``) and kept
on disk (``cache.py``), so a warm second run never imports paddle. Compiling
it for a precision is cached by OpenVINO itself (its ``CACHE_DIR``, under the
same root), keyed by the model and the compile settings (precision, threads),
so a warm second run neither exports nor recompiles. Within a process a few
compiled models are kept in memory (:data:`COMPILED_KEEP`).

A model is compiled for the engine's tile shape (the engine fits one tile
shape to each photo, so a photo needs one model). It also serves any smaller
tile: that tile is reflect-padded at the bottom/right to the compiled shape
and the output is cropped back (the padded pixels do take part in the channel
attention's pooling, exactly as if Paddle had run the padded tile).

Precision (``precision.py``): ``fp32`` sets OpenVINO's inference precision
hint to f32 explicitly, since OpenVINO may otherwise pick bf16 on its own on
AMX machines. Measured against Paddle fp32: fp32 within 6e-6 (max abs); bf16
61-63 dB PSNR on weights of ordinary scale (full-size and light networks, a
photo crop), but 40 dB on the conformance checkpoint's STRONG variant, whose
amplified gains magnify bf16 rounding. ``int8`` compiles the quantised model
(``quantize.py``: calibrated once per weights, fitted onto each tile shape):
44.8 dB from fp32 at the worst on dev crops of the default weights.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..weights import Weights
from . import default_threads
from .cache import compile_cached, compiled_dir
from .core import core
from .export import compiled_shape, ensure_model
from .precision import NO_BF16_NOTE, inference_hint, resolve_precision, runtime_precision

# Each compiled model holds its own copy of the weights and its buffers for one tile shape
# (hundreds of MB for the full-size network at 512 px), and the app meets new shapes with
# every photo (its preview, its tiles, each 1:1 region): kept without bound, they would pile
# up all session. A few cover one photo's preview and tiles and the warm-up's shapes; an
# evicted model is loaded again from OpenVINO's on-disk cache when next needed.
COMPILED_KEEP = 4

_compiled: OrderedDict[tuple, object] = OrderedDict()  # least recently used first
_compiled_lock = threading.Lock()


#: OpenVINO's name for each of the engine's devices (``GPU``: its first GPU)
OV_DEVICE = {"cpu": "CPU", "gpu": "GPU"}


def compile_properties(device: str, precision: str, threads: int) -> dict:
    """OpenVINO's settings for a resolved precision on the engine's ``device``: one stream,
    for latency, compiled models cached on disk; the thread count is the CPU's alone."""
    properties = {
        "INFERENCE_PRECISION_HINT": inference_hint(precision, device),
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "CACHE_DIR": str(compiled_dir()),
    }
    if device == "cpu":
        properties["INFERENCE_NUM_THREADS"] = threads
    return properties


def _compile(xml: Path, properties: dict, device: str = "cpu"):
    """The compiled model for this model file, device and settings, kept among the last few."""
    key = (str(xml), device, json.dumps(properties, sort_keys=True, default=str))
    with _compiled_lock:
        compiled = _compiled.pop(key, None)
        if compiled is None:
            compiled = core().compile_model(str(xml), OV_DEVICE[device], properties)
        _compiled[key] = compiled
        while len(_compiled) > COMPILED_KEEP:
            _compiled.popitem(last=False)
        return compiled


def forget_compiled() -> None:
    """Drop this process's compiled models (the next backend compiles or loads again)."""
    with _compiled_lock:
        _compiled.clear()


def _pad_to(tile: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad a 3 x h x w tile at the bottom and right to 3 x height x width."""
    pad_h, pad_w = height - tile.shape[1], width - tile.shape[2]
    if pad_h == 0 and pad_w == 0:
        return tile
    mode = "reflect" if min(tile.shape[1:]) > 1 else "symmetric"
    return np.pad(tile, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)


class OpenVINOBackend:
    """OpenVINO on the CPU (fp32, bf16 or int8) or an Intel GPU (fp16 by default, fp32 or
    int8), compiled for one tile shape.

    ``threads``: OpenVINO's INFERENCE_NUM_THREADS on the CPU (default: every core this
    process may run on). ``config``: extra OpenVINO CPU properties (for
    benchmarks, e.g. ``{"ENABLE_CPU_PINNING": False}``). ``exact_shape``:
    compile for ``tile_shape`` as given instead of rounding it up (see
    :func:`~cmfnet_core.backends.export.compiled_shape`). ``recipe``: the int8
    quantisation :class:`~cmfnet_core.backends.quantize.Recipe` (default: the one
    ``--precision int8`` runs; others are for measuring).
    """

    name = "openvino"

    def __init__(self, weights: Weights, tile_shape: tuple[int, int], precision: str = "auto",
                 threads: int | None = None, local_window: int = 0, config: dict | None = None,
                 exact_shape: bool = False, recipe=None, device: str = "cpu"):
        self.device = device
        self.requested_precision = resolve_precision(precision, device, weights)
        self.threads = int(threads or default_threads())
        self.tile_shape = (tuple(int(v) for v in tile_shape) if exact_shape
                           else compiled_shape(tile_shape))
        self.local_window = local_window
        int8_note = None
        if self.requested_precision == "int8":
            from .quantize import ensure_int8_model, int8_decision, shipped_recipe

            self.recipe = recipe or shipped_recipe()
            # weights other than the measured bundled ones: int8 only where their own check passes
            self.requested_precision, int8_note = int8_decision(weights, precision, device,
                                                                local_window, self.recipe)
        if self.requested_precision == "int8":
            def ensure():
                return ensure_int8_model(weights, self.tile_shape, local_window, self.recipe)
        else:
            def ensure():
                return ensure_model(weights, self.tile_shape, local_window)
        properties = compile_properties(device, self.requested_precision, self.threads)
        properties.update(config or {})
        start = time.perf_counter()
        self.compiled, (xml, self.cache_hit, self.export_seconds) = compile_cached(
            ensure, lambda path: _compile(path, properties, device))
        self.model_path = xml
        #: what runs, which can differ from what was asked (see precision_note)
        self.precision = runtime_precision(self.compiled)
        self.precision_note = (NO_BF16_NOTE if self.requested_precision == "bf16" != self.precision
                               else int8_note)
        self.compile_seconds = time.perf_counter() - start - self.export_seconds
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Network output for float32 N x 3 x h x w tiles, h, w <= the compiled shape."""
        batch = np.asarray(batch, np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W tiles, got shape {batch.shape}")
        height, width = self.tile_shape
        n, _, h, w = batch.shape
        if h > height or w > width:
            raise ValueError(f"a {h}x{w} tile does not fit the model compiled for {height}x{width}")
        out = np.empty((n, 3, h, w), np.float32)
        with self._lock:
            for i in range(n):
                tile = np.ascontiguousarray(_pad_to(batch[i], height, width)[None])
                self._request.infer([tile])
                out[i] = self._request.get_output_tensor(0).data[0, :, :h, :w]
        return out
