"""TIFF through tifffile: 8 or 16 bits, gray or RGB, alpha as an extra sample, ICC and EXIF.

Pillow cannot hold 16-bit colour or 16-bit gray + alpha, and its LZW writer
refuses EXIF that has an Exif IFD (a camera's), so every TIFF is written
here. tifffile writes the pixels, the ICC profile (tag 34675) and the EXIF
tags of the first directory; it does not write EXIF's own sub-directories
(Exif IFD, GPS IFD), so those are serialised by Pillow, appended, and the
pointer tags tifffile wrote as placeholders are set to them (tifffile cannot
read a file whose pointers are still placeholders, hence the few lines of
struct).

Reading: Pillow reads 8-bit TIFF (it knows palettes, CMYK, JPEG in TIFF);
:func:`decode` reads 16-bit gray and RGB, with or without alpha, where
tifffile has the codec without the optional imagecodecs package (none,
Deflate, PackBits, LZMA), and leaves the rest (LZW, CMYK ...) to OpenCV.
"""
from __future__ import annotations

import functools
import io
import logging
import struct
from typing import NamedTuple

import numpy as np

ICC_PROFILE = 34675
#: EXIF's sub-directories in the first directory: Exif IFD and GPS IFD.
SUB_IFDS = {34665: "ExifTag", 34853: "GPSTag"}  # tifffile's names for them (see encode)
INTEROP_IFD = 40965  # inside the Exif IFD
#: First-directory tags that describe how the pixels are stored, not the photo:
#: tifffile writes its own, so a photo's EXIF never carries them.
LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317,
    320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 400, 513, 514, 529, 530, 531, 532,
    32997, 32998, ICC_PROFILE,
})
MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders


@functools.cache
def _tifffile():
    """tifffile, its log kept off stderr: a damaged file is reported as one line by the reader.

    (It logs what it skips, e.g. an EXIF IFD past the end of a truncated file;
    with no handler of its own, Python would print that to stderr.)
    """
    import tifffile

    logging.getLogger("tifffile").addHandler(logging.NullHandler())
    return tifffile


def is_tiff(data: bytes) -> bool:
    return data[:4] in MAGIC


class Page(NamedTuple):
    size: tuple[int, int]  # width, height
    bits: int  # bits per sample: 8 for most photos, 16 for deep ones


def first_page(data: bytes) -> Page | None:
    """Size and depth of the first page, from its directory; None if tifffile cannot parse it."""
    tifffile = _tifffile()

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            return Page((int(page.imagewidth), int(page.imagelength)), int(page.bitspersample))
    except Exception:  # noqa: BLE001 - any damage: Pillow reads the file or says what is wrong
        return None


class Unsupported(ValueError):
    """A TIFF that is whole but that this reader cannot decode (the message says why)."""


COLOURS = {0: 1, 1: 1, 2: 3}  # photometric -> colour samples: min-is-white, min-is-black, RGB


def decode(data: bytes) -> np.ndarray | None:
    """The first page's pixels: H x W gray, x 2 gray + alpha, x 3 RGB or x 4 RGBA.

    None for OpenCV (libtiff) to decode instead: pages in other colour spaces
    (CMYK, YCbCr), and compressions tifffile reads only with imagecodecs (LZW,
    JPEG). Raises :class:`Unsupported` for gray + alpha in those compressions,
    which OpenCV cannot read either, and ValueError for damaged files.
    """
    tifffile = _tifffile()

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            if int(page.photometric) not in COLOURS:
                return None
            if page.compression not in tifffile.TIFF.DECOMPRESSORS:
                if page.samplesperpixel == 2:
                    name = getattr(page.compression, "name", page.compression)
                    raise Unsupported(f"16-bit gray + alpha TIFF with {name} compression is not "
                                      "supported (install the imagecodecs package to read it)")
                return None
            return _photo_pixels(page)
    except (ValueError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile meets hostile bytes with any kind of error
        raise ValueError(str(exc) or exc.__class__.__name__) from None


def _photo_pixels(page) -> np.ndarray:
    photometric = int(page.photometric)
    colours = COLOURS[photometric]
    if page.samplesperpixel > 4 or page.imagedepth > 1:  # checked before decoding: memory
        raise ValueError(f"{page.samplesperpixel} samples per pixel, {page.imagedepth} deep: "
                         "not a photo")
    pixels = page.asarray()
    if pixels.dtype != np.uint16:
        raise ValueError(f"{pixels.dtype} TIFF samples are not supported")
    if pixels.ndim == 3 and page.axes.startswith("S"):  # planes stored one after another
        pixels = np.moveaxis(pixels, 0, -1)
    if pixels.ndim != 2 + (page.samplesperpixel > 1) or min(pixels.shape[:2]) < 1:
        raise ValueError(f"a TIFF page of shape {pixels.shape} is not a photo")
    if pixels.ndim == 3:  # the first extra sample is the alpha; further ones are dropped
        pixels = pixels[..., :colours + (pixels.shape[2] > colours)]
        if pixels.shape[2] == 1:
            pixels = pixels[..., 0]
    if photometric == 0:
        pixels = pixels.copy()
        colour = pixels if pixels.ndim == 2 else pixels[..., 0]
        colour[...] = 65535 - colour
    return pixels


def encode(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None,
           dpi: tuple | None = None) -> bytes:
    """A Deflate-compressed TIFF of ``pixels`` (uint8 or uint16) with its metadata."""
    tifffile = _tifffile()

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    big = pixels.nbytes > 2**32 - 2**25  # BigTIFF (64-bit offsets) where tifffile would choose it
    tags = [(ICC_PROFILE, 7, None, bytes(icc_profile), True)] if icc_profile else []
    ifd0, sub_ifds = _exif_tags(exif) if exif else ([], {})
    tags += ifd0
    # placeholders for the sub-directories' offsets (LONG, or LONG8 in BigTIFF); named,
    # because tifffile drops pointer tags given by number (it cannot write what they point to)
    tags += [(SUB_IFDS[code], 16 if big else 4, 1, 0, True) for code in sub_ifds]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, pixels, bigtiff=big, byteorder="<",
        photometric="minisblack" if samples <= 2 else "rgb",
        planarconfig="contig" if samples > 1 else None,
        extrasamples=("unassalpha",) if samples in (2, 4) else None,
        compression="zlib", predictor=True, metadata=None, software=False,
        resolution=tuple(dpi) if dpi else None, resolutionunit="inch" if dpi else None,
        extratags=tags)
    if sub_ifds:
        _append_sub_ifds(buffer, sub_ifds)
    return buffer.getvalue()


