"""The engine: numpy image in, numpy image out, tile by tile, cancellable."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from cmfnet_core.engine import Cancelled, CancelToken, Restorer
from cmfnet_core.weights import WeightsError
from tests.conftest import psnr


@pytest.fixture(scope="module")
def whole_restorer(small_weights):
    """One tile holds the whole test image: the reference for tiled runs."""
    return Restorer("deblur", small_weights, tile=256, overlap=32, backend="paddle")


@pytest.fixture(scope="module")
def smooth_image():
    yy, xx = np.mgrid[0:128, 0:192]
    return np.stack([128 + 60 * np.sin(xx / 40), 128 + 60 * np.cos(yy / 30),
                     128 + 40 * np.sin((xx + yy) / 50)], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def textured_image():
    import cv2

    from tests.conftest import SAMPLES

    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "deblur_1.png")), cv2.COLOR_BGR2RGB)
    return image[100:228, 200:392].copy()


@pytest.mark.parametrize("name", ["smooth_image", "textured_image"])
def test_tiled_output_agrees_with_whole_image(request, small_weights, whole_restorer, name):
    image = request.getfixturevalue(name)
    tiled = Restorer("deblur", small_weights, tile=96, overlap=32, backend="paddle")
    # random "strong" conformance weights exaggerate tile-border effects; trained ones agree better
    assert psnr(whole_restorer.restore(image), tiled.restore(image), peak=255) > 30


def test_whole_image_path_equals_the_network(small_weights, conformance_dir):
    """A single-tile restore without the framing context is exactly the official forward,
    clamped and quantised."""
    x = np.load(conformance_dir / "input_deblur1_crop_1x3x128x128.npy")
    expected = np.clip(np.load(conformance_dir / "small_out0_deblur1_crop_1x3x128x128.npy"), 0, 1)
    image = np.rint(x[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    out = Restorer("deblur", small_weights, tile=256, overlap=32, backend="paddle", context=0).restore(image)
    assert np.abs(out.astype(np.float32) / 255 - expected[0].transpose(1, 2, 0)).max() <= 1 / 255 + 1e-4


def test_restore_whole_is_one_tile_whatever_the_tile_setting(small_restorer, whole_restorer, photo_rgb):
    """Previews run in one pass: small_restorer's tile of 64 would cut this crop into 6."""
    calls = []
    out = small_restorer.restore_whole(photo_rgb, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 1), (1, 1)]
    assert np.array_equal(out, whole_restorer.restore(photo_rgb))


def test_progress_is_reported_per_tile_in_order(small_restorer, photo_rgb):
    calls = []
    small_restorer.restore(photo_rgb, progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert total > 1
    assert calls == [(i, total) for i in range(total + 1)]


def test_output_is_deterministic(small_restorer, photo_rgb):
    assert np.array_equal(small_restorer.restore(photo_rgb), small_restorer.restore(photo_rgb))


def test_cancel_stops_between_tiles(small_restorer, photo_rgb):
    token = CancelToken()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        small_restorer.restore(photo_rgb, progress=progress, cancel=token)
    assert seen == [0, 1]


def test_cancel_from_another_thread_during_a_restore(small_restorer, photo_rgb):
    """As the app does: the GUI thread cancels while a worker thread is inside ``restore``."""
    token = CancelToken()
    first_tile_done = threading.Event()

    def canceller():
        if first_tile_done.wait(timeout=120):  # a hang guard only: the restore signals it
            token.cancel()

    thread = threading.Thread(target=canceller)
    thread.start()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 1:
            # a handshake, not a timer: hold the restore here until the other thread has cancelled
            first_tile_done.set()
            thread.join(timeout=120)

    try:
        with pytest.raises(Cancelled):
            small_restorer.restore(photo_rgb, progress=progress, cancel=token)
    finally:
        first_tile_done.set()  # never leave the canceller waiting if restore failed early
        thread.join()
    planned = seen[0][1]
    assert planned > 1 and token.cancelled
    assert max(done for done, _ in seen) < planned  # stopped part way, not after the last tile


def test_sixteen_bit_stays_sixteen_bit(small_restorer, photo_rgb):
    image16 = photo_rgb.astype(np.uint16) * 257 + 100
    out = small_restorer.restore(image16)
    assert out.dtype == np.uint16 and out.shape == image16.shape
    assert np.any(out % 257 != 0)  # not an 8-bit round trip
    out8 = small_restorer.restore(photo_rgb)
    assert np.abs(out.astype(np.float64) / 65535 - out8.astype(np.float64) / 255).mean() < 0.01


def test_alpha_passes_through_untouched(small_restorer, photo_rgb):
    alpha = np.linspace(0, 255, photo_rgb.shape[1], dtype=np.uint8)[None].repeat(photo_rgb.shape[0], 0)
    rgba = np.dstack([photo_rgb, alpha])
    out = small_restorer.restore(rgba)
    assert out.shape == rgba.shape
    assert np.array_equal(out[..., 3], alpha)
    assert np.array_equal(out[..., :3], small_restorer.restore(photo_rgb))


def test_gray_in_gray_out(small_restorer, photo_rgb):
    gray = photo_rgb[..., 1].copy()
    out = small_restorer.restore(gray)
    assert out.shape == gray.shape and out.dtype == np.uint8
    gray_alpha = np.dstack([gray, np.full_like(gray, 200)])
    assert np.array_equal(small_restorer.restore(gray_alpha)[..., 1], gray_alpha[..., 1])


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 7, 3), (9, 300, 3)])
def test_tiny_and_thin_images(small_restorer, shape):
    image = np.full(shape, 128, np.uint8)
    assert small_restorer.restore(image).shape == shape


