"""Hostile and unusual inputs, generated on the spot (nothing is downloaded).

Each generator writes one file and returns its path. ``BAD_IMAGES`` lists
the files that must be refused with a clear one-line error; ``ODD_IMAGES``
those that must be read (and restored) as a photo. The hardening tests and
the fuzz tests share these.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


def gradient(height: int, width: int, channels: int = 3) -> np.ndarray:
    """A smooth, deterministic test picture (uint8)."""
    yy, xx = np.mgrid[0:height, 0:width]
    planes = [(xx * 255 // max(1, width - 1)), (yy * 255 // max(1, height - 1)),
              ((xx + yy) * 7) % 256, np.full_like(xx, 200)]
    return np.stack(planes[:channels], -1).astype(np.uint8)


def encoded(fmt: str, pixels: np.ndarray | None = None, **options) -> bytes:
    """A valid file of ``fmt`` (PNG, JPEG, TIFF, WEBP, GIF, BMP) in memory."""
    image = Image.fromarray(gradient(24, 32) if pixels is None else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# --- files that must be refused -----------------------------------------------------

def zero_byte(folder: Path) -> Path:
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path


def text_named_jpg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("Shopping list: milk, eggs.\n")
    return path


def truncated(fmt: str, suffix: str) -> Callable:
    def make(folder: Path) -> Path:
        data = encoded(fmt, gradient(64, 80))
        path = folder / f"truncated_{fmt.lower()}{suffix}"
        path.write_bytes(data[: len(data) // 2])
        return path
    make.__name__ = f"truncated_{fmt.lower()}"
    return make


def corrupt_jpeg(folder: Path) -> Path:
    """A JPEG whose Huffman tables are overwritten with garbage."""
    data = bytearray(encoded("JPEG", gradient(64, 80)))
    dht = data.find(b"\xff\xc4")
    data[dht + 4:dht + 40] = bytes(range(200, 236))
    path = folder / "corrupt_jpeg.jpg"
    path.write_bytes(bytes(data))
    return path


def corrupt_png(folder: Path) -> Path:
    """A PNG whose compressed pixel data is garbage (the CRCs are made to match)."""
    header = struct.pack(">IIBBBBB", 80, 64, 8, 2, 0, 0, 0)
    path = folder / "corrupt_png.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", b"\x78\x9c" + bytes(range(256)) * 4) + png_chunk(b"IEND", b""))
    return path


def corrupt_tiff(folder: Path) -> Path:
    """A TIFF whose strip offsets point far past the end of the file."""
    data = bytearray(encoded("TIFF", gradient(64, 80)))
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind, n = struct.unpack("<HHI", data[entry:entry + 8])
        if tag == 273:  # StripOffsets
            if n == 1:
                data[entry + 8:entry + 12] = struct.pack("<I", 0x7FFFFFF0)
            else:
                (where,) = struct.unpack("<I", data[entry + 8:entry + 12])
                size = 2 if kind == 3 else 4
                for k in range(n):
                    data[where + size * k:where + size * (k + 1)] = (b"\xf0\xff" if size == 2
                                                                      else struct.pack("<I", 0x7FFFFFF0))
    path = folder / "corrupt_tiff.tif"
    path.write_bytes(bytes(data))
    return path


def png_bomb(folder: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path = folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    return path


# --- files that must be read as photos ------------------------------------------------

def cmyk_jpeg(folder: Path) -> Path:
    path = folder / "cmyk.jpg"
    cmy = 255 - gradient(24, 32)
    Image.fromarray(np.dstack([cmy, np.zeros(cmy.shape[:2], np.uint8)]), "CMYK").save(path, quality=95)
    return path


def ycck_jpeg(folder: Path) -> Path:
    """A YCCK JPEG (Adobe APP14 transform 2), as Photoshop writes CMYK.

    Pillow cannot ask libjpeg for YCCK, so the file is crafted: libjpeg's YCCK
    stores Y, Cb, Cr of (255 - C, 255 - M, 255 - Y) of its CMYK samples, plus K;
    Pillow hands libjpeg inverted CMYK (Adobe convention). So the four planes
    we give Pillow as "CMYK" are (255 - YCbCr(c, m, y), k) -- stored inverted,
    that is exactly YCbCr(c, m, y) and 255 - k, what a YCCK encoder would have
    written for the CMYK picture (c, m, y, k) -- and the transform byte of the
    Adobe marker is then patched from 0 (CMYK) to 2 (YCCK). A correct decoder
    gives the same colours as :func:`cmyk_jpeg`.
    """
    cmy = 255 - gradient(24, 32)
    ycc = np.asarray(Image.fromarray(cmy, "RGB").convert("YCbCr"))
    planes = np.dstack([255 - ycc, np.zeros(cmy.shape[:2], np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(planes, "CMYK").save(buffer, "JPEG", quality=98, subsampling=0)
    data = bytearray(buffer.getvalue())
    adobe = data.find(b"\xff\xee\x00\x0eAdobe")
    assert adobe > 0 and data[adobe + 15] == 0, "expected libjpeg's Adobe marker, transform 0"
    data[adobe + 15] = 2  # FF EE, length (2), "Adobe" (5), version (2), flags0 (2), flags1 (2), transform
    path = folder / "ycck.jpg"
    path.write_bytes(bytes(data))
    return path


def palette_png_with_transparency(folder: Path) -> Path:
    image = Image.new("P", (8, 8))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (0, 0, 4, 8))
    path = folder / "palette.png"
    image.save(path, transparency=1)
    return path


def animated(fmt: str, suffix: str):
    def make(folder: Path) -> Path:
        frames = [Image.new("RGB", (16, 8), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
        path = folder / f"animated_{fmt.lower()}{suffix}"
        options = {"lossless": True} if fmt == "WEBP" else {}
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, **options)
        return path
    make.__name__ = f"animated_{fmt.lower()}"
    return make


def gray16_alpha_png(folder: Path) -> Path:
    """16-bit gray + alpha (PNG colour type 4, depth 16), written chunk by chunk."""
    height, width = 6, 10
    gray = (np.arange(height * width, dtype=np.uint32).reshape(height, width) * 1000 + 7).astype(np.uint16)
    alpha = np.full((height, width), 40000, np.uint16)
    rows = np.dstack([gray, alpha]).astype(">u2").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    path = folder / "gray16_alpha.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
    return path


def tiny(height: int, width: int):
    def make(folder: Path) -> Path:
        path = folder / f"tiny_{height}x{width}.png"
        Image.fromarray(gradient(height, width)).save(path)
        return path
    make.__name__ = f"tiny_{height}x{width}"
    return make


def broken_exif_jpeg(folder: Path) -> Path:
    """A JPEG whose EXIF block claims an IFD far past its end."""
    exif = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 0x00FFFFFF) + b"\x00" * 20
    data = bytearray(encoded("JPEG", gradient(24, 32), quality=95))
    segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    data[2:2] = segment
    path = folder / "broken_exif.jpg"
    path.write_bytes(bytes(data))
    return path


def oriented(orientation: int):
    """A 6 x 10 JPEG stored sideways/mirrored, with EXIF orientation ``orientation``."""
    def make(folder: Path) -> Path:
        image = Image.fromarray(gradient(6, 10))
        exif = image.getexif()
        exif[0x0112] = orientation
        path = folder / f"orientation_{orientation}.jpg"
        image.save(path, quality=95, exif=exif.tobytes())
        return path
    make.__name__ = f"orientation_{orientation}"
    return make


def panorama(folder: Path, width: int = 40_000, height: int = 200) -> Path:
    path = folder / "panorama.jpg"
    strip = gradient(height, 1000)
    Image.fromarray(np.tile(strip, (1, width // 1000, 1))).save(path, quality=80)
    return path


BAD_IMAGES = {
    "zero_byte": (zero_byte, "empty"),
    "text_named_jpg": (text_named_jpg, "not an image"),
    "truncated_jpeg": (truncated("JPEG", ".jpg"), "truncated|damaged"),
    "truncated_png": (truncated("PNG", ".png"), "truncated|damaged"),
    "truncated_tiff": (truncated("TIFF", ".tif"), "truncated|damaged"),
    "corrupt_jpeg": (corrupt_jpeg, "damaged"),
    "corrupt_png": (corrupt_png, "damaged"),
    "corrupt_tiff": (corrupt_tiff, "damaged|truncated"),
    "png_bomb": (png_bomb, "over the limit"),
}

ODD_IMAGES = {
    "cmyk_jpeg": cmyk_jpeg,
    "ycck_jpeg": ycck_jpeg,
    "palette_png_with_transparency": palette_png_with_transparency,
    "animated_gif": animated("GIF", ".gif"),
    "animated_webp": animated("WEBP", ".webp"),
    "gray16_alpha_png": gray16_alpha_png,
    "tiny_1x1": tiny(1, 1),
    "tiny_3x7": tiny(3, 7),
    "broken_exif_jpeg": broken_exif_jpeg,
    **{f"orientation_{n}": oriented(n) for n in range(1, 9)},
}
