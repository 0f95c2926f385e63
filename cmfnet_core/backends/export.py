"""Paddle network -> OpenVINO IR, once per model, kept in the cache (``cache.py``).

Pipeline (only on a cache miss; a hit never imports paddle)::

    network builder + fixed input shapes + parameter arrays
    -> the Paddle network built in static mode -> paddle.static.save_inference_model
    -> paddle2onnx -> OpenVINO IR (xml + bin)

:func:`export_network_onnx` and :func:`ensure_exported` take any network
(the degradation detector uses them, ``detect.py``); :func:`export_onnx` and
:func:`ensure_model` are CMFNet's (one 1 x 3 x H x W input).

Each model folder is written to a temporary name and renamed into place, so a
crash or a concurrent process never leaves a half-written model behind. What
paddle and paddle2onnx print from C++ while exporting is captured
(:func:`quiet_native_output`) and shown only if the export fails.

A CMFNet model is exported for one tile shape (:func:`compiled_shape`): the engine
cuts every photo into tiles of one shape, so a photo needs one model.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..weights import Weights
from .cache import model_dir, model_key, prune_cache, touch
from .core import core

SHAPE_STEP = 8  # compiled sides are multiples of this (the engine's tiles already are)
_export_lock = threading.Lock()


def compiled_shape(tile_shape: tuple[int, int], step: int = SHAPE_STEP) -> tuple[int, int]:
    """The shape a model is compiled for, to serve tiles of ``tile_shape``.

    By default that is the tile shape itself (the engine's tiles are multiples
    of 8), so the output equals Paddle's on the same tile. Rounding small
    images up to a coarser ``step`` would let previews of different aspect
    ratios share one export, but the extra padding changes what the channel
    attention's global pooling sees: on the conformance weights a 240-row
    image padded to 256 rows moved pixels by up to 243/255 (measured), so it
    is not done by default.
    """
    height, width = (int(v) for v in tile_shape)
    if height <= 0 or width <= 0 or height % 4 or width % 4:
        raise ValueError(f"tile shape {height}x{width}: both sides must be positive multiples of 4")
    return tuple(-(-side // step) * step for side in (height, width))


@contextlib.contextmanager
def quiet_native_output():
    """Capture what paddle and paddle2onnx print (their C++ cores write to fds 1 and 2)
    while exporting: stdout stays clean for callers that parse it, and a normal
    export prints nothing. If the export fails, the captured text goes to stderr."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    capture = tempfile.TemporaryFile()
    failed = False
    try:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        yield
    except BaseException:
        failed = True
        raise
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        if failed:
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace")[-4000:])
        capture.close()


@dataclass(frozen=True)
class InputSpec:
    """One float32 input of an exported network: its name (the model's input name) and fixed shape."""

    name: str
    shape: tuple[int, ...]


def export_network_onnx(build: Callable[[], object], inputs: Sequence[InputSpec],
                        parameter: Callable[[str], np.ndarray], workdir: Path, stem: str = "model") -> Path:
    """A Paddle network -> static program -> ONNX file ``workdir/STEM.onnx``.

    ``build()`` makes the network (a ``paddle.nn.Layer``; it is called in static
    mode); it is called with one static input per spec, in order, and its return
    value (one tensor) is the model's output. ``parameter(key)`` is the array for
    each key of the network's ``state_dict()``.

    The static program is built by running the network's own Python code once
    in Paddle's static mode (every shape is fixed, so no control flow needs
    converting) rather than through ``paddle.jit.save``'s dygraph-to-static
    source translation: for CMFNet the same graph in about 0.7 s instead of 5-8 s.
    """
    import paddle
    import paddle2onnx

    from ..paddle_mode import LOCK

    prefix = workdir / stem
    workdir.mkdir(parents=True, exist_ok=True)
    place = paddle.CPUPlace()
    # Static for this build. paddle.enable_static() is no switch on a thread that paddle
    # set eager without its own switch (any thread but the one that imported it): there it
    # leaves the thread eager and paddle.static.data fails. The tracer is the switch itself,
    # and it is process-wide underneath (C++): no eager run may interleave, hence LOCK.
    with LOCK, paddle.base.framework._dygraph_guard(None):
        main, startup = paddle.static.Program(), paddle.static.Program()
        scope = paddle.static.Scope()
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup), \
                paddle.static.scope_guard(scope):
            feeds = [paddle.static.data(spec.name, list(spec.shape), "float32") for spec in inputs]
            network = build()
            network.eval()
            output = network(*feeds)
            executor = paddle.static.Executor(place)
            executor.run(startup)
            for key, variable in network.state_dict().items():
                value = parameter(key)
                tensor = scope.find_var(variable.name).get_tensor()
                if tuple(tensor.shape()) != tuple(value.shape):
                    raise RuntimeError(f"{key}: shape {value.shape} does not fit {tuple(tensor.shape())}")
                tensor.set(np.ascontiguousarray(value, np.float32), place)
            with quiet_native_output():
                paddle.static.save_inference_model(str(prefix), feeds, [output], executor, program=main)
    program = prefix.with_suffix(".json")
    if not program.exists():  # paddle built without PIR writes the old format
        program = prefix.with_suffix(".pdmodel")
    onnx_path = workdir / f"{stem}.onnx"
    with quiet_native_output():
        onnx_bytes = paddle2onnx.export(str(program), str(prefix.with_suffix(".pdiparams")),
                                        save_file=None, opset_version=13,
                                        enable_onnx_checker=False, optimize_tool="None")
        if not onnx_bytes:  # paddle2onnx logs the reason and returns nothing
            raise RuntimeError("paddle2onnx could not export the network (its log is above)")
    onnx_path.write_bytes(onnx_bytes)
    return onnx_path


