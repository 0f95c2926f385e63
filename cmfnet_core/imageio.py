"""Read and write photos without losing what the user cares about.

(About 500 lines: reading and writing must agree on every format's orientation, depth
and metadata, so they stay side by side; TIFF is apart, in tiff.py.) ``READABLE`` is
the one list of suffixes taken as photos (the app, training, right-click entries).

Reading applies the EXIF orientation and keeps 16-bit depth, alpha, the ICC
profile and EXIF. Writing keeps format, depth and metadata (orientation reset
to normal, since the pixels are already upright), and is atomic: the photo is
encoded in memory, written to a temporary file in the destination folder and
renamed into place, so an interrupted or failed save leaves either the old
state or the complete new file. An existing file is never replaced unless the
caller says ``overwrite=True``.

Pillow decodes 8-bit images (it knows CMYK, palettes, EXIF and truncation);
OpenCV decodes and encodes 16-bit PNG, which Pillow cannot hold; every TIFF
is written, and a 16-bit one read, by :mod:`cmfnet_core.tiff` (tifffile).

What the decoders say about damaged files besides raising (Python warnings,
OpenCV's log) is kept quiet: a file that cannot be read is one ImageError
line, a readable one is read. The switches for that are process-wide, so they
are set once (at import, or on OpenCV's first use), never around each read:
the app reads from two worker threads at once.
"""
from __future__ import annotations

import errno
import functools
import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import tiff
from .files import write_atomic

DEFAULT_MAX_PIXELS = 250_000_000  # about 16k x 16k; raise with CMFNET_MAX_PIXELS
EXIF_ORIENTATION = 0x0112
SUFFIX_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".tif": "TIFF",
                 ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP"}
READABLE = (*SUFFIX_FORMAT, ".gif")  # every suffix taken as a photo, here and in training

# Pillow warns about the damage it works around ("Corrupt EXIF data", ...), from its own
# modules. Silenced for the process rather than per read: warnings.catch_warnings swaps the
# process-wide filter list and puts its copy back on exit, so two threads reading at once
# could each put back the other's list (losing filters, or leaving "ignore all" in place).
warnings.filterwarnings("ignore", module=r"PIL\.")  # Pillow's code is all in PIL.* modules


class ImageError(ValueError):
    """A photo cannot be read or written; the message is one clear line."""


@dataclass(frozen=True)
class ImageInfo:
    """What a photo carries besides its pixels."""

    format: str = "PNG"
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass
class Photo:
    pixels: np.ndarray  # H x W (gray), H x W x 2 (gray + alpha), x 3 (RGB) or x 4 (RGBA)
    info: ImageInfo
    path: Path | None = None


