"""Measures of how faithful a tiled restoration is: to the same photo restored as one
tile (PSNR, the worst row or column), and at the photo's own border (the frame).

Shared by the tests and ``tests/bench/tiling_agreement.py``; plain numpy, 8-bit levels.
"""
from __future__ import annotations

import numpy as np

FRAME_OUTER = 6  # px: the outer band, where a zero-padded network changes the photo less
FRAME_INNER = (24, 48)  # px from the border: the band it is compared with


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """In dB, of 8-bit levels (the project's one PSNR, training.metrics.psnr)."""
    from .training.metrics import psnr as _psnr

    return _psnr(a, b, peak)


def worst_line(a: np.ndarray, b: np.ndarray) -> float:
    """The largest mean difference (levels, signed mean over the line, then absolute) of any
    row or column: a seam shows as a line whose mean is off, even where PSNR is high."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    return float(max(np.abs(diff.mean(axis=1)).max(), np.abs(diff.mean(axis=0)).max()))


def frame_sides(original: np.ndarray, restored: np.ndarray) -> list[float]:
    """For the top, bottom, left and right side: how much less the restoration changes the
    photo in its outer :data:`FRAME_OUTER` pixels than in the band :data:`FRAME_INNER`
    inside (levels of mean absolute change; positive: the border is left lighter, a frame).
    Content alone makes these differ by a few levels (a sky at the top); a network that
    sees zeros beyond the border made them about 8-12 levels."""
    change = np.abs(np.asarray(restored, np.float64) - np.asarray(original, np.float64))
    if change.ndim == 3:
        change = change.mean(axis=2)
    inner0, inner1 = FRAME_INNER
    sides = (change, change[::-1], change.T, change.T[::-1])
    return [float(side[inner0:inner1, inner1:-inner1].mean() - side[:FRAME_OUTER, inner1:-inner1].mean())
            for side in sides]


def frame(original: np.ndarray, restored: np.ndarray) -> float:
    """The worst side of :func:`frame_sides`: the light frame, in levels."""
    return max(frame_sides(original, restored))
