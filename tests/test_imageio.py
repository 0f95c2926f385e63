"""Photo I/O: upright pixels, depth and metadata kept, atomic writes, clear errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageCms

from cmfnet_core.imageio import ImageError, output_path, read_image, write_image

ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _jpeg_with_metadata(path, pixels, icc, orientation=1):
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "TestCam"  # Make
    image.save(path, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    from PIL import ImageOps

    pixels = (np.arange(6 * 10 * 3) % 251).astype(np.uint8).reshape(6, 10, 3)
    path = tmp_path / "o.png"
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    image.save(path, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert np.array_equal(read_image(path).pixels, expected)


def test_jpeg_keeps_icc_and_exif_and_resets_orientation(tmp_path, photo_rgb, srgb_icc):
    source = _jpeg_with_metadata(tmp_path / "in.jpg", photo_rgb, srgb_icc, orientation=6)
    photo = read_image(source)
    assert photo.pixels.shape == (photo_rgb.shape[1], photo_rgb.shape[0], 3)  # rotated upright
    out = write_image(tmp_path / "out.jpg", photo.pixels, photo.info)
    with Image.open(out) as written:
        assert written.format == "JPEG"
        assert written.info.get("icc_profile") == srgb_icc
        assert written.getexif()[0x010F] == "TestCam"
        assert written.getexif()[ORIENTATION] == 1


def test_sixteen_bit_png_round_trip_keeps_depth_icc_and_exif(tmp_path, srgb_icc):
    import cv2

    pixels = (np.random.default_rng(0).random((20, 30, 3)) * 65535).astype(np.uint16)
    source = tmp_path / "deep.png"
    cv2.imwrite(str(source), pixels[..., ::-1])
    photo = read_image(source)
    assert photo.info.bit_depth == 16 and np.array_equal(photo.pixels, pixels)
    exif = Image.Exif()
    exif[0x010F] = "DeepCam"
    info = type(photo.info)(format="PNG", bit_depth=16, icc_profile=srgb_icc, exif=exif.tobytes())
    out = write_image(tmp_path / "deep.out.png", photo.pixels, info)
    again = read_image(out)
    assert again.pixels.dtype == np.uint16 and np.array_equal(again.pixels, pixels)
    assert again.info.icc_profile == srgb_icc
    with Image.open(out) as written:
        assert written.getexif()[0x010F] == "DeepCam"


LAYOUTS = {"gray": (), "gray_alpha": (2,), "rgb": (3,), "rgba": (4,)}


def _pixels(layout: str, depth: int) -> np.ndarray:
    peak = 65535 if depth == 16 else 255
    shape = (10, 12, *LAYOUTS[layout])
    return (np.random.default_rng(len(layout) + depth).random(shape) * peak).astype(
        np.uint16 if depth == 16 else np.uint8)


def _camera_exif() -> bytes:
    """EXIF as a camera writes it: tags in the first directory and in the Exif and GPS IFDs."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[ORIENTATION] = 1
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
    exif.get_ifd(0x8769)[0x8827] = 400  # ISO
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPSLatitudeRef
    return exif.tobytes()


def _assert_camera_exif(exif_bytes: bytes) -> None:
    exif = Image.Exif()
    exif.load(exif_bytes)
    assert exif[0x010F] == "TestCam" and exif[ORIENTATION] == 1
    assert exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
    assert exif.get_ifd(0x8769)[0x8827] == 400
    assert exif.get_ifd(0x8825)[0x0001] == "N"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_lossless_round_trip_keeps_pixels_depth_alpha_icc_and_exif(tmp_path, srgb_icc, suffix,
                                                                    depth, layout):
    from cmfnet_core.imageio import ImageInfo

    pixels = _pixels(layout, depth)
    info = ImageInfo(format="PNG" if suffix == ".png" else "TIFF", bit_depth=depth,
                     icc_profile=srgb_icc, exif=_camera_exif())
    again = read_image(write_image(tmp_path / f"out{suffix}", pixels, info))
    assert again.pixels.dtype == pixels.dtype and again.pixels.shape == pixels.shape
    assert np.array_equal(again.pixels, pixels)
    assert again.info.bit_depth == depth
    assert again.info.icc_profile == srgb_icc
    _assert_camera_exif(again.info.exif)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("depth", [8, 16])
