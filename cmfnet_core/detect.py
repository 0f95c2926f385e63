"""What is wrong with a photo: blur, haze, raindrops or nothing (the "Automatic" task).

``detect(image)`` returns a :class:`Detection`: a probability per class of
``DETECT_CLASSES`` (their reliability on real photos is in the model card: about
right for clean photos, over-confident on the damaged ones it misses), the most
likely one and the runner-up. It is the same call for the CLI
(``cmfnet detect``, ``cmfnet restore --task auto``), the app, the right-click
entry and the GIMP bridge, and they act on it alike:

- ``restore_task``: the detector is sure (``AUTO_THRESHOLD`` or more) that the
  photo needs this task: every front end restores it.
- ``looks_fine``: the most likely class is ``none``: it is left as it is, with a
  note (``summary()``), everywhere; a task picked by hand still restores it.
- ``unsure``: the most likely class is a task, below ``AUTO_THRESHOLD``:
  ``likely_task`` is what it would pick. The app preselects it and shows the
  runner-up ("Hazy 55 % · Blurry 30 %"); right-click and GIMP restore with it and
  say so; ``cmfnet restore`` says what it would pick and how to force it, unless
  told ``--if-unsure likely`` (what right-click and GIMP pass).

The network (``detector_network.py``) reads two views: the whole scene as a
small square, and a few crops of the photo at up to ``DETAIL_LONG_SIDE`` pixels
on its long side: half from its most textured parts, because blur shows only in
fine detail, and half from its flattest, where drops on glass show best. Weights are
``resources/weights/detector.pdparams`` with a JSON sidecar; they are read by
the project's own unpickler (no code runs), like every weights file.

It runs where CMFNet does (``backends.check_options``): with OpenVINO on the
CPU where that is installed, exported once into the backends' on-disk cache
(keyed by the weights' sha256), so a later process, like a ``cmfnet restore``
whose CMFNet model is cached too, never imports paddle; else, or with
``CMFNET_BACKEND=paddle``, in Paddle dygraph.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .checkpoint import CheckpointError, load_pickled
from .i18n import N_, _
from .tasks import AUTO_TASK, TASKS
from .weights import BUNDLED_DIR

DETECT_CLASSES = TASKS + ("none",)
AUTO_THRESHOLD = 0.5      # below this the detector is unsure and nothing is restored
SCENE_SIDE = 160
DETAIL_SIDE = 96
DETAIL_CROPS = 4
DETAIL_GRID = 4           # crops come from the most and the least textured cells of a 4 x 4 grid
DETAIL_LONG_SIDE = 1024   # blur is judged at this scale at most (a 24-MP photo's shake, scaled down)
PHOTO_CORRELATION = 0.5   # neighbouring pixels of every real photo here correlate 0.61 or more; noise ~0
DETECTOR_FORMAT = "cmfnet-restore/detector-1"
DETECTOR_WEIGHTS = BUNDLED_DIR / "detector.pdparams"

LOOKS = {"deblur": N_("blurry"), "dehaze": N_("hazy"), "deraindrop": N_("rain-spotted"), "none": N_("fine")}


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
    def runner_up(self) -> str:
        """The second most likely class."""
        return sorted(self.probabilities, key=self.probabilities.get)[-2]

    @property
    def restore_task(self) -> str | None:
        """The task to run, or None: the photo looks fine, or the detector is unsure."""
        if self.task == "none" or self.confidence < AUTO_THRESHOLD:
            return None
        return self.task

    @property
    def looks_fine(self) -> bool:
        """Nothing to restore: ``none`` is the most likely class (sure or not)."""
        return self.task == "none"

    @property
    def unsure(self) -> bool:
        """A task is the most likely class, but below AUTO_THRESHOLD."""
        return not self.looks_fine and self.restore_task is None

    @property
    def likely_task(self) -> str | None:
        """What Automatic runs where a person is watching (the app, right-click, GIMP): the
        most likely task, sure or not; None when the photo looks fine."""
        return None if self.looks_fine else self.task

    def odds(self) -> str:
        """The two most likely classes, e.g. "Hazy 55 % · Blurry 30 %"."""
        return " · ".join(f"{_(LOOKS[c]).capitalize()} {round(100 * self.probabilities[c])} %"
                          for c in (self.task, self.runner_up))

    def summary(self) -> str:
        """One line for people, e.g. "Looks hazy · 87 %"; below AUTO_THRESHOLD with the
        runner-up, e.g. "Maybe hazy · 45 % (or blurry · 30 %)"."""
        said = f"{_(LOOKS[self.task])} · {round(100 * self.confidence)} %"
        if self.confidence >= AUTO_THRESHOLD:
            return _("Looks {what}").format(what=said)
        second = self.runner_up
        other = f"{_(LOOKS[second])} · {round(100 * self.probabilities[second])} %"
        lead = _("Maybe {what} (or {other})") if self.unsure else _("Looks {what} (or {other})")
        return lead.format(what=said, other=other)

    def as_dict(self) -> dict:
        return {"task": self.task, "confidence": round(self.confidence, 4),
                "restore_task": self.restore_task, "likely_task": self.likely_task,
                "unsure": self.unsure, "runner_up": self.runner_up,
                "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}


# --- the two views -----------------------------------------------------------------

def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an H x W x 1/2/3/4 image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    if image.shape[2] <= 2:  # gray, with or without alpha: alpha says nothing about the damage
        return np.repeat(image[:, :, :1], 3, axis=2)
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
    """``count`` side x side crops centred on grid cells: half on those with the most edges
    (blur shows in fine texture), half on those with the fewest (drops on glass show best
    against sky, walls and road, and the most textured cells hid them)."""
    h, w = fine.shape[:2]
    gray = cv2.cvtColor(fine, cv2.COLOR_RGB2GRAY)
    edges = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    cells = [(edges[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean(), i, j)
             for i in range(grid) for j in range(grid)]
    cells.sort(key=lambda cell: -cell[0])
    crops = []
    for _, i, j in cells[:count - count // 2] + cells[len(cells) - count // 2:]:
        cy, cx = (ys[i] + ys[i + 1]) // 2, (xs[j] + xs[j + 1]) // 2
        y = int(np.clip(cy - side // 2, 0, h - side))
        x = int(np.clip(cx - side // 2, 0, w - side))
        crops.append(fine[y:y + side, x:x + side])
    return np.stack(crops)


def views(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scene 3 x S x S, details K x 3 x D x D): float32 RGB in [0, 1], as the network reads them."""
    return _views_of(_to_float(detail_view(_as_rgb(image))))  # shrink first: a 12-MP float copy
                                                               # costs more than the network