def test_bad_arrays_are_refused(small_restorer):
    with pytest.raises(ValueError, match="H x W"):
        small_restorer.restore(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="unsupported pixel type"):
        small_restorer.restore(np.zeros((4, 4, 3), np.int32))


def test_no_weights_installed_says_how_to_get_them(monkeypatch, tmp_path):
    import cmfnet_core.weights as weights

    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path / "none")
    with pytest.raises(WeightsError, match="cmfnet weights import dehaze"):
        Restorer("dehaze")


def test_weights_for_another_task_are_refused(tmp_path, small_weights):
    from cmfnet_core.weights import read_weights, save_weights

    path = save_weights(read_weights(small_weights), tmp_path / "d.pdparams", task="dehaze", provenance={})
    with pytest.raises(WeightsError, match="dehaze weights, not deblur"):
        Restorer("deblur", path, backend="paddle")


def test_local_statistics_use_a_window_smaller_than_the_tile(small_weights, smooth_image):
    """With a window, channel attention no longer pools the whole tile: the output changes,
    and tiled and whole-image runs still agree."""
    plain = Restorer("deblur", small_weights, tile=256, overlap=32, backend="paddle")
    local = Restorer("deblur", small_weights, tile=256, overlap=32, backend="paddle", local_stats=32)
    local_tiled = Restorer("deblur", small_weights, tile=96, overlap=32, backend="paddle", local_stats=32)
    assert local.local_window == 32
    assert not np.array_equal(plain.restore(smooth_image), local.restore(smooth_image))
    assert psnr(local.restore(smooth_image), local_tiled.restore(smooth_image), peak=255) > 30


# --- which backends a restore builds -----------------------------------------------------

@pytest.mark.parametrize("photo", [(1, 1), (3, 7), (72, 100), (511, 513), (600, 800), (3000, 4000),
                                   (5472, 3648), (200, 40_000)])
def test_preview_tile_shape_is_the_shape_a_preview_runs_at(fake_backends, small_weights, photo):
    from cmfnet_core.engine import downscale, preview_tile_shape

    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="openvino")
    restorer.restore_whole(downscale(np.zeros((*photo, 3), np.uint8)))
    assert fake_backends.built == fake_backends.ran == [preview_tile_shape(*photo)]


def test_after_warming_a_shape_restoring_it_builds_nothing(fake_backends, small_weights):
    from cmfnet_core.engine import whole_tile_shape

    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="openvino")
    first, second = whole_tile_shape(380, 505, restorer.context), whole_tile_shape(344, 512, restorer.context)
    restorer.warm([first, second, first])
    assert fake_backends.built == fake_backends.ran == [first, second]  # each once
    restorer.restore_whole(np.zeros((380, 505, 3), np.uint8))
    restorer.restore_whole(np.zeros((344, 512, 3), np.uint8))
    assert fake_backends.built == [first, second]


def test_warming_stops_between_shapes_when_cancelled(fake_backends, small_weights):
    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="openvino")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        restorer.warm([(384, 512)], cancel=token)
    assert fake_backends.built == []


def test_a_backend_that_runs_any_shape_is_built_and_warmed_once(fake_backends, small_weights):
    """Paddle runs every shape with one network: one backend, however many shapes, warmed
    on one small tile (nothing is compiled per shape)."""
    from cmfnet_core.engine import WARM_TILE

    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="paddle")
    restorer.warm([(384, 512), (512, 384)])
    assert fake_backends.ran == [(WARM_TILE, WARM_TILE)]
    restorer.restore(np.zeros((100, 130, 3), np.uint8))
    restorer.restore_whole(np.zeros((40, 48, 3), np.uint8))
    assert len(fake_backends.built) == 1


def test_backends_built_per_shape_are_kept_for_the_last_few_shapes(fake_backends, small_weights):
    """Each holds a compiled model: memory must not grow with every new photo shape."""
    from cmfnet_core.engine import KEEP_BACKENDS, whole_tile_shape

    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="openvino")
    shapes = [(8 * (i + 1), 16) for i in range(KEEP_BACKENDS + 1)]
    built = [whole_tile_shape(*shape, restorer.context) for shape in shapes]
    for shape in shapes[:KEEP_BACKENDS]:
        restorer.restore_whole(np.zeros((*shape, 3), np.uint8))
    restorer.restore_whole(np.zeros((*shapes[0], 3), np.uint8))  # used again: the most recent now
    restorer.restore_whole(np.zeros((*shapes[-1], 3), np.uint8))  # one too many: shapes[1] goes
    assert fake_backends.built == built
    restorer.restore_whole(np.zeros((*shapes[0], 3), np.uint8))
    restorer.restore_whole(np.zeros((*shapes[1], 3), np.uint8))
    assert fake_backends.built == [*built, built[1]]
    assert len(restorer._backends) == KEEP_BACKENDS
