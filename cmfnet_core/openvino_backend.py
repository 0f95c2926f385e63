"""The fast CPU executor: the Paddle network, exported once, run by OpenVINO.

Pipeline (only on a cache miss; a hit never imports paddle)::

    Weights -> Paddle CMFNet built in static mode (fixed 1 x 3 x H x W input)
    -> paddle.static.save_inference_model -> paddle2onnx -> OpenVINO IR (xml + bin)

The IR is kept in the user cache dir (``CMFNET_CACHE_DIR`` overrides it), one
folder per key. The key hashes the weights' *content*, the network config, the
tile shape, the local-statistics window, the source of ``network.py`` and the
versions of paddle, paddle2onnx and openvino, so any change there exports
afresh. Each folder is written to a temporary name and renamed into place, so a
crash or a concurrent process never leaves a half-written model behind.
Compiling the IR for a precision is cached by OpenVINO itself (its
``CACHE_DIR``, under the same root), keyed by the model and the compile
settings (precision, threads), so a warm second run neither exports nor
recompiles.

A model is compiled for the engine's tile shape (the engine cuts every photo
into tiles of one shape, the last row/column shifted back to the border, so a
photo needs one model). It also serves any smaller tile: that tile is
reflect-padded at the bottom/right to the compiled shape and the output is
cropped back (the padded pixels do take part in the channel attention's
pooling, exactly as if Paddle had run the padded tile).

Precision: ``auto`` is ``bf16`` where the CPU has AMX or AVX512-BF16 (OpenVINO
reports the ``BF16`` capability), else ``fp32``; ``bf16`` asked for on a CPU
without it runs fp32, and the backend says so (``precision`` is what the
compiled model really runs, ``precision_note`` the one line for the user).
``fp32`` sets OpenVINO's inference precision hint to f32 explicitly, since
OpenVINO may otherwise pick bf16 on its own on AMX machines. Measured against Paddle fp32: fp32 within 6e-6 (max
abs); bf16 61-63 dB PSNR on weights of ordinary scale (full-size and light
networks, a photo crop), but 40 dB on the conformance checkpoint's STRONG
variant, whose amplified gains magnify bf16 rounding.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import cpu
from .backends import default_threads
from .weights import Weights

FORMAT_VERSION = 2  # bump when the export pipeline changes
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
_core = None
_core_lock = threading.Lock()
_export_lock = threading.Lock()


# --- environment ---------------------------------------------------------------

def cache_root() -> Path:
    """Where exported models live: ``$CMFNET_CACHE_DIR/openvino`` or the user cache dir."""
    override = os.environ.get("CMFNET_CACHE_DIR")
    if override:
        base = Path(override)
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("cmfnet-restore", appauthor=False))
    return base / "openvino"


def core():
    """One OpenVINO Core per process."""
    global _core
    with _core_lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core


def cpu_has_bf16() -> bool:
    """True where the CPU runs bf16 natively (AMX or AVX512-BF16)."""
    try:
        return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - fall back to the kernel's view of the CPU
        return cpu.cpu_has_bf16()


NO_BF16_NOTE = ("bf16 was asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX): "
                "running fp32, which gives the same result at the same speed here")


def runtime_precision(compiled) -> str:
    """The precision the compiled model really runs in: 'bf16' if any of its nodes does.

    OpenVINO takes a bf16 hint as a wish: on a CPU without bf16 it compiles f32.
    """
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "runtimePrecision" in info and "bf16" in info["runtimePrecision"].astype(str):
            return "bf16"
    return "fp32"


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in _OV_PRECISION:
        raise ValueError(f"unknown precision {precision!r}; choose auto, fp32 or bf16")
    return precision


def _version(*dists: str) -> str:
    from importlib import metadata

    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def library_versions() -> dict[str, str]:
    return {
        "paddle": _version("paddlepaddle", "paddlepaddle-gpu"),
        "paddle2onnx": _version("paddle2onnx"),
        "openvino": _version("openvino"),
    }


def weights_digest(weights: Weights) -> str:
    """sha256 of the state dict's content (names, shapes and float32 bytes); memoised."""
    cached = getattr(weights, "_content_sha256", None)
    if cached:
        return cached
    digest = hashlib.sha256()
    for key in sorted(weights.state):
        value = np.ascontiguousarray(weights.state[key], np.float32)
        digest.update(f"{key}:{value.shape}\n".encode())
        digest.update(value.tobytes())
    result = digest.hexdigest()
    try:
        weights._content_sha256 = result  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return result