def evidence(pixels: np.ndarray) -> float:
    """How much a photo (float RGB, as read, or as shrunk for the detail view; never enlarged)
    lets the detector say, 0-1; its logits are scaled by it, so below 1 it is less sure. A
    photo under DETAIL_SIDE on its short side is enlarged for the crops: it has no fine
    detail to judge (a 20 x 20 noise image was called rain-spotted at 86 %). Pixels that do
    not correlate with their neighbours are noise or a pattern, not a photo."""
    size = min(1.0, min(pixels.shape[:2]) / DETAIL_SIDE) ** 2
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[::2]
    a, b = grey[:, :-1].ravel(), grey[:, 1:].ravel()
    if a.size < 2 or a.std() < 1e-3 or b.std() < 1e-3:
        return 0.05 * size  # one flat colour: nothing to judge
    photo = float(np.clip(np.corrcoef(a, b)[0, 1] / PHOTO_CORRELATION, 0.05, 1.0))
    return max(0.05, size * photo)


def _views_of(fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scene = _resize(fine, SCENE_SIDE, SCENE_SIDE)
    details = texture_crops(fine)
    return (np.ascontiguousarray(scene.transpose(2, 0, 1)),
            np.ascontiguousarray(details.transpose(0, 3, 1, 2)))


# --- weights and the network ------------------------------------------------------

def read_detector_state(path: str | Path = DETECTOR_WEIGHTS) -> dict[str, np.ndarray]:
    """The detector's arrays, checked against its sidecar's sha256."""
    return _read_detector(path)[0]


def _read_detector(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """(the detector's arrays, the sha256 of the file they were read from), checked against its sidecar."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    try:
        raw = path.read_bytes()
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as e:
        raise DetectorError(_("cannot read the detector's weights: {reason}: {path}").format(reason=e.strerror, path=e.filename)) from None
    except ValueError:
        raise DetectorError(_("{path} is not valid JSON").format(path=sidecar)) from None
    if meta.get("format") != DETECTOR_FORMAT or hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
        raise DetectorError(_("{path} is not this version's detector weights (format or checksum differ)").format(path=path))
    try:
        state = load_pickled(path)
    except CheckpointError as e:
        raise DetectorError(f"{path}: {e}") from None
    return {k: np.asarray(v, np.float32) for k, v in state.items()}, meta["sha256"]


# The network's inputs, fixed: one photo's scene and its crops (an exported model is built for these).
NETWORK_INPUTS = {"scene": (1, 3, SCENE_SIDE, SCENE_SIDE),
                  "details": (1, DETAIL_CROPS, 3, DETAIL_SIDE, DETAIL_SIDE)}


def _fitted_network(state: dict[str, np.ndarray], weights):
    """A fresh DegradationNet (imports paddle), checked to fit DETECT_CLASSES and ``state``'s shapes."""
    from .detector_network import CLASSES, DegradationNet

    if tuple(CLASSES) != DETECT_CLASSES:
        raise DetectorError("the detector network's classes differ from DETECT_CLASSES")
    network = DegradationNet()
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        wrong = sorted(set(expected.items()) ^ set(got.items()))[:3]
        raise DetectorError(_("{path} does not fit the detector network (e.g. {wrong})").format(path=weights, wrong=wrong))
    return network


def _paddle_runner(state, weights):
    """(scene, details) -> logits, in Paddle dygraph."""
    import paddle

    from .paddle_mode import eager_paddle

    with eager_paddle():
        network = _fitted_network(state, weights)
        network.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
        network.eval()

    def run(scene: np.ndarray, details: np.ndarray) -> np.ndarray:
        with eager_paddle(), paddle.no_grad():  # maybe another thread than the one that built it
            return network(paddle.to_tensor(scene), paddle.to_tensor(details)).numpy()
    return run


def _openvino_runner(state, sha256: str, weights, threads: int | None):
    """The network exported to OpenVINO once, run fp32 on the CPU:
    ((scene, details) -> logits, whether the model was cached, seconds spent exporting).

    The model is kept in the backends' cache, keyed by the weights' sha256, the
    network's source and classes and the export format, so a cached model was
    checked by :func:`_fitted_network` against the very weights and network it
    serves. Paddle is imported only to export, on a miss; on a hit, never.
    """
    from .backends import default_threads
    from .backends.cache import compile_cached, compiled_dir, model_dir, network_key
    from .backends.core import core
    from .backends.export import InputSpec, ensure_exported, export_network_onnx

    key = network_key("detector", sha256, NETWORK_INPUTS, sources=("detector_network.py",),
                      classes=list(DETECT_CLASSES))
    target = model_dir(key)
    inputs = [InputSpec(name, shape) for name, shape in NETWORK_INPUTS.items()]

    def export(workdir: Path) -> Path:
        return export_network_onnx(lambda: _fitted_network(state, weights), inputs, state.__getitem__,
                                   workdir, stem="detector")

    properties = {
        "INFERENCE_PRECISION_HINT": "f32",  # probabilities as Paddle's; bf16 would gain nothing here
        "INFERENCE_NUM_THREADS": int(threads or default_threads()),
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "CACHE_DIR": str(compiled_dir()),
    }
    compiled, (_, hit, seconds) = compile_cached(lambda: ensure_exported(target, key, export),
                                                 lambda xml: core().compile_model(str(xml), "CPU", properties))
    request = compiled.create_infer_request()

    def run(scene: np.ndarray, details: np.ndarray) -> np.ndarray:
        request.infer({"scene": scene, "details": details})
        return request.get_output_tensor(0).data.copy()
    return run, hit, seconds


class Detector:
    """The network with its weights, ready to call; one per process is enough.

    ``backend``: as for CMFNet (``backends.check_options``): ``auto`` runs it
    with OpenVINO on the CPU where OpenVINO is installed (unless
    ``CMFNET_BACKEND=paddle``), else with Paddle; ``openvino`` or ``paddle``
    force one. ``threads``: OpenVINO's thread count (default: every core
    this process may use). ``backend`` says which runs; ``cache_hit`` and
    ``export_seconds`` say whether OpenVINO's model had to be exported first.
    """

    def __init__(self, weights: str | Path = DETECTOR_WEIGHTS, backend: str = "auto",
                 threads: int | None = None):
        from .backends import check_options

        self.backend, _ = check_options(backend=backend, device="cpu")
        state, sha256 = _read_detector(weights)
        self.cache_hit, self.export_seconds = False, 0.0
        if self.backend == "openvino":
            self._run, self.cache_hit, self.export_seconds = _openvino_runner(state, sha256, weights, threads)
        else:
            self._run = _paddle_runner(state, weights)
        self._lock = threading.Lock()  # one graph / one infer request; the app may ask from two threads

    def __call__(self, image: np.ndarray) -> Detection:
        scene, details, weight = prepared(image)
        with self._lock:
            logits = self._run(scene[None], details[None])[0]
        return detection_of(logits, weight)


def prepared(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`views` and the :func:`evidence` the network's logits are scaled by."""
    rgb = _as_rgb(image)
    fine = _to_float(detail_view(rgb))
    enlarged = min(rgb.shape[:2]) < DETAIL_SIDE  # enlarging makes neighbours alike: judge as read
    return (*_views_of(fine), evidence(_to_float(rgb) if enlarged else fine))


def detection_of(logits: np.ndarray, weight: float = 1.0) -> Detection:
    """The network's logits, scaled by ``weight`` (:func:`evidence`), as probabilities."""
    logits = np.asarray(logits, np.float64) * weight
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return Detection(dict(zip(DETECT_CLASSES, (float(v) for v in p))))


_defaults: dict[str, Detector] = {}
_default_lock = threading.Lock()


def default_detector(backend: str = "auto") -> Detector:
    """The bundled detector, made once per process (for each ``backend`` asked for)."""
    with _default_lock:
        if backend not in _defaults:
            # CMFNET_DETECTOR: a detector of your own (trained with training/detector.py)
            _defaults[backend] = Detector(os.environ.get("CMFNET_DETECTOR") or DETECTOR_WEIGHTS,
                                          backend=backend)
        return _defaults[backend]


def detect(image: np.ndarray, detector: Detector | None = None) -> Detection:
    """What ``image`` (H x W x 1/2/3/4, uint8/uint16/float) most likely needs."""
    return (detector or default_detector())(image)
