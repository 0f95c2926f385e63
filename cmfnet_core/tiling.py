"""Tile geometry and feathered blending, as pure functions (no network).

A photo is cut into a grid of equal, overlapping tiles fitted to it: along
each axis the fewest tiles of at most the maximum size that cover it with the
overlap, each then shrunk to just what that takes (a multiple of 8) and spread
evenly. So every tile has the same shape (one compiled model serves them
all), and the pixels computed stay close to the photo's plus the overlaps.

Each tile carries ``context``: pixels on every side that the network sees but
whose results are thrown away, because a convolution network's output near
the edge of what it is given differs from its output with real pixels there
(measured in ``tests/bench/border_reach.py``: the bundled light networks
differ by more than a level up to about 30 px from the edge). The photo itself
is framed by ``context`` pixels of reflection on every side (the tiles live on
that *canvas*), so its own border is not a zero-padded edge either: no light
frame. Only inside the kept part do neighbours blend, with linear ramps over
``overlap`` pixels, hiding the little that remains. The blend weights are
separable (one ramp per axis), which lets the engine finish the photo one row
of tiles at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SettingsError
from .i18n import _

MULTIPLE = 8  # the network needs multiples of 4; the official demo pads to 8


def round_up(value: int, multiple: int = MULTIPLE) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """A window of the padded image: rows ``y:y+h``, columns ``x:x+w``."""

    y: int
    x: int
    h: int
    w: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


def fit_axis(length: int, max_size: int, overlap: int) -> tuple[int, list[int]]:
    """Tile size and start offsets along one axis of ``length`` (a multiple of 8).

    The fewest tiles of at most ``max_size`` that cover ``length`` with
    neighbours sharing at least ``overlap``; their size is the smallest
    multiple of 8 that still does, and the starts are spread evenly.
    """
    if length <= max_size:
        return length, [0]
    count = -(-(length - overlap) // (max_size - overlap))
    size = min(max_size, round_up(-(-(length + (count - 1) * overlap) // count)))
    span = length - size
    return size, [i * span // (count - 1) for i in range(count)]


def fit_context(tile: int, overlap: int, context: int) -> int:
    """The context a tile of at most ``tile`` pixels carries: ``context``, but never more
    than a quarter of what the blend leaves (so neighbouring tiles still advance by at
    least half of that), rounded down to a multiple of 8. Only tiles far below the
    automatic size are cut short: the light networks' 48 px fit tiles from 208 px."""
    return max(0, min(context, (tile - overlap) // 4)) // MULTIPLE * MULTIPLE


def plan_tiles(height: int, width: int, tile: int, overlap: int,
               context: int = 0) -> tuple[tuple[int, int], list[Tile]]:
    """Canvas size and the tiles covering it, row by row (top to bottom).

    The canvas is the photo framed by ``context`` pixels on every side (so photo
    pixel (r, c) is canvas pixel (r + context, c + context)), then padded at the
    bottom and right to a multiple of 8. ``tile`` is the largest tile side allowed;
    neighbouring tiles share ``2 * context + overlap`` pixels, so the parts they keep
    (all but ``context`` on every side) still share ``overlap`` to blend over.
    ``context`` must fit the tile (:func:`fit_context`).
    """
    if tile % MULTIPLE or overlap % MULTIPLE or context % MULTIPLE:
        raise SettingsError(_("tile ({tile}), overlap ({overlap}) and context ({context}) must be "
                              "multiples of {multiple}").format(tile=tile, overlap=overlap,
                                                                context=context, multiple=MULTIPLE))
    if not 0 <= overlap < tile:
        raise SettingsError(_("overlap ({overlap}) must be smaller than the tile ({tile})").format(
            overlap=overlap, tile=tile))
    if context < 0 or tile - 2 * context - overlap < MULTIPLE:
        raise SettingsError(_("context ({context}) does not fit a tile of {tile} with overlap "
                              "{overlap}").format(context=context, tile=tile, overlap=overlap))
    padded_h, padded_w = round_up(height + 2 * context), round_up(width + 2 * context)
    tile_h, ys = fit_axis(padded_h, tile, 2 * context + overlap)
    tile_w, xs = fit_axis(padded_w, tile, 2 * context + overlap)
    return (padded_h, padded_w), [Tile(y, x, tile_h, tile_w) for y in ys for x in xs]


def _ramp(length: int, fade_start: int, fade_end: int) -> np.ndarray:
    """1 in the middle; linear fades of the given widths at each end (never 0)."""
    weights = np.ones(length, np.float32)
    if fade_start:
        weights[:fade_start] = (np.arange(fade_start, dtype=np.float32) + 1) / (fade_start + 1)
    if fade_end:
        weights[length - fade_end:] = (np.arange(fade_end, 0, -1, dtype=np.float32)) / (fade_end + 1)
    return weights


def axis_ramp(start: int, size: int, length: int, overlap: int, context: int = 0) -> np.ndarray:
    """One tile's weights along one axis: 0 over the ``context`` at each end (seen, not
    kept), fades over ``overlap`` only on the sides shared with a neighbour."""
    weights = np.zeros(size, np.float32)
    weights[context:size - context] = _ramp(size - 2 * context, overlap if start > 0 else 0,
                                            overlap if start + size < length else 0)
    return weights


def blend_weights(tile: Tile, padded: tuple[int, int], overlap: int, context: int = 0,
                  rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """Feathering mask (h x w) for a tile: 0 on its context, fades only towards neighbours.
    ``rows``, ``cols``: only that part of it (tile coordinates), the same values."""
    return np.outer(axis_ramp(tile.y, tile.h, padded[0], overlap, context)[rows],
                    axis_ramp(tile.x, tile.w, padded[1], overlap, context)[cols])


def axis_weight_sums(starts: list[int], size: int, length: int, overlap: int,
                     context: int = 0) -> np.ndarray:
    """Sum of the tiles' ramps along one axis; the grid's total weight is the outer product."""
    total = np.zeros(length, np.float32)
    for start in starts:
        total[start:start + size] += axis_ramp(start, size, length, overlap, context)
    return total


def grid_weight_sums(padded: tuple[int, int], tiles: list[Tile], overlap: int,
                     context: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns): :func:`axis_weight_sums` of a plan's grid along each axis of the
    canvas; the total weight at canvas pixel (r, c) is ``rows[r] * columns[c]``."""
    first = tiles[0]
    return (axis_weight_sums(sorted({t.y for t in tiles}), first.h, padded[0], overlap, context),
            axis_weight_sums(sorted({t.x for t in tiles}), first.w, padded[1], overlap, context))


def reflect_indices(start: int, stop: int, length: int) -> np.ndarray:
    """Indices ``start:stop`` into an axis of ``length``, mirrored past its end like
    ``np.pad(mode="reflect")`` (``symmetric`` for a 1-pixel axis, which has nothing to mirror)."""
    index = np.arange(start, stop)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = index % period
    return np.where(index < length, index, period - index)


def take_tile(image: np.ndarray, tile: Tile, context: int = 0) -> np.ndarray:
    """The tile's pixels of an H x W x C image on a canvas framed by ``context`` pixels,
    reflected where the tile passes the photo's border: the same as
    ``pad_image(image, padded, context)[tile.slices]``, without a padded copy of the photo."""
    height, width = image.shape[:2]
    y, x = tile.y - context, tile.x - context
    if y >= 0 and x >= 0 and y + tile.h <= height and x + tile.w <= width:
        return image[y:y + tile.h, x:x + tile.w]
    rows = reflect_indices(y, y + tile.h, height)
    cols = reflect_indices(x, x + tile.w, width)
    return image[np.ix_(rows, cols)]


def pad_image(image: np.ndarray, padded: tuple[int, int], context: int = 0) -> np.ndarray:
    """Reflect-pad an H x W x C image by ``context`` on every side, then at the bottom and
    right to ``padded`` (the canvas of :func:`plan_tiles`)."""
    rows = reflect_indices(-context, padded[0] - context, image.shape[0])
    cols = reflect_indices(-context, padded[1] - context, image.shape[1])
    return image[np.ix_(rows, cols)]
