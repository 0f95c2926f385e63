"""The OpenVINO backend's models on disk: where they live, what names them, when they go.

One folder per exported model under :func:`cache_root` (``CMFNET_CACHE_DIR``
overrides the user cache folder). Its name hashes everything the model
depends on: for CMFNet (:func:`model_key`) the weights' *content*, the
network config, the tile shape, the local-statistics window, the source of
``network.py`` and the versions of paddle, paddle2onnx and openvino, so any
change there exports afresh; for another network, such as the degradation
detector (:func:`network_key`), its weights' sha256, its input shapes and
its source, with the same format and versions. OpenVINO keeps its compiled
blobs beside them (``compiled/``). After each new export the cache is pruned
back to ``CMFNET_CACHE_MAX_MB``, least recently used first; a pruned model is
simply exported again when next needed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..versions import library_versions
from ..weights import Weights

FORMAT_VERSION = 2  # bump when export.py's pipeline changes
DEFAULT_MAX_MB = 2048
_NETWORK_SOURCES = ("network.py", "network_config.py")  # in cmfnet_core/, beside this package


def cache_root() -> Path:
    """Where exported models live: ``$CMFNET_CACHE_DIR/openvino`` or the user cache dir."""
    override = os.environ.get("CMFNET_CACHE_DIR")
    if override:
        base = Path(override)
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("cmfnet-restore", appauthor=False))
    return base / "openvino"


def compiled_dir() -> Path:
    """OpenVINO's own cache of compiled models (its ``CACHE_DIR``)."""
    return cache_root() / "compiled"


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


def _network_source_digest(sources=_NETWORK_SOURCES) -> str:
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in sources:
        digest.update((package / name).read_bytes())
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


def network_key(network: str, weights_sha256: str, inputs: dict[str, tuple[int, ...]],
                sources: tuple[str, ...], **extra) -> dict:
    """Everything an exported network other than CMFNet depends on.

    ``sources``: the files in ``cmfnet_core/`` that define it; ``extra``: anything
    else its export reads (e.g. the names of its outputs).
    """
    return {
        "format": FORMAT_VERSION,
        "network": network,
        "weights_sha256": weights_sha256,
        "inputs": {name: [int(v) for v in shape] for name, shape in inputs.items()},
        "network_source": _network_source_digest(sources),
        "versions": library_versions(),
        **extra,
    }


def model_dir(key: dict) -> Path:
    """The folder of the model ``key`` names: ``cmfnet-HxW-HASH``, or ``NETWORK-HASH``."""
    text = json.dumps(key, sort_keys=True).encode()
    if "network" in key:
        label = key["network"]
    else:
        h, w = key["tile_shape"]
        label = f"cmfnet-{h}x{w}"
    return cache_root() / f"{label}-{hashlib.sha256(text).hexdigest()[:24]}"


def compile_cached(ensure, compile):
    """``compile(xml)`` of the model ``ensure()`` gives as ``(xml, cache_hit, export_seconds)``,
    and that triple. A cached model that fails to compile (damaged, e.g. by a crash while the
    disk was flushing) is deleted and exported again, once; a fresh one that fails raises."""
    xml, hit, seconds = ensure()
    try:
        return compile(xml), (xml, hit, seconds)
    except RuntimeError:
        if not hit:
            raise
        shutil.rmtree(xml.parent, ignore_errors=True)
        xml, hit, seconds = ensure()
        return compile(xml), (xml, hit, seconds)


def touch(path: Path) -> None:
    """Mark a model as just used (pruning goes by this time)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def max_mb() -> float:
    """``CMFNET_CACHE_MAX_MB``, or the default where it is unset or not a number."""
    try:
        return float(os.environ.get("CMFNET_CACHE_MAX_MB", DEFAULT_MAX_MB))
    except ValueError:
        return float(DEFAULT_MAX_MB)


def prune_cache(limit_mb: float | None = None, keep: Path | None = None) -> int:
    """Delete the least recently used models (and OpenVINO's compiled blobs) until the
    cache is under ``limit_mb`` (default :func:`max_mb`). Returns how many entries
    were removed. A removed entry is simply exported/compiled again."""
    if limit_mb is None:
        limit_mb = max_mb()
    root = cache_root()
    entries = []
    try:
        for entry in root.iterdir():  # every model's folder, CMFNet's or another network's
            info = entry / "info.json"  # not there yet in a folder still being written
            if entry.is_dir() and info.exists() and entry != keep:
                entries.append((info.stat().st_mtime, entry))
        blobs = compiled_dir()
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