def max_pixels() -> int:
    try:
        return int(os.environ.get("CMFNET_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        return DEFAULT_MAX_PIXELS


# --- reading -------------------------------------------------------------------

def _pillow():
    """Pillow's ``Image``, with its own pixel limit turned off for the process.

    :func:`read_image` checks the size against its limit (CMFNET_MAX_PIXELS)
    from the header, before decoding. The switch is set once and never put
    back: set and restored around each read, two threads reading at once
    could leave each other's setting behind. Pillow is imported on first use,
    so importing this module stays quick.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image


def read_image(path: str | os.PathLike, limit: int | None = None) -> Photo:
    """Decode a photo upright. Raises :class:`ImageError` naming the file and the reason."""
    from PIL import UnidentifiedImageError

    Image = _pillow()
    path = Path(path)
    limit = limit or max_pixels()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot open ({exc.strerror})") from None
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not a photo")
    if size == 0:
        raise ImageError(f"{path}: the file is empty")
    if size > 8 * limit + (64 << 20):  # more than 16-bit RGBA, uncompressed, plus metadata: not read
        raise ImageError(f"{path}: {size:,} bytes is more than any photo within the limit of "
                         f"{limit:,} pixels (set CMFNET_MAX_PIXELS to allow larger images)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        page = tiff.first_page(data) if tiff.is_tiff(data) else None
        if page is not None and page.bits == 16:
            _check_size(path, page.size, limit)
            info, pixels = _decode_tiff_16bit(data)
        else:
            with Image.open(io.BytesIO(data)) as image:
                _check_size(path, image.size, limit)
                info, pixels = _decode(image, data)
    except ImageError:
        raise
    except tiff.Unsupported as exc:
        raise ImageError(f"{path}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image, or a format this tool does not read "
                         f"({', '.join(s.lstrip('.') for s in READABLE)})") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, zlib.error,
            IndexError, KeyError, TypeError) as exc:  # what the parsers raise on bad bytes
        reason = str(exc) or exc.__class__.__name__
        if "truncated" in reason or isinstance(exc, EOFError):
            reason = "the file is truncated"
        raise ImageError(f"{path}: damaged image ({reason})") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image") from None
    return Photo(pixels=pixels, info=info, path=path)


def header_size(path: str | os.PathLike, limit: int | None = None) -> tuple[int, int] | None:
    """(height, width) of the photo upright, from its header alone: milliseconds, however
    large the photo, and nothing decoded. None where the header does not say, or says the
    photo is over the pixel limit (:func:`read_image` then reports why).

    A PNG may keep its EXIF after the pixel data, where Pillow decodes the whole image to
    reach it (a 100,000 x 100,000 header asked for 30 GB): such a PNG is taken as upright.
    """
    limit = limit or max_pixels()
    try:
        with _pillow().open(path) as image:
            width, height = image.size
            if width * height > limit:
                return None
            exif_needs_pixels = image.format == "PNG" and "exif" not in image.info
            orientation = 1 if exif_needs_pixels else image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - anything unreadable: the read itself says what is wrong
        return None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)  # turned a quarter


def _check_size(path: Path, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise ImageError(f"{path}: {width} x {height} pixels is over the limit of {limit:,} "
                         "(set CMFNET_MAX_PIXELS to allow larger images)")


def _decode(image, data: bytes) -> tuple[ImageInfo, np.ndarray]:
    notes = []
    try:
        frames = getattr(image, "n_frames", 1)
    except (EOFError, IndexError, OSError, SyntaxError, ValueError, struct.error):
        frames = 0  # a later frame is damaged; the first may still be whole
        image.seek(0)
    if frames > 1:
        notes.append(f"animated image: only the first of {frames} frames is restored")
    elif frames == 0:
        notes.append("animated image with damaged later frames: only the first frame is restored")
    depth = _bit_depth(image, data)
    if depth == 8:
        # decode now, so damaged pixel data is reported as such; reading EXIF may need
        # the pixels decoded first (PNG), and that step swallows errors on purpose
        image.load()
    exif_bytes, orientation = _read_exif(image.getexif, notes, is_tiff=image.format == "TIFF")
    icc = image.info.get("icc_profile") or None
    if depth == 16:
        pixels = _decode_16bit(image, data)
    else:
        if image.mode == "CMYK":
            icc = None  # a CMYK profile no longer describes the RGB pixels
        pixels = _pil_to_array(image)
    pixels = apply_orientation(pixels, orientation)
    info = ImageInfo(format=image.format or "PNG", bit_depth=depth, icc_profile=icc,
                     exif=exif_bytes, dpi=image.info.get("dpi"), notes=tuple(notes))
    return info, np.ascontiguousarray(pixels)


def _decode_tiff_16bit(data: bytes) -> tuple[ImageInfo, np.ndarray]:
    """A 16-bit TIFF: pixels from tifffile (OpenCV where tifffile lacks the codec)."""
    from PIL import Image

    notes: list[str] = []
    tags = Image.Exif()
    try:
        tags.load(data)  # the TIFF's first directory: ICC, resolution, orientation and EXIF tags
        icc, dpi = tags.get(tiff.ICC_PROFILE), _tiff_dpi(tags)
    except (struct.error, ValueError, TypeError, ZeroDivisionError):
        # a damaged directory, or BigTIFF, which Pillow's EXIF reader does not know
        icc = dpi = None
        exif_bytes, orientation = None, 1
        notes.append("the TIFF's tags could not be read: ICC profile and EXIF were dropped")
    else:
        exif_bytes, orientation = _read_exif(lambda: tags, notes, is_tiff=True)
    pixels = tiff.decode(data)
    if pixels is None:
        pixels = _decode_16bit_opencv(data, gray=False)
    pixels = apply_orientation(pixels, orientation)
    info = ImageInfo(format="TIFF", bit_depth=16, icc_profile=icc if isinstance(icc, bytes) else None,
                     exif=exif_bytes, dpi=dpi, notes=tuple(notes))
    return info, np.ascontiguousarray(pixels)


def _tiff_dpi(tags) -> tuple[float, float] | None:
    """Dots per inch from the resolution tags, as Pillow gives them for 8-bit TIFF."""
    unit, x, y = tags.get(296, 2), tags.get(282), tags.get(283)
    if not x or not y or unit not in (2, 3):  # 1: no absolute unit
        return None
    per_inch = 2.54 if unit == 3 else 1.0  # 3: per centimetre
    return float(x) * per_inch, float(y) * per_inch


def _read_exif(load_exif, notes: list[str], is_tiff: bool = False) -> tuple[bytes | None, int]:
    try:
        exif = load_exif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
        if not 1 <= orientation <= 8:
            orientation = 1
        if is_tiff:  # a TIFF's EXIF is its first directory: keep the photo's tags, not the layout
            for tag in tiff.LAYOUT_TAGS:
                exif.pop(tag, None)
        if not exif:
            return None, orientation
        exif[EXIF_ORIENTATION] = 1
        return exif.tobytes(), orientation
    except Exception:  # noqa: BLE001 - any broken EXIF block: keep the pixels, drop the block
        notes.append("the EXIF block is damaged and was dropped")
        return None, 1


def _bit_depth(image, data: bytes) -> int:
    if image.format == "PNG" and data[12:16] == b"IHDR":
        return 16 if data[24] == 16 else 8
    if image.mode.startswith("I;16"):
        return 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return 16 if max(bits) == 16 else 8
    return 8


def _decode_16bit(image, data: bytes) -> np.ndarray:
    if image.mode.startswith("I;16") and image.format != "PNG":
        image.load()
        return np.asarray(image).astype(np.uint16)
    return _decode_16bit_opencv(data, gray=image.format == "PNG" and data[25] in (0, 4))


@functools.cache
def _opencv():
    """OpenCV (imported on first use: it is slow to import), its log set to errors only.

    Its decoders log warnings about damaged files straight to stderr, between the
    one-line messages. The level is process-wide: set and put back around each read,
    two threads decoding at once could leave each other's level behind, so it is set
    once and left so.
    """
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def _decode_16bit_opencv(data: bytes, gray: bool) -> np.ndarray:
    """Decode with OpenCV; ``gray``: the file holds gray (+ alpha), which OpenCV widens."""
    cv2 = _opencv()
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise ValueError("the 16-bit decoder could not read it (the file is truncated or damaged)")
    if pixels.dtype != np.uint16:
        pixels = pixels.astype(np.uint16) * 257
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if gray:  # OpenCV expands gray (+alpha) to colour; give it back as gray
            pixels = pixels[..., [0, 3]] if pixels.shape[2] == 4 else pixels[..., 0]
    return pixels


def _pil_to_array(image) -> np.ndarray:
    image.load()
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("La",):
        image = image.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        image = image.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        return np.clip(array, 0, 65535).astype(np.uint16)
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image)


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF orientation 1-8 upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](pixels) if orientation in ops else pixels


# --- naming --------------------------------------------------------------------

def output_path(source: str | os.PathLike, task: str, out_dir: str | os.PathLike | None = None,
                reuse: bool = False) -> Path:
    """``NAME.TASK.EXT`` beside the source (or in ``out_dir``), with a counter if taken.

    With ``reuse`` the name itself even when taken: the caller replaces an
    earlier output (``cmfnet restore --overwrite``). It is never the source,
    whose name has no ``.TASK`` before the extension.
    """
    source = Path(source)
    folder = Path(out_dir) if out_dir is not None else source.parent
    suffix = source.suffix if source.suffix.lower() in SUFFIX_FORMAT else ".png"
    candidate = folder / f"{source.stem}.{task}{suffix}"
    counter = 2
    while not reuse and (candidate.exists() or candidate.is_symlink()):
        candidate = folder / f"{source.stem}.{task}-{counter}{suffix}"
        counter += 1
    return candidate


def next_counter_name(path: Path) -> Path:
    """``NAME.TASK.EXT`` -> ``NAME.TASK-2.EXT``, ``NAME.TASK-2.EXT`` -> ``NAME.TASK-3.EXT``."""
    stem, dash, number = path.stem.rpartition("-")
    if dash and number.isdigit() and "." in stem:
        return path.with_name(f"{stem}-{int(number) + 1}{path.suffix}")
    return path.with_name(f"{path.stem}-2{path.suffix}")


def format_for(path: Path, info: ImageInfo | None) -> str:
    fmt = SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown output format {path.suffix!r}; use one of "
                         f"{', '.join(sorted(set(SUFFIX_FORMAT)))}")
    return fmt


# --- writing -------------------------------------------------------------------

def encode_image(pixels: np.ndarray, fmt: str, info: ImageInfo | None = None) -> bytes:
    """Encode to ``fmt`` in memory, keeping depth (where the format can) and metadata."""
    info = info or ImageInfo(format=fmt, bit_depth=16 if pixels.dtype == np.uint16 else 8)
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"cannot encode {pixels.dtype} pixels")
    if fmt == "TIFF":
        return tiff.encode(pixels, info.icc_profile, info.exif, info.dpi)
    if pixels.dtype == np.uint16 and fmt == "PNG":
        return _encode_16bit_png(pixels, info)
    if pixels.dtype == np.uint16:  # JPEG, WebP and BMP hold 8 bits only
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    return _encode_8bit(pixels, fmt, info)


def _encode_8bit(pixels: np.ndarray, fmt: str, info: ImageInfo) -> bytes:
    from PIL import Image

    if pixels.ndim == 3 and pixels.shape[2] == 2:
        image = Image.fromarray(pixels, "LA")
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        image = Image.fromarray(pixels[..., 0], "L")
    else:
        image = Image.fromarray(pixels)
    if fmt in ("JPEG", "BMP") and image.mode in ("RGBA", "LA"):
        image = image.convert(image.mode[:-1] if image.mode == "LA" else "RGB")  # no alpha there
    options = {}
    if info.icc_profile and fmt != "BMP":
        options["icc_profile"] = info.icc_profile
    if info.exif and fmt in ("JPEG", "PNG", "WEBP"):
        options["exif"] = info.exif
    if info.dpi and fmt in ("JPEG", "PNG"):
        options["dpi"] = info.dpi
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=95)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _encode_16bit_png(pixels: np.ndarray, info: ImageInfo) -> bytes:
    cv2 = _opencv()

    if pixels.ndim == 3 and pixels.shape[2] == 2:
        # OpenCV cannot write gray + alpha; PNG colour type 4 is simple enough
        return _png_with_metadata(_png_gray_alpha_16(pixels), info)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ImageError("could not encode a 16-bit PNG")
    return _png_with_metadata(encoded.tobytes(), info)


def _png_gray_alpha_16(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape[:2]
    rows = pixels.astype(">u2").reshape(height, width * 2)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows.view(np.uint8)])  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_metadata(png: bytes, info: ImageInfo) -> bytes:
    """Insert iCCP and eXIf chunks after IHDR (OpenCV writes neither)."""
    chunks = b""
    if info.icc_profile:
        chunks += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(info.icc_profile))
    if info.exif:
        exif = info.exif[6:] if info.exif.startswith(b"Exif\x00\x00") else info.exif
        chunks += _png_chunk(b"eXIf", exif)
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunks + png[end_of_ihdr:]


def write_image(path: str | os.PathLike, pixels: np.ndarray, info: ImageInfo | None = None,
                overwrite: bool = False, next_free: bool = False) -> Path:
    """Encode and write atomically; returns the path written.

    Never replaces an existing file unless ``overwrite``. With ``next_free``
    a taken name moves on to the next counter (:func:`next_counter_name`), the
    name being claimed atomically, so two runs writing the same output at
    once both succeed under different names.
    """
    path = Path(path)
    fmt = format_for(path, info)
    if info is not None and info.format != fmt:
        info = replace(info, format=fmt)
    data = encode_image(pixels, fmt, info)
    return atomic_write(path, data, overwrite=overwrite, next_free=next_free)


def atomic_write(path: Path, data: bytes, overwrite: bool = False, next_free: bool = False) -> Path:
    """Write ``data`` atomically (:func:`cmfnet_core.files.write_atomic`), errors as ImageError.

    Returns the path written (another name only with ``next_free``).
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"{path}: the folder {folder} does not exist")
    if not overwrite and not next_free and (path.exists() or path.is_symlink()):
        raise ImageError(f"{path}: already exists (not overwritten)")
    try:
        return write_atomic(path, data, overwrite=overwrite,
                            next_name=next_counter_name if next_free else None)
    except FileExistsError:
        raise ImageError(f"{path}: already exists (not overwritten)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({_describe(exc)})") from None


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EFBIG:
        return "the file is too large for this disk or limit"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied: the folder is read-only"
    return exc.strerror or str(exc)
