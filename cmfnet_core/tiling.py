"""Tile geometry and feathered blending, as pure functions (no network).

A photo is cut into equal, overlapping tiles; the last tile of a row or
column is shifted back to end at the border, so every tile has the same
shape (one compiled model serves them all) and no tile reaches outside the
(padded) image. Overlaps are blended with linear ramps, so no seam shows even
though CMFNet's channel attention makes each tile's output depend slightly on
the whole tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``size`` covering ``length`` with at least ``overlap``."""
    if size >= length:
        return [0]
    step = size - overlap
    offsets = list(range(0, length - size, step))
    offsets.append(length - size)
    return offsets


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> tuple[tuple[int, int], list[Tile]]:
    """Padded image size and the tiles covering it.

    The image is padded to a multiple of 8 (never less than that), and each
    tile side is ``tile`` or the padded side, whichever is smaller.
    """
    if tile % MULTIPLE or overlap % MULTIPLE:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {MULTIPLE}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    padded_h, padded_w = round_up(height), round_up(width)
    tile_h, tile_w = min(tile, padded_h), min(tile, padded_w)
    tiles = [Tile(y, x, tile_h, tile_w)
             for y in starts(padded_h, tile_h, overlap)
             for x in starts(padded_w, tile_w, overlap)]
    return (padded_h, padded_w), tiles


def _ramp(length: int, fade_start: int, fade_end: int) -> np.ndarray:
    """1 in the middle; linear fades of the given widths at each end (never 0)."""
    weights = np.ones(length, np.float32)
    if fade_start:
        weights[:fade_start] = (np.arange(fade_start, dtype=np.float32) + 1) / (fade_start + 1)
    if fade_end:
        weights[length - fade_end:] = (np.arange(fade_end, 0, -1, dtype=np.float32)) / (fade_end + 1)
    return weights


def blend_weights(tile: Tile, padded: tuple[int, int], overlap: int) -> np.ndarray:
    """Feathering mask (h x w) for a tile: fades only on sides shared with a neighbour."""
    padded_h, padded_w = padded
    top = overlap if tile.y > 0 else 0
    bottom = overlap if tile.y + tile.h < padded_h else 0
    left = overlap if tile.x > 0 else 0
    right = overlap if tile.x + tile.w < padded_w else 0
    return np.outer(_ramp(tile.h, top, bottom), _ramp(tile.w, left, right))


def pad_image(image: np.ndarray, padded: tuple[int, int]) -> np.ndarray:
    """Reflect-pad an H x W x C image at the bottom and right to ``padded``."""
    pad_h, pad_w = padded[0] - image.shape[0], padded[1] - image.shape[1]
    if pad_h == 0 and pad_w == 0:
        return image
    # 'symmetric' works for any size, even a 1-pixel image, where 'reflect' has nothing to mirror
    mode = "reflect" if min(image.shape[:2]) > 1 else "symmetric"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
