"""Tiled restoration is faithful: it agrees with the photo restored as one tile (no seams),
the photo's border is not left lighter than its inside (no frame), and one automatic
tile choice serves every front end.

Figures are 8-bit levels and dB, measured by ``cmfnet_core.agreement``. The tests use the
bundled light dehaze weights on a real hazy photo: a crop of a bundled sample by default,
the 1-MP photo of the issue's target (``../shared``, marker ``data``) and the full-size
network behind the ``slow`` marker.
"""
from __future__ import annotations

import numpy as np
import pytest

from cmfnet_core.agreement import frame, psnr, worst_line
from cmfnet_core.bundled import SAMPLES
from cmfnet_core.engine import Restorer, auto_tile, context_for
from tests.conftest import SHARED

ONE_MP = SHARED / "data" / "real" / "haze" / "dpzhu_softmatting_11.jpg"  # 1024 x 768, never trained on


def real_photo(path=ONE_MP) -> np.ndarray:
    from cmfnet_core.imageio import read_image

    return read_image(path).pixels[..., :3]


@pytest.fixture(scope="module")
def hazy_crop() -> np.ndarray:
    """A 352 x 480 part of a real hazy photo (the bundled sample haze_3: trees in fog), quick,
    and cut by a 256 tile into several. The old code (32 px overlap, zero-padded tile edges)
    gave 42.5 dB, a column 7.4 levels off and a 9.5-level frame on it."""
    return real_photo(SAMPLES / "haze_3.jpg")[124:476, 160:640].copy()


def light(**options) -> Restorer:
    return Restorer("dehaze", backend="openvino", precision="fp32", **options)


@pytest.fixture(scope="module")
def one_tile(hazy_crop) -> np.ndarray:
    return light().restore_whole(hazy_crop)


# --- seams -------------------------------------------------------------------------------

@pytest.mark.parametrize("tile", [0, 256, 208])
def test_tiles_agree_with_the_one_tile_restoration(hazy_crop, one_tile, tile):
    """Old code (32 px overlap, zero-padded tile edges) at tile 256: about 37 dB and rows or
    columns off by many levels on a real photo."""
    tiled = light(tile=tile).restore(hazy_crop)
    assert psnr(tiled, one_tile) >= 45
    assert worst_line(tiled, one_tile) <= 1.0


def test_each_tile_keeps_only_what_lies_beyond_its_context(fake_backends, small_weights):
    """The identity network makes the blend visible: the photo comes back exactly, and
    every tile is run on real (or reflected) pixels ``context`` wide around what it keeps."""
    from cmfnet_core.tiling import axis_ramp, fit_context

    restorer = Restorer("deblur", small_weights, tile=128, overlap=16, backend="paddle")
    image = np.random.default_rng(3).integers(0, 256, (150, 230, 3), dtype=np.uint8)
    assert np.array_equal(restorer.restore(image), image)
    padded, tiles, context = restorer.plan(150, 230)
    assert restorer.context == context_for(restorer.weights.config)
    assert context == fit_context(128, 16, restorer.context) > 0
    for tile in tiles:
        ramp = axis_ramp(tile.x, tile.w, padded[1], 16, context)
        assert not ramp[:context].any() and not ramp[tile.w - context:].any() and ramp[context:-context].all()


def test_the_context_is_what_the_network_needs_where_the_tile_allows():
    from cmfnet_core.network_config import Config
    from cmfnet_core.tiling import fit_context

    light_config, full = Config(n_feat=24, scale_unetfeats=12), Config()
    assert context_for(light_config) == 48 and context_for(full) == 64
    assert fit_context(auto_tile(light_config), 16, 48) == 48 and fit_context(auto_tile(full), 16, 64) == 64
    assert fit_context(256, 16, 48) == 48 and fit_context(64, 16, 48) == 8  # small tiles: a quarter


# --- the photo's own border ------------------------------------------------------------

def test_the_border_is_not_left_lighter_than_the_inside(hazy_crop, one_tile):
    """Zeros beyond the border (old code) left the outer 6 px about 8-12 levels less
    changed than the band 24-48 px inside; the reflection each tile is framed by does not."""
    assert frame(hazy_crop, one_tile) <= 3
    assert frame(hazy_crop, light(tile=256).restore(hazy_crop)) <= 3


# --- one automatic tile ------------------------------------------------------------------

def test_one_automatic_tile_for_the_cli_the_app_gimp_and_right_click(small_weights):
    from cmfnet_core.cli import build_parser
    from cmfnet_core.weights import read_weights, resolve_weights
    from plugin.app.jobs import EngineOptions

    config = read_weights(resolve_weights("dehaze")).config
    assert Restorer("dehaze").tile == auto_tile(config) == 768
    assert Restorer("dehaze", tile=0).tile == auto_tile(config)
    args = build_parser(["restore", "x.jpg"]).parse_args(["restore", "x.jpg"])
    assert args.tile is None  # the CLI (and right-click and GIMP's tile 0, which run it) leave it to the engine
    assert EngineOptions().tile == 0  # the app's default: automatic
    assert Restorer("dehaze", **EngineOptions().restorer_kwargs()).tile == auto_tile(config)


