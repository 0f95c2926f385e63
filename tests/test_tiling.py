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


@pytest.mark.parametrize("length", [8, 64, 512, 520, 1000, 1024, 1504, 2000, 4000, 40000])
@pytest.mark.parametrize("max_size,overlap", [(512, 32), (256, 32), (64, 16)])
def test_each_axis_gets_the_fewest_tiles_sized_to_fit(length, max_size, overlap):
    from cmfnet_core.tiling import fit_axis

    size, offsets = fit_axis(length, max_size, overlap)
    count = len(offsets)
    assert size % 8 == 0 and size <= max_size and offsets[0] == 0 and offsets[-1] + size == length
    assert all(b - a <= size - overlap for a, b in zip(offsets, offsets[1:]))  # overlap kept
    # one tile fewer could not cover the axis, even at the largest size
    assert count == 1 or (count - 1) * max_size - (count - 2) * overlap < length
    # no wasted pixels: beyond the axis and its overlaps, only the rounding to 8
    assert count * size <= length + (count - 1) * overlap + 8 * count


@pytest.mark.parametrize("height,width,tile,most", [(1024, 1024, 512, 1.30), (720, 1280, 512, 1.15),
                                                     (3000, 4000, 512, 1.20), (340, 512, 256, 1.30)])
def test_pixels_computed_stay_close_to_the_photo(height, width, tile, most):
    """What was computed per photo pixel (it was 2.25 for 1024 x 1024 at 512, 1.71 for 1280 x 720)."""
    _, tiles = plan_tiles(height, width, tile=tile, overlap=32)
    assert sum(t.h * t.w for t in tiles) / (height * width) <= most


@pytest.mark.parametrize("height,width", [(1, 1), (3, 7), (61, 100), (8, 8), (100, 33)])
def test_a_tile_is_taken_as_if_the_photo_were_padded(height, width):
    from cmfnet_core.tiling import take_tile

    image = np.random.default_rng(height * width).integers(0, 255, (height, width, 3), dtype=np.uint8)
    padded, tiles = plan_tiles(height, width, tile=16, overlap=8)
    whole = pad_image(image, padded)
    for tile in tiles:
        assert np.array_equal(take_tile(image, tile), whole[tile.slices])


@pytest.mark.parametrize("context", [0, 16])
def test_the_blend_weights_of_the_grid_are_separable(context):
    from cmfnet_core.tiling import grid_weight_sums

    padded, tiles = plan_tiles(300, 700, tile=128, overlap=32, context=context)
    total = np.zeros(padded, np.float32)
    for tile in tiles:
        total[tile.slices] += blend_weights(tile, padded, 32, context)
    rows, cols = grid_weight_sums(padded, tiles, 32, context)
    assert np.allclose(total, np.outer(rows, cols), rtol=1e-6)
