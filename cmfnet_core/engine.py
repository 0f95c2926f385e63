"""The restoration engine: one photo array in, the restored array out.

The CLI, the Qt app and the GIMP bridge all call it the same way::

    restorer = Restorer("dehaze")                      # bundled or imported weights
    out = restorer.restore(image, progress=report, cancel=token)

The image is cut into overlapping tiles fitted to it (see ``tiling.py``) and
finished one row of tiles at a time, written straight into the output array:
beyond the photo and its result, memory is one row of tiles in floats, not
the photo's size in floats. Progress is reported per tile and a cancel
request is honoured between tiles.

Previews run as one tile of the downscaled photo (:meth:`Restorer.restore_whole`
on :func:`downscale`); :func:`preview_tile_shape` says which shape that is for
a photo of a given size, so a caller can build that model ahead of time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from .backends import PER_SHAPE, Backend, check_options, make_backend
from .backends.precision import LIGHT_MAX_FEAT, resolve_precision
from .i18n import _
from .tiling import (MULTIPLE, blend_weights, fit_context, grid_weight_sums, plan_tiles, round_up,
                     take_tile)
from .weights import TASKS, Weights, WeightsError, read_weights, resolve_weights

ProgressCallback = Callable[[int, int], None]

# The automatic tile (:func:`auto_tile`): the largest side of a tile, by network size. Each
# tile also computes CONTEXT pixels on every side that it does not keep, so larger tiles
# waste less (light, tile 768: 1.3x the photo's pixels computed; tile 512: 1.5x).
DEFAULT_TILE = 640  # full-size weights (n_feat 96): a 640 x 640 tile holds ~2 GB of activations
LIGHT_TILE = 768  # measured: same throughput per pixel from 384 to 768
DEFAULT_OVERLAP = 16  # blended inside the kept part of each tile; the context does the real work
# Real pixels each tile sees beyond those it keeps, on every side, and the reflection that
# frames the photo: measured in tests/bench/border_reach.py (a crop restored alone against
# the same pixels restored with 160 px of real context around them): the bundled light
# networks differ by < 1 level from 28 px in and < 0.25 from 34 px (99th percentile < 1
# from 34). The full-size network has the same depth (the same receptive field, only wider
# layers); with random weights its edge fades within 7 px, which says little about trained
# ones, so it gets the light networks' measured reach with a margin.
LIGHT_CONTEXT = 48
FULL_CONTEXT = 64
PREVIEW_LONG_SIDE = 512
# A preview's first look, shown while the PREVIEW_LONG_SIDE one runs: a quarter of its
# pixels, so about a quarter of its time (one tile each; default dehaze weights on OpenVINO,
# a 3:2 photo: 0.24 s against 1.0 s, on one loaded CPU).
PREVIEW_COARSE_LONG_SIDE = 256
EMIT_ROWS = 16  # finished rows converted to the output's pixel type per step
# Backends kept per restorer where each is built for one tile shape (OpenVINO: a compiled
# model), least recently used dropped: each photo brings new shapes (its preview, its tiles),
# and a few cover one photo and the app's warm-up without memory growing photo after photo.
KEEP_BACKENDS = 4
WARM_TILE = 64  # side of the one small tile a backend that runs any shape is warmed on


def context_for(config) -> int:
    """The context (see :data:`LIGHT_CONTEXT`) a network of this config needs."""
    return LIGHT_CONTEXT if config.n_feat <= LIGHT_MAX_FEAT else FULL_CONTEXT


def auto_tile(config) -> int:
    """The automatic tile side for a network of this config: the one choice shared by the
    app, the CLI, GIMP and right-click (a tile setting of 0 or None means this)."""
    return LIGHT_TILE if config.n_feat <= LIGHT_MAX_FEAT else DEFAULT_TILE


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
    tile: largest tile side in pixels (multiple of 8); None or 0: :func:`auto_tile`.
        Larger tiles repeat less of their context, but need more memory.
    overlap: pixels of the kept parts of neighbouring tiles blended (multiple of 8).
    context: pixels each tile sees on every side beyond those it keeps, and the
        reflection framing the photo; None: what the network needs (:func:`context_for`).
        A small tile carries at most a quarter of its side (``tiling.fit_context``).
    device / backend / precision / threads: where and how each tile runs
        (see ``backends/``); ``auto`` picks the fastest exact-enough path.
    local_stats: pool channel attention over a window of about the training patch
        size (True) or of this many pixels (an int) instead of the whole tile, so
        tiled and whole-image output agree.
    """

    def __init__(self, task: str, weights=None, *, tile: int | None = None,
                 overlap: int = DEFAULT_OVERLAP, device: str = "cpu", backend: str = "auto",
                 precision: str = "auto", threads: int | None = None, local_stats: bool | int = False,
                 context: int | None = None):
        if task not in TASKS:
            raise WeightsError(_("unknown task {task}; choose one of {tasks}").format(task=repr(task), tasks=', '.join(TASKS)))
        self.weights_path = resolve_weights(task, weights)
        self.weights: Weights = read_weights(self.weights_path)
        if not tile:
            tile = auto_tile(self.weights.config)
        self.context = context_for(self.weights.config) if context is None else context
        plan_tiles(tile, tile, tile, overlap, fit_context(tile, overlap, self.context))  # validates early
        self.task, self.tile, self.overlap = task, tile, overlap
        if self.weights.task and self.weights.task != task:
            raise WeightsError(_("{name} holds {made_for} weights, not {task}").format(name=self.weights_path.name, made_for=self.weights.task, task=task))
        if local_stats is True:
            local_stats = self._training_patch()
        self.local_window = int(local_stats or 0)
        #: the backend every tile shape runs on ("auto" resolved once, here), and one-line
        #: notes about the settings (e.g. bf16 asked for where the CPU has none)
        self.backend_name, self.notes = check_options(backend=backend, device=device, precision=precision)
        self._backend_options = dict(backend=self.backend_name, device=device, precision=precision,
                                     threads=threads, local_window=self.local_window)
        #: backends by tile shape (one for all shapes, key None, where a backend runs any shape)
        self._backends: OrderedDict[tuple[int, int] | None, Backend] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    @property
    def calibration_pending(self) -> bool:
        """Whether the first tile will calibrate int8 for these weights first (once per
        weights file and CPU kind, tens of seconds): worth telling the user before it starts."""
        if self.backend_name != "openvino" or resolve_precision(
                self._backend_options["precision"], self._backend_options["device"], self.weights) != "int8":
            return False
        from .backends.quantize import reference_cached

        return not reference_cached(self.weights, local_window=self.local_window)

    def prepare_precision(self) -> list[str]:
        """Settle the precision now, not in the first tile: where int8 is decided on, calibrate
        it if :attr:`calibration_pending` (so a progress bar does not count minutes of that as
        one tile) and check weights other than the bundled ones (once per weights file; auto
        runs the float path where int8 falls short). Returns one-line notes for the user."""
        if self.backend_name != "openvino":
            return []
        from .backends.quantize import ensure_reference, int8_decision

        options = self._backend_options
        if self.calibration_pending:
            ensure_reference(self.weights, local_window=self.local_window)
        _precision, note = int8_decision(self.weights, options["precision"], options["device"], self.local_window)
        return [note] if note else []

    def _training_patch(self) -> int:
        provenance = self.weights.meta.get("provenance", {})
        patch = provenance.get("patch") or provenance.get("training", {}).get("patch")
        return int(patch) if patch else 256  # the official models were trained on 256 x 256 patches

    def backend(self, tile_shape: tuple[int, int]) -> Backend:
        """The executor for tiles of this shape, built on first use and kept warm: one per
        shape (the last :data:`KEEP_BACKENDS` used) where the backend builds a model per
        shape (``backends.PER_SHAPE``), else one for every shape."""
        tile_shape = tuple(tile_shape)
        key = tile_shape if self.backend_name in PER_SHAPE else None
        with self._lock:
            backend = self._backends.pop(key, None)
            if backend is None:
                backend = make_backend(self.weights, tile_shape=tile_shape, **self._backend_options)
            self._backends[key] = backend
            while len(self._backends) > KEEP_BACKENDS:
                self._backends.popitem(last=False)
            return backend

    def warm(self, tile_shapes, cancel: CancelToken | None = None,
             progress: ProgressCallback | None = None, *, run: bool = True) -> None:
        """Build the backends for these tile shapes and run each once, so the restores
        that use them (e.g. a preview, :func:`preview_tile_shape`) compile and allocate
        nothing. A backend that runs any shape with one network compiles nothing per
        shape: it is built and run once, on one small tile, which does its loading and
        first-run set-up (a full preview's run would only keep the worker busy for
        seconds). A shape already built is only marked as recently used: running it
        again would cost a whole tile's time for nothing. ``run=False``: a shape's model
        is built but not run, for a restore of that shape that follows at once and would
        only wait for a run on zeros (the small tile of a backend for any shape still
        runs: it is quick, and that backend's first run is its slow part). ``cancel`` is
        checked between shapes; ``progress(done, total)`` is called before the first
        and after each."""
        shapes = list(dict.fromkeys(tuple(shape) for shape in tile_shapes))
        per_shape = self.backend_name in PER_SHAPE
        if not per_shape:
            shapes = [(WARM_TILE, WARM_TILE)]
        if progress:
            progress(0, len(shapes))
        for done, shape in enumerate(shapes, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            with self._lock:
                built = (shape if per_shape else None) in self._backends
            backend = self.backend(shape)  # built now, or moved to most recently used
            if not built and (run or not per_shape):
                backend.run(np.zeros((1, 3, *shape), np.float32))
            if progress:
                progress(done, len(shapes))

    def plan(self, height: int, width: int, tile: int | None = None, *,
             whole: bool = False) -> tuple[tuple[int, int], list, int]:
        """(canvas size, tiles, context) for a ``height`` x ``width`` photo: what
        :meth:`restore` runs. ``whole``: one tile holding the photo and its full context."""
        if whole:
            side = max(round_up(max(height, width) + 2 * self.context),
                       2 * self.context + self.overlap + MULTIPLE)
            return (*plan_tiles(height, width, side, self.overlap, self.context), self.context)
        tile = tile or self.tile
        context = fit_context(tile, self.overlap, self.context)
        return (*plan_tiles(height, width, tile, self.overlap, context), context)

    def restore(self, image: np.ndarray, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None, *, tile: int | None = None,
                whole: bool = False) -> np.ndarray:
        """Restore ``image`` (H x W, H x W x 1-4; uint8, uint16 or float in [0, 1]).

        Returns an array of the same shape and dtype. Colour images are RGB(A);
        alpha is passed through untouched; gray is restored through RGB.
        Raises :class:`Cancelled` if ``cancel`` is set between two tiles.
        ``tile``: the largest tile for this call instead of the restorer's;
        ``whole``: one tile (:meth:`restore_whole`).
        """
        colour, alpha, gray = split_channels(image)
        height, width = colour.shape[:2]
        scale = _scale_of(image.dtype)
        padded, tiles, context = self.plan(height, width, tile, whole=whole)
        band = _Band(padded, tiles, self.overlap, context)
        out = np.empty(image.shape, image.dtype)

        def emit(rows: slice) -> None:
            """Write finished rows straight into the output, in the caller's pixel type,
            a few at a time so the float temporaries stay small even for a wide panorama."""
            for start in range(rows.start, rows.stop, EMIT_ROWS):
                chunk = slice(start, min(start + EMIT_ROWS, rows.stop))
                restored = band.finished(chunk, width)
                out[chunk] = merge_channels(restored, None if alpha is None else alpha[chunk], gray,
                                            image.dtype).reshape(out[chunk].shape)

        if progress:
            progress(0, len(tiles))
        done_rows = 0  # photo rows written to ``out``
        for done, tile in enumerate(tiles, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if tile.y != band.top:  # a new row of tiles: the rows above what it keeps are final
                final = min(max(tile.y, 0), height)  # canvas rows < tile.y + context: photo rows < tile.y
                emit(slice(done_rows, final))
                done_rows = max(done_rows, final)
                band.move_to(tile.y)
            patch = take_tile(colour, tile, context).astype(np.float32) / scale
            result = self.backend((tile.h, tile.w)).run(patch.transpose(2, 0, 1)[None])[0]
            band.add(tile, result.transpose(1, 2, 0))
            if progress:
                progress(done, len(tiles))
        emit(slice(done_rows, height))
        return out

    def restore_region(self, image: np.ndarray, box: tuple[int, int, int, int],
                       progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None, *,
                       first: tuple[float, float] | None = None,
                       partial: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
        """``restore(image)[y:y + h, x:x + w]`` for ``box`` = (x, y, w, h), computing only the
        tiles of the whole photo's plan that reach into the box: the same tiles on the same
        pixels, blended with the same weights and summed in the same order, so a preview of
        a region is what Apply writes there (bit for bit where the backend is deterministic).
        ``progress`` counts those tiles. ``first``: a photo point (x, y) whose tiles run
        first, nearest column first (the view's split line). ``partial(region, final)``:
        called after each tile that finishes some pixels, with the region so far and the
        h x w mask of its finished pixels (the rest is 0), for a view to stream them in."""
        x, y, w, h = box
        colour, alpha, gray = split_channels(image)
        height, width = colour.shape[:2]
        if not (0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height):
            raise ValueError(f"region {box} is not inside the {width} x {height} image")
        scale = _scale_of(image.dtype)
        padded, tiles, c = self.plan(height, width)
        row_weight, col_weight = grid_weight_sums(padded, tiles, self.overlap, c)
        weight = row_weight[y + c:y + h + c, None, None] * col_weight[None, x + c:x + w + c, None]

        def kept(tile) -> tuple[slice, slice]:
            """Where the tile has weight, inside the box (box coordinates; may be empty)."""
            return (slice(max(tile.y + c, y + c) - y - c, min(tile.y + tile.h - c, y + h + c) - y - c),
                    slice(max(tile.x + c, x + c) - x - c, min(tile.x + tile.w - c, x + w + c) - x - c))

        needed = [i for i, t in enumerate(tiles) if t.y + c < y + h + c and t.y + t.h - c > y + c
                  and t.x + c < x + w + c and t.x + t.w - c > x + c]
        order = list(needed)
        if first is not None:
            order.sort(key=lambda i: (abs(tiles[i].x + tiles[i].w / 2 - c - first[0]),
                                      abs(tiles[i].y + tiles[i].h / 2 - c - first[1])))
        pending = np.zeros((h, w), np.int16)  # tiles still to come, per pixel
        for i in needed:
            pending[kept(tiles[i])] += 1
        parts: dict[int, tuple] = {}  # plan index -> (box slices, weighted result there)

        def blended() -> np.ndarray:
            total = np.zeros((h, w, 3), np.float32)
            for i in sorted(parts):  # plan order: the full run's order of summing
                where, values = parts[i]
                total[where] += values
            return merge_channels(np.clip(total / weight, 0.0, 1.0),
                                  None if alpha is None else alpha[y:y + h, x:x + w], gray, image.dtype)

        if progress:
            progress(0, len(order))
        for done, i in enumerate(order, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            tile = tiles[i]
            patch = take_tile(colour, tile, c).astype(np.float32) / scale
            result = self.backend((tile.h, tile.w)).run(patch.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
            # the overlap of the tile and the box, in canvas coordinates: only it is weighted,
            # each pixel by the same float32 product of ramps as in the full run
            top, bottom = max(tile.y, y + c), min(tile.y + tile.h, y + h + c)
            left, right = max(tile.x, x + c), min(tile.x + tile.w, x + w + c)
            rows, cols = slice(top - tile.y, bottom - tile.y), slice(left - tile.x, right - tile.x)
            mask = blend_weights(tile, padded, self.overlap, c, rows, cols)
            parts[i] = ((slice(top - y - c, bottom - y - c), slice(left - x - c, right - x - c)),
                        result[rows, cols] * mask[..., None])
            pending[kept(tile)] -= 1
            if partial is not None and done < len(order):
                final = pending == 0
                if final.any():
                    region = blended()
                    region[~final] = 0
                    partial(region, final)
            if progress:
                progress(done, len(order))
        return blended()

    def restore_whole(self, image: np.ndarray, progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None) -> np.ndarray:
        """Restore ``image`` as one tile, whatever the tile setting: for previews, which are
        small, where tiles would only add overlap work and seams to blend. The tile is the
        image padded to multiples of 8 (:func:`whole_tile_shape`). ``cancel`` is checked
        before that one tile; once it runs, it runs to the end (the backends cannot be
        interrupted mid-tile), so a caller that must not use a result cancelled meanwhile
        checks the token again afterwards. Like every tile, it is framed by the context
        of reflection (:func:`whole_tile_shape`), so its border matches a tiled run's."""
        return self.restore(image, progress, cancel, whole=True)


class _Band:
    """The float accumulator for one row of tiles (the rows it keeps x canvas width x 3).

    The grid's blend weight is separable (a sum of ramps per axis), so only the
    results need a buffer: beyond the photo and its output, restoring holds one
    row of tiles in floats, whatever the photo's size; and only the rows the tiles
    keep, not their context (whose weight is 0). Columns are the canvas's (the photo
    framed by ``context``); rows are photo rows from ``top``, the photo row at which
    the current row of tiles starts keeping (its canvas row ``top + context``).
    """

    def __init__(self, padded: tuple[int, int], tiles: list, overlap: int, context: int = 0):
        self.height, self.overlap, self.padded, self.top = tiles[0].h - 2 * context, overlap, padded, 0
        self.context = context
        self.row_weight, self.col_weight = grid_weight_sums(padded, tiles, overlap, context)
        self.total = np.zeros((self.height, padded[1], 3), np.float32)

    def add(self, tile, result: np.ndarray) -> None:
        c = self.context
        mask = blend_weights(tile, self.padded, self.overlap, c, rows=slice(c, tile.h - c))[..., None]
        self.total[:, tile.x:tile.x + tile.w] += result[c:tile.h - c] * mask

    def finished(self, rows: slice, width: int) -> np.ndarray:
        """Blended float RGB in [0, 1] for photo ``rows`` (all above the current row's unfinished part)."""
        c = self.context
        local = self.total[rows.start - self.top:rows.stop - self.top, c:c + width]
        weight = (self.row_weight[rows.start + c:rows.stop + c, None, None]
                  * self.col_weight[None, c:c + width, None])
        restored = local / weight
        return np.clip(restored, 0.0, 1.0, out=restored)

    def move_to(self, top: int) -> None:
        """Shift the buffer down to the next row of tiles, which starts at canvas row ``top``
        (and keeps from photo row ``top``)."""
        keep = max(self.height - top + self.top, 0)  # rows the next row of tiles shares
        self.total[:keep] = self.total[self.height - keep:]  # numpy copes with the overlap
        self.total[keep:] = 0.0
        self.top = top


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


def downscaled_size(height: int, width: int, long_side: int = PREVIEW_LONG_SIDE) -> tuple[int, int]:
    """(height, width) of :func:`downscale`'s copy of a ``height`` x ``width`` image."""
    factor = long_side / max(height, width)
    if factor >= 1:
        return height, width
    return max(1, round(height * factor)), max(1, round(width * factor))


def downscale(image: np.ndarray, long_side: int = PREVIEW_LONG_SIDE) -> np.ndarray:
    """A copy with its long side at most ``long_side`` (area-averaged), for previews."""
    import cv2

    height, width = downscaled_size(*image.shape[:2], long_side)
    if (height, width) == image.shape[:2]:
        return image.copy()
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def whole_tile_shape(height: int, width: int, context: int = LIGHT_CONTEXT) -> tuple[int, int]:
    """The one tile :meth:`Restorer.restore_whole` runs for an image of this size: the
    image framed by ``context`` (the restorer's) and padded to multiples of 8."""
    return round_up(height + 2 * context), round_up(width + 2 * context)


def preview_tile_shape(height: int, width: int, long_side: int = PREVIEW_LONG_SIDE,
                       context: int = LIGHT_CONTEXT) -> tuple[int, int]:
    """The tile shape the preview of a ``height`` x ``width`` photo runs at: one tile of
    its downscaled copy. Warming it ahead of time (:meth:`Restorer.warm`) makes that
    preview compile nothing."""
    return whole_tile_shape(*downscaled_size(height, width, long_side), context)