def test_jpeg_keeps_gray_or_colour_icc_and_exif_at_8_bits(tmp_path, srgb_icc, depth, layout):
    from cmfnet_core.imageio import ImageInfo

    pixels = _pixels(layout, depth)
    info = ImageInfo(format="JPEG", bit_depth=depth, icc_profile=srgb_icc, exif=_camera_exif())
    again = read_image(write_image(tmp_path / "out.jpg", pixels, info))
    colour = pixels.ndim == 3 and pixels.shape[2] >= 3
    assert again.pixels.dtype == np.uint8 and again.info.bit_depth == 8  # JPEG holds 8 bits
    assert again.pixels.shape == ((10, 12, 3) if colour else (10, 12))  # and no alpha
    assert again.info.icc_profile == srgb_icc
    _assert_camera_exif(again.info.exif)


def test_tiff_files_are_what_other_readers_expect(tmp_path, srgb_icc):
    """Gray + alpha stays two samples with an alpha extra sample; the EXIF IFD is a real one."""
    import cv2
    import tifffile

    from cmfnet_core.imageio import ImageInfo

    info = ImageInfo(format="TIFF", bit_depth=16, icc_profile=srgb_icc, exif=_camera_exif())
    gray_alpha = write_image(tmp_path / "ga.tif", _pixels("gray_alpha", 16), info)
    with tifffile.TiffFile(gray_alpha) as tif:
        page = tif.pages.first
        assert page.samplesperpixel == 2 and page.photometric == tifffile.PHOTOMETRIC.MINISBLACK
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        assert page.bitspersample == 16
        assert page.tags[34675].value == srgb_icc
        assert page.tags["ExifTag"].value["DateTimeOriginal"] == "2024:05:06 07:08:09"
        assert page.tags["GPSTag"].value["GPSLatitudeRef"] == "N"
    rgb = _pixels("rgb", 16)
    opened = cv2.imread(str(write_image(tmp_path / "rgb.tif", rgb, info)), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(opened[..., ::-1], rgb)  # libtiff, through OpenCV


def test_sixteen_bit_tiff_from_other_tools_is_read(tmp_path):
    """OpenCV writes LZW, which tifffile decodes only with imagecodecs: OpenCV reads it back."""
    import cv2

    rgb = _pixels("rgb", 16)
    path = tmp_path / "lzw.tif"
    cv2.imwrite(str(path), rgb[..., ::-1])
    photo = read_image(path)
    assert photo.info.bit_depth == 16 and np.array_equal(photo.pixels, rgb)


def test_sixteen_bit_gray_alpha_tiff_no_decoder_reads_is_refused_in_one_line(tmp_path):
    import tifffile

    if 5 in tifffile.TIFF.DECOMPRESSORS:
        pytest.skip("optional dependency imagecodecs is installed: tifffile reads LZW")
    path = write_image(tmp_path / "ga.tif", _pixels("gray_alpha", 16))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages.first.tags["Compression"].overwrite(5)  # as if LZW: OpenCV cannot read gray + alpha
    with pytest.raises(ImageError, match="gray \\+ alpha TIFF with LZW .* imagecodecs") as error:
        read_image(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_sixteen_bit_tiff_orientation_is_applied(tmp_path):
    from cmfnet_core.imageio import ImageInfo, encode_image

    pixels = _pixels("rgb", 16)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = tmp_path / "turned.tif"
    path.write_bytes(encode_image(pixels, "TIFF", ImageInfo(format="TIFF", bit_depth=16,
                                                             exif=exif.tobytes())))
    photo = read_image(path)
    assert np.array_equal(photo.pixels, np.rot90(pixels, -1))
    again = Image.Exif()
    again.load(photo.info.exif)
    assert again[ORIENTATION] == 1


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_gray_alpha_stays_gray_alpha(tmp_path, suffix):
    from tests import corpus

    photo = read_image(corpus.gray16_alpha_png(tmp_path))  # colour type 4, written chunk by chunk
    assert photo.pixels.dtype == np.uint16 and photo.pixels.shape == (6, 10, 2)
    written = read_image(write_image(tmp_path / f"ga.out{suffix}", photo.pixels, photo.info))
    assert written.pixels.shape == (6, 10, 2) and np.array_equal(written.pixels, photo.pixels)


def test_a_tiffs_exif_holds_the_photos_tags_not_its_layout(tmp_path, photo_rgb):
    path = tmp_path / "plain.tif"
    Image.fromarray(photo_rgb).save(path, compression="tiff_lzw")
    assert read_image(path).info.exif is None  # only strip offsets, sizes, compression


def test_palette_png_with_transparency_reads_as_rgba(tmp_path):
    image = Image.new("P", (8, 8))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 1
    image.paste(1, (0, 0, 4, 8))
    path = tmp_path / "pal.png"
    image.save(path, transparency=1)
    pixels = read_image(path).pixels
    assert pixels.shape == (8, 8, 4) and pixels[0, 0, 3] == 0 and pixels[0, 7, 3] == 255


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(path)
    photo = read_image(path)
    assert photo.pixels.shape == (8, 16, 3) and photo.info.icc_profile is None
    assert photo.pixels[..., 0].mean() > 200 and photo.pixels[..., 1].mean() < 60


def test_animated_gif_gives_its_first_frame_with_a_note(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    photo = read_image(path)
    assert photo.pixels[0, 0, 0] > 200 and "first of 2 frames" in photo.info.notes[0]
    assert output_path(path, "dehaze").suffix == ".png"


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is a text file, not a photo\n", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "damaged|not an image"),
])
def test_unreadable_files_get_one_clear_line(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as error:
        read_image(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_are_refused(tmp_path, photo_rgb, suffix):
    path = tmp_path / f"whole{suffix}"
    Image.fromarray(photo_rgb).save(path)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ImageError, match="truncated|damaged"):
        read_image(cut)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    from tests import corpus

    with pytest.raises(ImageError, match="over the limit"):
        read_image(corpus.png_bomb(tmp_path))


@pytest.fixture
def decoding_forbidden(monkeypatch):
    """Any pixel decoding by Pillow fails the test: what reads only the header must not decode."""
    from PIL import ImageFile

    def load(self):
        raise AssertionError(f"decoded {self.size[0]} x {self.size[1]} pixels")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_a_photos_size_is_read_from_its_header_upright(tmp_path):
    from cmfnet_core.imageio import EXIF_ORIENTATION, header_size

    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored on its side, shown turned a quarter
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (60, 40)).save(path, exif=exif)
    assert header_size(path) == (60, 40) == read_image(path).pixels.shape[:2]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo at all")
    assert header_size(broken) is None and header_size(tmp_path / "gone.jpg") is None


def test_a_header_size_never_decodes_a_bomb(tmp_path, decoding_forbidden):
    from cmfnet_core.imageio import header_size
    from tests import corpus

    # over the limit: left for the read to refuse; under it, the size without the pixels
    # (Pillow decodes a PNG to look for EXIF after its pixel data: 30 GB for this header)
    assert header_size(corpus.png_bomb(tmp_path)) is None
    assert header_size(corpus.png_bomb(tmp_path), limit=10**11) == (100_000, 100_000)


def test_output_name_beside_the_original_with_a_counter(tmp_path):
    source = tmp_path / "my photo.jpg"
    source.write_bytes(b"x")
    first = output_path(source, "deblur")
    assert first.name == "my photo.deblur.jpg"
    first.write_bytes(b"taken")
    assert output_path(source, "deblur").name == "my photo.deblur-2.jpg"
    assert output_path(source, "deblur", tmp_path / "elsewhere").parent == tmp_path / "elsewhere"


def test_output_name_can_be_reused_to_replace_an_earlier_output(tmp_path):
    source = tmp_path / "my photo.jpg"
    (tmp_path / "my photo.deblur.jpg").write_bytes(b"an earlier run's result")
    assert output_path(source, "deblur", reuse=True).name == "my photo.deblur.jpg"
    assert output_path(source, "deblur").name == "my photo.deblur-2.jpg"


def test_existing_file_is_never_replaced_without_overwrite(tmp_path, photo_rgb):
    target = tmp_path / "taken.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageError, match="already exists"):
        write_image(target, photo_rgb)
    assert target.read_bytes() == b"precious"
    write_image(target, photo_rgb, overwrite=True)
    assert read_image(target).pixels.shape == photo_rgb.shape
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]  # no temporary file left


