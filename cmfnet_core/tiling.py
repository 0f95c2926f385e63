"""Tile geometry and feathered blending, as pure functions (no network).

A photo is cut into a grid of equal, overlapping tiles fitted to it: along
each axis the fewest tiles of at most the maximum size that cover it with the
overlap, each then shrunk to just what that takes (a multiple of 8) and spread
evenly. So every tile has the same shape (one compiled model serves them
all), no tile reaches outside the (padded) image, and the pixels computed
stay close to the photo's plus the overlaps (a 1024-pixel side at tile 512 is
3 tiles of 368, not 3 of 512). Overlaps are blended with linear ramps, so no
seam shows even though CMFNet's channel attention makes each tile's output
depend slightly on the whole tile. The blend weights are separable (one ramp
per axis), which lets the engine finish the photo one row of tiles at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SettingsError

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


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> tuple[tuple[int, int], list[Tile]]:
    """Padded image size and the tiles covering it, row by row (top to bottom).

    The image is padded to a multiple of 8 (never less than that); ``tile`` is
    the largest tile side allowed.
    """
    if tile % MULTIPLE or overlap % MULTIPLE:
        raise SettingsError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {MULTIPLE}")
    if not 0 <= overlap < tile:
        raise SettingsError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    padded_h, padded_w = round_up(height), round_up(width)
    tile_h, ys = fit_axis(padded_h, tile, overlap)
    tile_w, xs = fit_axis(padded_w, tile, overlap)
    return (padded_h, padded_w), [Tile(y, x, tile_h, tile_w) for y in ys for x in xs]


def _ramp(length: int, fade_start: int, fade_end: int) -> np.ndarray:
    """1 in the middle; linear fades of the given widths at each end (never 0)."""
    weights = np.ones(length, np.float32)
    if fade_start:
        weights[:fade_start] = (np.arange(fade_start, dtype=np.float32) + 1) / (fade_start + 1)
    if fade_end:
        weights[length - fade_end:] = (np.arange(fade_end, 0, -1, dtype=np.float32)) / (fade_end + 1)
    return weights


def axis_ramp(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    """One tile's weights along one axis: fades only on the sides shared with a neighbour."""
    return _ramp(size, overlap if start > 0 else 0, overlap if start + size < length else 0)


def blend_weights(tile: Tile, padded: tuple[int, int], overlap: int) -> np.ndarray:
    """Feathering mask (h x w) for a tile: fades only on sides shared with a neighbour."""
    return np.outer(axis_ramp(tile.y, tile.h, padded[0], overlap),
                    axis_ramp(tile.x, tile.w, padded[1], overlap))


def axis_weight_sums(starts: list[int], size: int, length: int, overlap: int) -> np.ndarray:
    """Sum of the tiles' ramps along one axis; the grid's total weight is the outer product."""
    total = np.zeros(length, np.float32)
    for start in starts:
        total[start:start + size] += axis_ramp(start, size, length, overlap)
    return total


def reflect_indices(start: int, stop: int, length: int) -> np.ndarray:
    """Indices ``start:stop`` into an axis of ``length``, mirrored past its end like
    ``np.pad(mode="reflect")`` (``symmetric`` for a 1-pixel axis, which has nothing to mirror)."""
    index = np.arange(start, stop)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = index % period
    return np.where(index < length, index, period - index)


def take_tile(image: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile's pixels of an H x W x C image, reflect-padded where the tile passes the
    bottom/right border: the same as ``pad_image(image, padded)[tile.slices]``, without
    a padded copy of the whole photo."""
    height, width = image.shape[:2]
    if tile.y + tile.h <= height and tile.x + tile.w <= width:
        return image[tile.slices]
    rows = reflect_indices(tile.y, tile.y + tile.h, height)
    cols = reflect_indices(tile.x, tile.x + tile.w, width)
    return image[np.ix_(rows, cols)]


def pad_image(image: np.ndarray, padded: tuple[int, int]) -> np.ndarray:
    """Reflect-pad an H x W x C image at the bottom and right to ``padded``."""
    pad_h, pad_w = padded[0] - image.shape[0], padded[1] - image.shape[1]
    if pad_h == 0 and pad_w == 0:
        return image
    # 'symmetric' works for any size, even a 1-pixel image, where 'reflect' has nothing to mirror
    mode = "reflect" if min(image.shape[:2]) > 1 else "symmetric"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
