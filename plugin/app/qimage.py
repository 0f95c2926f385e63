"""numpy photo arrays -> QImage for display (8 bits per channel; the data stays numpy)."""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage


def display_array(pixels: np.ndarray) -> np.ndarray:
    """8-bit, C-contiguous H x W, H x W x 3 or H x W x 4 for display."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif np.issubdtype(pixels.dtype, np.floating):
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise TypeError(f"cannot display {pixels.dtype} pixels")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] == 2:  # gray + alpha -> RGBA
        gray, alpha = pixels[..., 0], pixels[..., 1]
        pixels = np.dstack([gray, gray, gray, alpha])
    return np.ascontiguousarray(pixels)


def to_qimage(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of the pixels (safe after the array is gone)."""
    data = display_array(pixels)
    height, width = data.shape[:2]
    if data.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    elif data.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
    else:
        fmt = QImage.Format.Format_RGBA8888
    image = QImage(data.data, width, height, data.strides[0], fmt)
    return image.copy()