def export_onnx(weights: Weights, tile_shape: tuple[int, int], local_window: int,
                workdir: Path) -> Path:
    """CMFNet with these weights, for one 1 x 3 x H x W tile shape -> ``workdir/cmfnet.onnx``."""
    def build():
        from ..network import CMFNet

        network = CMFNet(weights.config)
        if local_window:
            network.set_local_statistics(local_window)
        return network

    def parameter(key: str) -> np.ndarray:
        # paddle's PReLU keeps its slope as "_weight"; the official state dict says "weight"
        return weights.state[key[: -len("._weight")] + ".weight" if key.endswith("._weight") else key]

    height, width = tile_shape
    return export_network_onnx(build, [InputSpec("x", (1, 3, height, width))], parameter, workdir,
                               stem="cmfnet")


def ensure_exported(target: Path, key: Mapping, export: Callable[[Path], Path]) -> tuple[Path, bool, float]:
    """The IR cached in ``target`` (a :func:`~.cache.model_dir`), exporting it on a miss.

    ``export(workdir)`` writes an ONNX file under ``workdir`` and returns its path;
    ``key`` goes into the model's ``info.json``. Returns (path of the .xml,
    whether it was a cache hit, seconds spent exporting).
    """
    xml = target / "model.xml"
    if xml.exists() and (target / "info.json").exists():
        touch(target / "info.json")
        return xml, True, 0.0
    with _export_lock:
        if xml.exists() and (target / "info.json").exists():
            return xml, True, 0.0
        import openvino as ov

        start = time.perf_counter()
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            onnx_path = export(work / "export")
            model = core().read_model(str(onnx_path))
            staged = work / "ir"
            staged.mkdir()
            ov.save_model(model, str(staged / "model.xml"), compress_to_fp16=False)
            seconds = time.perf_counter() - start
            info = dict(key, export_seconds=round(seconds, 3),
                        created=time.strftime("%Y-%m-%dT%H:%M:%S"))
            (staged / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            try:
                os.rename(staged, target)
            except OSError:
                if not xml.exists():  # not a concurrent writer that won the race
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        prune_cache(keep=target)
        return xml, False, seconds


def ensure_model(weights: Weights, tile_shape: tuple[int, int], local_window: int = 0
                 ) -> tuple[Path, bool, float]:
    """CMFNet's cached IR for these settings, exporting it on a miss (see :func:`ensure_exported`)."""
    key = model_key(weights, tile_shape, local_window)
    # export_onnx looked up when called, so a test can replace it
    return ensure_exported(model_dir(key), key,
                           lambda workdir: export_onnx(weights, tile_shape, local_window, workdir))


def prepare(weights: Weights, shapes, local_window: int = 0) -> list[Path]:
    """Export models for these tile shapes ahead of time (e.g. at install, or while the
    app idles), so the first restore or preview does not wait for paddle's export."""
    return [ensure_model(weights, compiled_shape(shape), local_window)[0] for shape in shapes]