def test_a_name_taken_meanwhile_moves_on_to_the_next_counter(tmp_path, photo_rgb):
    """Another run may take the chosen name while this one restores: both keep their work."""
    source = tmp_path / "my photo.png"
    chosen = output_path(source, "deblur")
    chosen.write_bytes(b"the other run's result")
    (tmp_path / "my photo.deblur-2.png").write_bytes(b"and a third's")
    written = write_image(chosen, photo_rgb, next_free=True)
    assert written == tmp_path / "my photo.deblur-3.png"
    assert read_image(written).pixels.shape == photo_rgb.shape
    assert chosen.read_bytes() == b"the other run's result"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_read_only_folder_gives_a_clear_error_and_leaves_nothing(tmp_path, photo_rgb):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("platform: running as root: permissions are not enforced")
        with pytest.raises(ImageError, match="read-only|permission"):
            write_image(folder / "out.png", photo_rgb)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_full_disk_gives_a_clear_error_and_leaves_nothing(tmp_path, photo_rgb):
    import subprocess
    import sys

    code = (
        "import resource, numpy as np, sys\n"
        "from cmfnet_core.imageio import write_image, ImageError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "try:\n"
        f"    write_image({str(tmp_path / 'big.png')!r}, np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))\n"
        "except ImageError as e:\n"
        "    print(e); sys.exit(7)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 7, result.stderr
    assert "too large" in result.stdout or "disk is full" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_written_photos_get_ordinary_permissions(tmp_path, photo_rgb):
    previous = os.umask(0o022)
    try:
        out = write_image(tmp_path / "new.png", photo_rgb)
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o644  # not the temporary file's 0600


# --- decoder chatter, kept quiet without per-read global switches ----------------------------

def _files_decoders_complain_about(folder):
    """A JPEG whose broken EXIF makes Pillow warn, and a truncated 16-bit PNG that makes
    OpenCV log a warning (and is refused)."""
    from tests import corpus

    pixels = (np.arange(64 * 80 * 3) % 65535).astype(np.uint16).reshape(64, 80, 3)
    whole = write_image(folder / "deep.png", pixels).read_bytes()
    truncated = folder / "truncated16.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    return corpus.broken_exif_jpeg(folder), truncated


def test_what_the_decoders_say_never_reaches_stderr(tmp_path):
    """Even with every Python warning turned on (-W always), as the CLI and the app see it."""
    import subprocess
    import sys

    warns, refused = _files_decoders_complain_about(tmp_path)
    code = ("import sys\nfrom cmfnet_core.imageio import ImageError, read_image\n"
            "read_image(sys.argv[1])\n"
            "try:\n    read_image(sys.argv[2])\nexcept ImageError:\n    print('refused')\n")
    result = subprocess.run([sys.executable, "-W", "always", "-c", code, str(warns), str(refused)],
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "refused\n", "")


def test_reading_switches_no_process_wide_setting(tmp_path, monkeypatch):
    """The app reads on two threads at once: a read must not set (and put back) the warning
    filters or OpenCV's log level, which another thread's read would see or undo."""
    import warnings

    import cv2

    from tests import corpus

    warns, refused = _files_decoders_complain_about(tmp_path)
    deep = tmp_path / "deep.png"
    tiff16 = write_image(tmp_path / "deep.tif", read_image(deep).pixels)
    read_image(deep)  # OpenCV's first use in this process sets its level, once

    switched = []

    def noting(module, name):
        original = getattr(module, name)

        def call(*args, **kwargs):
            switched.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, call)

    for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
        noting(warnings, name)
    noting(cv2.utils.logging, "setLogLevel")
    for path in (warns, deep, tiff16, corpus.palette_png_with_transparency(tmp_path)):
        read_image(path)
    with pytest.raises(ImageError, match="truncated|damaged"):
        read_image(refused)
    monkeypatch.undo()
    assert switched == []