def _exif_tags(exif: bytes) -> tuple[list[tuple], dict[int, dict]]:
    """EXIF's first-directory tags as tifffile extratags, and its sub-directories."""
    from PIL import Image, TiffImagePlugin

    data = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    directory = TiffImagePlugin.ImageFileDirectory_v2(data[:8])  # keeps each tag's type
    stream = io.BytesIO(data)
    stream.seek(directory.next)
    directory.load(stream)
    tags = []
    for code, value in directory.items():
        kind = directory.tagtype[code]
        if code in LAYOUT_TAGS or code in SUB_IFDS or code == INTEROP_IFD or kind in (13, 18):
            continue
        values = value if isinstance(value, tuple) else (value,)  # 13, 18 above: pointers
        if kind in (5, 10):  # rationals: tifffile takes numerator, denominator pairs
            values = tuple(n for r in values for n in (r.numerator, r.denominator))
        elif isinstance(value, str):
            kind, values = 2, value.encode("utf-8")  # tifffile refuses non-ASCII str
        elif isinstance(value, bytes):
            values = value
        tags.append((code, kind, len(value) if isinstance(value, tuple) else 1, values, True))
    parsed = Image.Exif()
    parsed.load(exif)
    sub_ifds = {code: dict(parsed.get_ifd(code)) for code in SUB_IFDS if code in parsed}
    if INTEROP_IFD in sub_ifds.get(34665, {}):
        sub_ifds[34665][INTEROP_IFD] = dict(parsed.get_ifd(INTEROP_IFD))  # Pillow nests dicts
    return tags, {code: entries for code, entries in sub_ifds.items() if entries}


def _append_sub_ifds(buffer: io.BytesIO, sub_ifds: dict[int, dict]) -> None:
    """Append each sub-directory and point its placeholder tag in the first directory at it."""
    from PIL import TiffImagePlugin

    buffer.seek(0)
    header = buffer.read(16)
    big = header[2:4] == b"+\x00"
    pointer, count, entry_size, value_at = ("<Q", "<Q", 20, 12) if big else ("<I", "<H", 12, 8)
    offsets = {}
    for code, entries in sub_ifds.items():
        offset = buffer.seek(0, io.SEEK_END)
        if offset % 2:  # directories start on a word boundary
            buffer.write(b"\x00")
            offset += 1
        directory = TiffImagePlugin.ImageFileDirectory_v2(header[:16 if big else 8], group=code)
        for tag, value in entries.items():
            directory[tag] = value  # types as Pillow's own EXIF writer gives them
        buffer.write(directory.tobytes(offset))
        offsets[code] = offset
    view = buffer.getbuffer()
    try:
        first = struct.unpack_from(pointer, view, 8 if big else 4)[0]
        entries_at = first + struct.calcsize(count)
        for at in range(entries_at, entries_at + entry_size * struct.unpack_from(count, view, first)[0],
                        entry_size):
            code = struct.unpack_from("<H", view, at)[0]
            if code in offsets:
                struct.pack_into(pointer, view, at + value_at, offsets[code])
    finally:
        view.release()