def _network_source_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("network.py", "network_config.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def model_key(weights: Weights, tile_shape: tuple[int, int], local_window: int) -> dict:
    """Everything the exported model depends on."""
    return {
        "format": FORMAT_VERSION,
        "weights_sha256": weights_digest(weights),
        "config": weights.config.as_dict(),
        "tile_shape": [int(tile_shape[0]), int(tile_shape[1])],
        "local_window": int(local_window),
        "network_source": _network_source_digest(),
        "versions": library_versions(),
    }


def model_dir(key: dict) -> Path:
    text = json.dumps(key, sort_keys=True).encode()
    h, w = key["tile_shape"]
    return cache_root() / f"cmfnet-{h}x{w}-{hashlib.sha256(text).hexdigest()[:24]}"


# --- export --------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_native_output():
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


def export_onnx(weights: Weights, tile_shape: tuple[int, int], local_window: int,
                workdir: Path) -> Path:
    """Paddle network with these weights -> static program -> ONNX file in ``workdir``.

    The static program is built by running the network's own Python code once
    in Paddle's static mode (every shape is fixed, so no control flow needs
    converting) rather than through ``paddle.jit.save``'s dygraph-to-static
    source translation: the same graph in about 0.7 s instead of 5-8 s here.
    """
    import paddle
    import paddle2onnx

    from .network import CMFNet

    height, width = tile_shape
    prefix = workdir / "cmfnet"
    workdir.mkdir(parents=True, exist_ok=True)
    was_dynamic = paddle.in_dynamic_mode()
    place = paddle.CPUPlace()
    paddle.enable_static()
    try:
        main, startup = paddle.static.Program(), paddle.static.Program()
        scope = paddle.static.Scope()
        with paddle.utils.unique_name.guard(), paddle.static.program_guard(main, startup), \
                paddle.static.scope_guard(scope):
            image = paddle.static.data("x", [1, 3, height, width], "float32")
            network = CMFNet(weights.config)
            if local_window:
                network.set_local_statistics(local_window)
            network.eval()
            restored = network(image)
            executor = paddle.static.Executor(place)
            executor.run(startup)
            for key, parameter in network.state_dict().items():
                name = key[: -len("._weight")] + ".weight" if key.endswith("._weight") else key
                value = weights.state[name]
                tensor = scope.find_var(parameter.name).get_tensor()
                if tuple(tensor.shape()) != tuple(value.shape):
                    raise RuntimeError(f"{name}: shape {value.shape} does not fit {tuple(tensor.shape())}")
                tensor.set(np.ascontiguousarray(value, np.float32), place)
            with _quiet_native_output():
                paddle.static.save_inference_model(str(prefix), [image], [restored], executor, program=main)
    finally:
        if was_dynamic:
            paddle.disable_static()
    program = prefix.with_suffix(".json")
    if not program.exists():  # paddle built without PIR writes the old format
        program = prefix.with_suffix(".pdmodel")
    onnx_path = workdir / "cmfnet.onnx"
    with _quiet_native_output():
        onnx_bytes = paddle2onnx.export(str(program), str(prefix.with_suffix(".pdiparams")),
                                        save_file=None, opset_version=13,
                                        enable_onnx_checker=False, optimize_tool="None")
        if not onnx_bytes:  # paddle2onnx logs the reason and returns nothing
            raise RuntimeError("paddle2onnx could not export the network (its log is above)")
    onnx_path.write_bytes(onnx_bytes)
    return onnx_path


def ensure_model(weights: Weights, tile_shape: tuple[int, int], local_window: int = 0
                 ) -> tuple[Path, bool, float]:
    """The cached IR for these settings, exporting it on a miss.

    Returns (path of the .xml, whether it was a cache hit, seconds spent exporting).
    """
    key = model_key(weights, tile_shape, local_window)
    target = model_dir(key)
    xml = target / "model.xml"
    if xml.exists() and (target / "info.json").exists():
        _touch(target / "info.json")
        return xml, True, 0.0
    with _export_lock:
        if xml.exists() and (target / "info.json").exists():
            return xml, True, 0.0
        import openvino as ov

        start = time.perf_counter()
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            onnx_path = export_onnx(weights, tile_shape, local_window, work / "export")
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


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prune_cache(limit_mb: float | None = None, keep: Path | None = None) -> int:
    """Delete the least recently used models (and OpenVINO's compiled blobs) until the
    cache is under ``limit_mb`` (``CMFNET_CACHE_MAX_MB``, default 2048). Returns how
    many entries were removed. A removed entry is simply exported/compiled again."""
    if limit_mb is None:
        try:
            limit_mb = float(os.environ.get("CMFNET_CACHE_MAX_MB", 2048))
        except ValueError:
            limit_mb = 2048.0
    root = cache_root()
    entries = []
    try:
        for entry in root.glob("cmfnet-*"):
            info = entry / "info.json"
            if entry.is_dir() and info.exists() and entry != keep:
                entries.append((info.stat().st_mtime, entry))
        blobs = root / "compiled"
        if blobs.is_dir():
            entries += [(blob.stat().st_mtime, blob) for blob in blobs.iterdir() if blob.is_file()]
        total = sum(_size(path) for _, path in entries) + (_size(keep) if keep and keep.exists() else 0)
    except OSError:
        return 0
    removed = 0
    for _, path in sorted(entries, key=lambda item: item[0]):
        if total <= limit_mb * 1024 * 1024:
            break
        try:
            size = _size(path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        total -= size
        removed += 1
    return removed


def prepare(weights: Weights, shapes, local_window: int = 0) -> list[Path]:
    """Export models for these tile shapes ahead of time (e.g. at install, or while the
    app idles), so the first restore or preview does not wait for paddle's export."""
    return [ensure_model(weights, compiled_shape(shape), local_window)[0] for shape in shapes]


def forget_compiled() -> None:
    """Drop this process's compiled models (the next backend compiles or loads again)."""
    with _compiled_lock:
        _compiled.clear()


def clear_cache() -> int:
    """Delete every cached model; returns how many were removed."""
    root = cache_root()
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


# --- the backend ---------------------------------------------------------------

SHAPE_STEP = 8  # compiled sides are multiples of this (the engine's tiles already are)


def compiled_shape(tile_shape, step: int = SHAPE_STEP) -> tuple[int, int]:
    """The shape a model is compiled for, to serve tiles of ``tile_shape``.

    By default that is the tile shape itself (the engine's tiles are multiples
    of 8), so the output equals Paddle's on the same tile. Rounding small
    images up to a coarser ``step`` would let previews of different aspect
    ratios share one export, but the extra padding changes what the channel
    attention's global pooling sees: on the conformance weights a 240-row
    image padded to 256 rows moved pixels by up to 243/255 (measured), so it
    is not done by default.
    """
    if tile_shape is None:
        from .engine import DEFAULT_TILE

        tile_shape = (DEFAULT_TILE, DEFAULT_TILE)
    height, width = (int(v) for v in tile_shape)
    if height <= 0 or width <= 0 or height % 4 or width % 4:
        raise ValueError(f"tile shape {height}x{width}: both sides must be positive multiples of 4")
    return tuple(-(-side // step) * step for side in (height, width))


_compiled: dict[tuple, object] = {}
_compiled_lock = threading.Lock()


def _compile(xml: Path, properties: dict):
    """One compiled model per process for each model file and setting."""
    key = (str(xml), json.dumps(properties, sort_keys=True, default=str))
    with _compiled_lock:
        compiled = _compiled.get(key)
        if compiled is None:
            compiled = _compiled[key] = core().compile_model(str(xml), "CPU", properties)
        return compiled


def _pad_to(tile: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad a 3 x h x w tile at the bottom and right to 3 x height x width."""
    pad_h, pad_w = height - tile.shape[1], width - tile.shape[2]
    if pad_h == 0 and pad_w == 0:
        return tile
    mode = "reflect" if min(tile.shape[1:]) > 1 else "symmetric"
    return np.pad(tile, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)


class OpenVINOBackend:
    """OpenVINO on the CPU, compiled for one tile shape, fp32 or bf16.

    ``threads``: OpenVINO's INFERENCE_NUM_THREADS (default: every core this
    process may run on). ``config``: extra OpenVINO CPU properties (for
    benchmarks, e.g. ``{"ENABLE_CPU_PINNING": False}``). ``exact_shape``:
    compile for ``tile_shape`` as given instead of rounding it up (see
    :func:`compiled_shape`).
    """

    name = "openvino"

    def __init__(self, weights: Weights, precision: str = "auto", threads: int | None = None,
                 local_window: int = 0, tile_shape: tuple[int, int] | None = None,
                 config: dict | None = None, exact_shape: bool = False):
        self.requested_precision = resolve_precision(precision)
        self.threads = int(threads or default_threads())
        self.tile_shape = (tuple(int(v) for v in tile_shape) if exact_shape and tile_shape
                           else compiled_shape(tile_shape))
        self.local_window = local_window
        xml, self.cache_hit, self.export_seconds = ensure_model(weights, self.tile_shape, local_window)
        properties = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[self.requested_precision],
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "CACHE_DIR": str(cache_root() / "compiled"),
        }
        properties.update(config or {})
        start = time.perf_counter()
        try:
            self.compiled = _compile(xml, properties)
        except RuntimeError:
            if not self.cache_hit:
                raise
            # a damaged cache entry (e.g. a crash while the disk was flushing): export again
            shutil.rmtree(xml.parent, ignore_errors=True)
            xml, self.cache_hit, self.export_seconds = ensure_model(weights, self.tile_shape, local_window)
            self.compiled = _compile(xml, properties)
        self.model_path = xml
        #: what runs, which can differ from what was asked (see precision_note)
        self.precision = runtime_precision(self.compiled)
        self.precision_note = (NO_BF16_NOTE if self.requested_precision == "bf16" != self.precision
                               else None)
        self.compile_seconds = time.perf_counter() - start
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
