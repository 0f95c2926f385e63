"""What is wrong with a photo: blur, haze, raindrops or nothing (the "Automatic" task).

``detect(image)`` returns a :class:`Detection`: a probability per class of
``DETECT_CLASSES``, the most likely one, and ``restore_task``, the task to run
(None when the photo looks fine or the detector is unsure). It is the same
call for the CLI (``cmfnet detect``, ``cmfnet restore --task auto``), the app,
the right-click entry and the GIMP bridge.

The network (``detector_network.py``) reads two views: the whole scene as a
small square, and a few crops of the most textured parts of the photo at up to
``DETAIL_LONG_SIDE`` pixels on its long side, because blur shows only in fine
detail and a sky or a wall says nothing about it. Weights are
``resources/weights/detector.pdparams`` with a JSON sidecar; they are read by
the project's own unpickler (no code runs), like every weights file.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .checkpoint import CheckpointError, load_pickled
from .weights import BUNDLED_DIR, TASKS

DETECT_CLASSES = TASKS + ("none",)
AUTO_TASK = "auto"
AUTO_THRESHOLD = 0.5      # below this the detector is unsure and nothing is restored
SCENE_SIDE = 160
DETAIL_SIDE = 96
DETAIL_CROPS = 4
DETAIL_GRID = 4           # crops come from the most textured cells of a 4 x 4 grid
DETAIL_LONG_SIDE = 1024   # blur is judged at this scale at most (a 24-MP photo's shake, scaled down)
DETECTOR_FORMAT = "cmfnet-restore/detector-1"
DETECTOR_WEIGHTS = BUNDLED_DIR / "detector.pdparams"

LOOKS = {"deblur": "blurry", "dehaze": "hazy", "deraindrop": "rain-spotted", "none": "fine"}


class DetectorError(ValueError):
    """The detector's weights are missing or do not fit its network (one-line message)."""


@dataclass(frozen=True)
class Detection:
    probabilities: dict

    @property
    def task(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.task])

    @property
    def restore_task(self) -> str | None:
        """The task to run, or None: the photo looks fine, or the detector is unsure."""
        if self.task == "none" or self.confidence < AUTO_THRESHOLD:
            return None
        return self.task

    def summary(self) -> str:
        """One line for people, e.g. "Looks hazy · 87 %"."""
        lead = "Looks" if self.task == "none" or self.restore_task else "Maybe"
        return f"{lead} {LOOKS[self.task]} · {round(100 * self.confidence)} %"

    def as_dict(self) -> dict:
        return {"task": self.task, "confidence": round(self.confidence, 4),
                "restore_task": self.restore_task,
                "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}


# --- the two views -----------------------------------------------------------------

def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an H x W x 1/3/4 image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _to_float(image: np.ndarray) -> np.ndarray:
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0
    return image.astype(np.float32) / np.float32(scale)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def detail_view(image: np.ndarray) -> np.ndarray:
    """The photo at most DETAIL_LONG_SIDE on its long side (never enlarged,
    except up to DETAIL_SIDE on its short side)."""
    h, w = image.shape[:2]
    scale = min(1.0, DETAIL_LONG_SIDE / max(h, w))
    scale = max(scale, DETAIL_SIDE / min(h, w))
    if scale == 1.0:
        return image
    return _resize(image, max(DETAIL_SIDE, round(w * scale)), max(DETAIL_SIDE, round(h * scale)))


def texture_crops(fine: np.ndarray, count: int = DETAIL_CROPS, side: int = DETAIL_SIDE,
                  grid: int = DETAIL_GRID) -> np.ndarray:
    """``count`` side x side crops centred on the grid cells with the most edges."""
    h, w = fine.shape[:2]
    gray = cv2.cvtColor(fine, cv2.COLOR_RGB2GRAY)
    edges = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    cells = [(edges[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean(), i, j)
             for i in range(grid) for j in range(grid)]
    cells.sort(key=lambda cell: -cell[0])
    crops = []
    for _, i, j in cells[:count]:
        cy, cx = (ys[i] + ys[i + 1]) // 2, (xs[j] + xs[j + 1]) // 2
        y = int(np.clip(cy - side // 2, 0, h - side))
        x = int(np.clip(cx - side // 2, 0, w - side))
        crops.append(fine[y:y + side, x:x + side])
    return np.stack(crops)


def views(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scene 3 x S x S, details K x 3 x D x D): float32 RGB in [0, 1], as the network reads them."""
    fine = _to_float(detail_view(_as_rgb(image)))  # shrink first: a 12-MP float copy costs more than the network
    scene = _resize(fine, SCENE_SIDE, SCENE_SIDE)
    details = texture_crops(fine)
    return (np.ascontiguousarray(scene.transpose(2, 0, 1)),
            np.ascontiguousarray(details.transpose(0, 3, 1, 2)))


# --- weights and the network ------------------------------------------------------

def read_detector_state(path: str | Path = DETECTOR_WEIGHTS) -> dict[str, np.ndarray]:
    """The detector's arrays, checked against its sidecar's sha256."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    try:
        raw = path.read_bytes()
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as e:
        raise DetectorError(f"cannot read the detector's weights: {e.strerror}: {e.filename}") from None
    except ValueError:
        raise DetectorError(f"{sidecar} is not valid JSON") from None
    if meta.get("format") != DETECTOR_FORMAT or hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
        raise DetectorError(f"{path} is not this version's detector weights (format or checksum differ)")
    try:
        state = load_pickled(path)
    except CheckpointError as e:
        raise DetectorError(f"{path}: {e}") from None
    return {k: np.asarray(v, np.float32) for k, v in state.items()}


class Detector:
    """The network with its weights, ready to call; one per process is enough."""

    def __init__(self, weights: str | Path = DETECTOR_WEIGHTS):
        import paddle

        from .detector_network import CLASSES, DegradationNet

        if tuple(CLASSES) != DETECT_CLASSES:
            raise DetectorError("the detector network's classes differ from DETECT_CLASSES")
        state = read_detector_state(weights)
        self.network = DegradationNet()
        expected = {k: tuple(v.shape) for k, v in self.network.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            wrong = sorted(set(expected.items()) ^ set(got.items()))[:3]
            raise DetectorError(f"{weights} does not fit the detector network (e.g. {wrong})")
        self.network.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
        self.network.eval()
        self._lock = threading.Lock()  # one Paddle graph; the app may ask from two threads

    def __call__(self, image: np.ndarray) -> Detection:
        import paddle

        scene, details = views(image)
        with self._lock, paddle.no_grad():
            logits = self.network(paddle.to_tensor(scene[None]), paddle.to_tensor(details[None])).numpy()[0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return Detection(dict(zip(DETECT_CLASSES, (float(v) for v in p))))


_default: Detector | None = None
_default_lock = threading.Lock()


def default_detector() -> Detector:
    global _default
    with _default_lock:
        if _default is None:
            _default = Detector()
        return _default


def detect(image: np.ndarray, detector: Detector | None = None) -> Detection:
    """What ``image`` (H x W x 1/3/4, uint8/uint16/float) most likely needs."""
    return (detector or default_detector())(image)
