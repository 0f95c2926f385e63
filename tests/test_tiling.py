"""Tile geometry, as pure functions: every pixel covered, equal tiles, positive blend weights."""
from __future__ import annotations

import numpy as np
import pytest

from cmfnet_core.tiling import blend_weights, pad_image, plan_tiles


@pytest.mark.parametrize("height,width", [(1, 1), (3, 7), (72, 100), (256, 256), (300, 1000), (200, 40000)])
def test_tiles_cover_the_padded_image_with_equal_shapes(height, width):
    padded, tiles = plan_tiles(height, width, tile=256, overlap=32)
    assert padded[0] % 8 == 0 and padded[1] % 8 == 0
    assert padded[0] >= height and padded[1] >= width
    coverage = np.zeros(padded, np.int32)
    for tile in tiles:
        coverage[tile.slices] += 1
    assert coverage.min() >= 1
    assert len({(t.h, t.w) for t in tiles}) == 1
    assert all(t.y + t.h <= padded[0] and t.x + t.w <= padded[1] for t in tiles)


def test_neighbouring_tiles_overlap_by_at_least_the_overlap():
    _, tiles = plan_tiles(64, 600, tile=256, overlap=32)
    xs = sorted(t.x for t in tiles)
    assert all(b - a <= 256 - 32 for a, b in zip(xs, xs[1:]))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiples of 8"):
        plan_tiles(100, 100, tile=250, overlap=32)
    with pytest.raises(ValueError, match="smaller than the tile"):
        plan_tiles(100, 100, tile=64, overlap=64)


def test_blend_weights_fade_only_towards_neighbours():
    padded, tiles = plan_tiles(64, 200, tile=64, overlap=16)
    first, last = tiles[0], tiles[-1]
    w_first = blend_weights(first, padded, 16)
    w_last = blend_weights(last, padded, 16)
    assert (w_first > 0).all() and (w_last > 0).all()
    assert w_first[:, 0].min() == 1.0 and w_first[:, -1].max() < 1.0   # image border: no fade
    assert w_last[:, -1].min() == 1.0 and w_last[:, 0].max() < 1.0


def test_padding_reflects_and_works_for_a_single_pixel():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    padded = pad_image(image, (8, 8))
    assert padded.shape == (8, 8, 3) and np.array_equal(padded[:2, :2], image)
    assert pad_image(np.ones((1, 1, 3), np.uint16), (8, 8)).shape == (8, 8, 3)
