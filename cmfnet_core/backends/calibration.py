"""The crops int8 calibration runs on: cut from the demo photos that ship with the package.

Post-training quantisation measures each activation's range on example
inputs; those have to be photos like the ones users restore, and they have to
be on every install, so they come from ``resources/samples/`` (nine small
demo photos: blurred, hazy and rain-spotted). Never from a data set outside
the package: a calibration that changes with what happens to be on disk
would change the model under the same cache key.

The crops are varied on purpose: round-robin over the photos (every kind of
degradation), at full size and scaled down (blur and texture at other
scales), anywhere in the photo, some mirrored. Which crops is fixed by
``(count, size, seed)``, so the same recipe gives the same calibration.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundled import SAMPLES
from ..imageio import READABLE

SCALES = (1.0, 0.75, 0.5)  # of the photo's size, while it stays at least one crop wide


def sample_photos(folder: Path = SAMPLES) -> list[Path]:
    # not the restored copies the README's demo writes beside them (haze_1.dehaze.jpg)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in READABLE and "." not in p.stem)
    if not photos:
        raise FileNotFoundError(f"no sample photos in {folder}: int8 calibration needs them")
    return photos


def _load(path: Path) -> np.ndarray:
    from ..imageio import read_image

    pixels = read_image(path).pixels
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return pixels[..., :3].astype(np.float32) / (65535.0 if pixels.dtype == np.uint16 else 255.0)


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def calibration_crops(count: int, size: int, seed: int = 0, folder: Path = SAMPLES) -> list[np.ndarray]:
    """``count`` float32 1 x 3 x size x size RGB crops in [0, 1], the same ones for the
    same arguments."""
    rng = np.random.default_rng(seed)
    photos = [_load(path) for path in sample_photos(folder)]
    crops = []
    for index in range(count):
        image = photos[index % len(photos)]
        scales = [s for s in SCALES if min(image.shape[:2]) * s >= size] or [size / min(image.shape[:2])]
        image = _scaled(image, scales[int(rng.integers(len(scales)))])
        y = int(rng.integers(image.shape[0] - size + 1))
        x = int(rng.integers(image.shape[1] - size + 1))
        crop = image[y:y + size, x:x + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None], np.float32))
    return crops