def test_preferences_show_the_automatic_tile(qtbot):
    from plugin.app.jobs import EngineOptions
    from plugin.app.preferences import PreferencesDialog

    dialog = PreferencesDialog(EngineOptions())
    qtbot.addWidget(dialog)
    assert dialog.tile.text() == "automatic"
    assert dialog.options().tile == 0
    dialog.tile.setValue(300)
    assert dialog.options().tile == 296


# --- local statistics ---------------------------------------------------------------------

def test_local_statistics_run_in_int8(small_weights, photo_rgb):
    """--local-stats with int8 failed: "the fp32 models differ in structure"."""
    pytest.importorskip("nncf")
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.backends.quantize import RECIPE
    from cmfnet_core.weights import read_weights, resolve_weights

    weights = read_weights(resolve_weights("dehaze"))
    tiny = RECIPE.replace(crops=4, crop=64)
    for shape in ((64, 64), (96, 128)):  # no larger than the window, and larger
        backend = OpenVINOBackend(weights, precision="int8", tile_shape=shape, recipe=tiny, local_window=64)
        out = backend.run(np.full((1, 3, *shape), 0.5, np.float32))
        assert backend.precision == "int8" and np.isfinite(out).all()


# --- slow: the done-when figures on a real 1-MP photo, and a full-size network ----------

@pytest.mark.slow
@pytest.mark.data
def test_a_real_1mp_photo_tiled_agrees_with_one_tile_and_has_no_frame():
    photo = real_photo()
    whole = light().restore_whole(photo)
    assert frame(photo, whole) <= 3
    for tile, least in ((0, 45), (256, 42)):
        tiled = light(tile=tile).restore(photo)
        assert psnr(tiled, whole) >= least, tile
        assert worst_line(tiled, whole) <= 2, tile
        assert frame(photo, tiled) <= 3, tile


@pytest.mark.slow
def test_a_full_size_network_tiled_agrees_with_one_tile(tmp_path):
    from cmfnet_core.bench import _random_weights
    from cmfnet_core.weights import save_weights

    path = save_weights(_random_weights("full"), tmp_path / "full.pdparams", task="dehaze",
                        provenance={"kind": "test", "weights": "random, PyTorch's default init"})
    photo = real_photo(SAMPLES / "haze_3.jpg")[100:452, 160:640]
    restorer = Restorer("dehaze", path, backend="openvino", precision="fp32")
    whole = restorer.restore_whole(photo)
    tiled = Restorer("dehaze", path, tile=320, backend="openvino", precision="fp32").restore(photo)
    assert psnr(tiled, whole) >= 42
    assert worst_line(tiled, whole) <= 2


# --- a region is what the whole photo's restoration has there ---------------------------

@pytest.mark.parametrize("box", [(0, 0, 40, 30), (37, 21, 50, 40), (60, 40, 40, 32), (0, 0, 100, 72)])
def test_a_region_is_restored_exactly_as_the_whole_photo_there(small_weights, photo_rgb, box):
    """Only the tiles reaching into the region run, on the same pixels with the same weights."""
    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="paddle")
    x, y, w, h = box
    ran = []
    region = restorer.restore_region(photo_rgb, box, progress=lambda done, total: ran.append(total))
    assert np.array_equal(region, restorer.restore(photo_rgb)[y:y + h, x:x + w])
    assert ran[-1] <= len(restorer.plan(*photo_rgb.shape[:2])[1])


def test_a_region_streams_in_from_a_given_point_and_still_ends_exactly_as_the_whole(small_weights, photo_rgb):
    """The view's split line first: the tiles nearest a point run first, and each update
    shows the pixels no later tile changes; the end result is unchanged, bit for bit."""
    restorer = Restorer("deblur", small_weights, tile=64, overlap=16, backend="paddle")
    box = (0, 0, 100, 72)
    updates = []
    region = restorer.restore_region(photo_rgb, box, first=(80, 36),
                                     partial=lambda image, final: updates.append((image.copy(), final.copy())))
    assert np.array_equal(region, restorer.restore(photo_rgb))
    assert len(updates) >= 2
    first_final = updates[0][1]
    assert first_final[:, 60:].any() and not first_final[:, :20].any()  # the right-hand side came first
    for (image, final), (_, later) in zip(updates, updates[1:] + [(None, np.ones_like(first_final))]):
        assert (later >= final).all()  # finished pixels stay finished
        assert np.array_equal(image[final], region[final])  # and are final
