"""The restoration engine: one photo array in, the restored array out.

The CLI, the Qt app and the GIMP bridge all call it the same way::

    restorer = Restorer("dehaze")                      # bundled or imported weights
    out = restorer.restore(image, progress=report, cancel=token)

The image is cut into overlapping tiles (see ``tiling.py``), so memory is
bounded by the tile size, not the photo; progress is reported per tile and a
cancel request is honoured between tiles.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .backends import Backend, check_options, make_backend
from .tiling import blend_weights, pad_image, plan_tiles
from .weights import TASKS, Weights, WeightsError, read_weights, resolve_weights

ProgressCallback = Callable[[int, int], None]

DEFAULT_TILE = 256  # full-size weights; lighter ones default to LIGHT_TILE
LIGHT_TILE = 512  # measured: same throughput per pixel from 384 to 768, less overlap overhead
DEFAULT_OVERLAP = 32
PREVIEW_LONG_SIDE = 512


class Cancelled(Exception):
    """The run was cancelled through its CancelToken."""

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)


class CancelToken:
    """Thread-safe cancel flag: any thread calls ``cancel()``; the engine checks it per tile."""

    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class Restorer:
    """CMFNet for one task, loaded once, restoring any number of photos.

    Parameters
    ----------
    task: ``deblur``, ``dehaze`` or ``deraindrop``; picks the default weights.
    weights: a weights file (any supported format); None uses the installed default.
    tile: tile side in pixels (multiple of 8); None picks 512 for light weights
        (n_feat <= 48) and 256 for the full-size model. Larger tiles see more
        context and repeat less work in overlaps, but need more memory.
    overlap: pixels shared by neighbouring tiles (multiple of 8), feathered so no
        seam shows.
    device / backend / precision / threads: where and how each tile runs
        (see ``backends.py``); ``auto`` picks the fastest exact-enough path.
    local_stats: pool channel attention over a window of about the training patch
        size (True) or of this many pixels (an int) instead of the whole tile, so
        tiled and whole-image output agree.
    """

    def __init__(self, task: str, weights=None, *, tile: int | None = None,
                 overlap: int = DEFAULT_OVERLAP, device: str = "cpu", backend: str = "auto",
                 precision: str = "auto", threads: int | None = None, local_stats: bool | int = False):
        if task not in TASKS:
            raise WeightsError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.weights_path = resolve_weights(task, weights)
        self.weights: Weights = read_weights(self.weights_path)
        if tile is None:
            tile = LIGHT_TILE if self.weights.config.n_feat <= 48 else DEFAULT_TILE
        plan_tiles(tile, tile, tile, overlap)  # validates tile and overlap early
        self.task, self.tile, self.overlap = task, tile, overlap
        if self.weights.task and self.weights.task != task:
            raise WeightsError(f"{self.weights_path.name} holds {self.weights.task} weights, not {task}")
        if local_stats is True:
            local_stats = self._training_patch()
        self.local_window = int(local_stats or 0)
        #: one-line notes about the settings (e.g. bf16 asked for where the CPU has none)
        self.backend_name, self.notes = check_options(backend=backend, device=device, precision=precision)
        self._backend_options = dict(backend=backend, device=device, precision=precision,
                                     threads=threads, local_window=self.local_window)
        self._backends: dict[tuple[int, int], Backend] = {}
        self._lock = threading.Lock()

    def _training_patch(self) -> int:
        provenance = self.weights.meta.get("provenance", {})
        patch = provenance.get("patch") or provenance.get("training", {}).get("patch")
        return int(patch) if patch else 256  # the official models were trained on 256 x 256 patches

    def backend(self, tile_shape: tuple[int, int]) -> Backend:
        """The executor for tiles of this shape (built once, then kept warm)."""
        with self._lock:
            if tile_shape not in self._backends:
                self._backends[tile_shape] = make_backend(self.weights, tile_shape=tile_shape,
                                                          **self._backend_options)
            return self._backends[tile_shape]

    def restore(self, image: np.ndarray, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> np.ndarray:
        """Restore ``image`` (H x W, H x W x 1-4; uint8, uint16 or float in [0, 1]).

        Returns an array of the same shape and dtype. Colour images are RGB(A);
        alpha is passed through untouched; gray is restored through RGB.
        Raises :class:`Cancelled` if ``cancel`` is set between two tiles.
        """
        colour, alpha, gray = split_channels(image)
        height, width = colour.shape[:2]
        scale = _scale_of(image.dtype)
        padded, tiles = plan_tiles(height, width, self.tile, self.overlap)
        source = pad_image(colour, padded)
        total = np.zeros((*padded, 3), np.float32)
        weight = np.zeros((*padded, 1), np.float32)
        if progress:
            progress(0, len(tiles))
        for done, tile in enumerate(tiles, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            patch = source[tile.slices].astype(np.float32) / scale
            result = self.backend((tile.h, tile.w)).run(patch.transpose(2, 0, 1)[None])[0]
            mask = blend_weights(tile, padded, self.overlap)[..., None]
            total[tile.slices] += result.transpose(1, 2, 0) * mask
            weight[tile.slices] += mask
            if progress:
                progress(done, len(tiles))
        restored = total[:height, :width]  # normalised in place: a long photo is large as floats
        restored /= weight[:height, :width]
        np.clip(restored, 0.0, 1.0, out=restored)
        del source, weight
        return merge_channels(restored, alpha, gray, image.dtype)


def _scale_of(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise TypeError(f"unsupported pixel type {dtype}; expected uint8, uint16 or float")


def split_channels(image: np.ndarray):
    """(RGB colour, alpha or None, was_gray) without changing the pixel type."""
    image = np.asarray(image)
    _scale_of(image.dtype)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or 0 in image.shape[:2]:
        raise ValueError(f"expected an H x W (x 1-4) image, got shape {image.shape}")
    channels = image.shape[2]
    gray = channels in (1, 2)
    alpha = image[..., -1] if channels in (2, 4) else None
    colour = np.repeat(image[..., :1], 3, axis=2) if gray else image[..., :3]
    return colour, alpha, gray


def merge_channels(restored: np.ndarray, alpha, gray: bool, dtype) -> np.ndarray:
    """Back to the caller's layout and pixel type (restored is float RGB in [0, 1])."""
    if gray:  # ITU-R BT.601 luma, as OpenCV and Pillow convert RGB to gray
        restored = restored @ np.array([0.299, 0.587, 0.114], np.float32)
        restored = restored[..., None]
    scale = _scale_of(np.dtype(dtype))
    if scale != 1.0:
        out = np.rint(restored * scale).astype(dtype)
    else:
        out = restored.astype(dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha[..., None].astype(dtype)], axis=2)
    elif gray:
        out = out[..., 0]
    return out


def downscale(image: np.ndarray, long_side: int = PREVIEW_LONG_SIDE) -> np.ndarray:
    """A copy with its long side at most ``long_side`` (area-averaged), for previews."""
    import cv2

    height, width = image.shape[:2]
    factor = long_side / max(height, width)
    if factor >= 1:
        return image.copy()
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
