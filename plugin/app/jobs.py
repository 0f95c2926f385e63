"""What the app asks of the engine, as plain Python (no Qt).

A :class:`Job` is a unit of background work: a function of ``(progress,
cancel)`` plus a kind and a cancel token. ``workers.py`` runs jobs on a worker
thread; this module says *what* they do, so it can be tested without Qt.

Each job ends in exactly one of: succeeded (with a result), cancelled, failed
(with the title and message of :func:`cmfnet_core.errors.classify`, said by ``workers.py``).
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cmfnet_core.detect import AUTO_TASK
from cmfnet_core.i18n import _
from cmfnet_core.engine import (DEFAULT_OVERLAP, KEEP_BACKENDS, LIGHT_CONTEXT, PREVIEW_COARSE_LONG_SIDE,
                                PREVIEW_LONG_SIDE, CancelToken, Restorer, auto_tile, downscale,
                                downscaled_size, preview_tile_shape)
from cmfnet_core.weights import TASKS, WeightsError, resolve_weights

Progress = Callable[[int, int], None]
Work = Callable[[Progress, CancelToken], Any]

_ids = itertools.count(1)

# Photos a first preview is most likely of, most common first: phones (4:3) and cameras
# (3:2), upright and on their side (EXIF orientation is applied before the preview). Their
# first looks fill the warm-up's budget (warm_shapes); a final pass builds its own model
# (0.4 s from OpenVINO's disk cache) while the first look is on screen.
TYPICAL_PHOTOS = ((3024, 4032), (4032, 3024), (4000, 6000), (6000, 4000))

# Kinds of job, used to supersede or cancel a family of jobs at once.
PREVIEW, REGION, APPLY, BATCH, READ, SAVE, IMPORT, WARMUP = (
    "preview", "region", "apply", "batch", "read", "save", "import", "warmup")
DETECT = "detect"  # what a photo needs, for the Automatic choice
SIZE = "size"  # a photo's size from its header, so the warm-up can start before it is decoded


@dataclass(eq=False)  # identity, not field-by-field (fields hold arrays)
class Job:
    """One piece of background work, and what its outcome does (``on_success``, ``on_failure``)."""

    kind: str
    work: Work
    label: str = ""
    context: dict = field(default_factory=dict)
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))
    thread_id: int | None = None  # set by the worker: the thread that ran it
    # called with (job, result) on the runner's thread (the GUI's) when the job succeeds,
    # before the runner's ``succeeded`` signal: each job says what its outcome does
    on_success: Callable[[Job, Any], None] | None = None
    # likewise with (job, title, message) when it fails: says it in its own way
    on_failure: Callable[[Job, str, str], None] | None = None

    def cancel(self) -> None:
        self.token.cancel()


@dataclass(frozen=True)
class EngineOptions:
    """How tiles run; mirrors the Restorer's keyword arguments."""

    tile: int = 0  # 0: automatic (engine.auto_tile), the CLI's, GIMP's and right-click's choice
    overlap: int = DEFAULT_OVERLAP
    device: str = "cpu"
    backend: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def restorer_kwargs(self) -> dict:
        return dict(tile=self.tile, overlap=self.overlap, device=self.device,
                    backend=self.backend, precision=self.precision, threads=self.threads)


class RestorerCache:
    """Restorers built on first use and kept warm, one per (task, weights file, options).

    ``get`` is called from the worker thread; building a Restorer reads the
    weights file, so it belongs off the GUI thread.
    """

    def __init__(self, factory: Callable[..., Restorer] = Restorer, keep: int = 3):
        self._factory = factory
        self._keep = keep
        self._items: dict[tuple, Restorer] = {}
        self._lock = threading.Lock()
        self._notes: list[str] = []

    def get(self, task: str, options: EngineOptions, weights: str | Path | None = None) -> Restorer:
        path = Path(resolve_weights(task, weights)).resolve()
        key = (task, str(path), path.stat().st_mtime if path.exists() else 0, options)
        with self._lock:
            restorer = self._items.pop(key, None)
            if restorer is None:
                restorer = self._factory(task, path, **options.restorer_kwargs())
                # int8 calibrated and checked here, not in the first tile, and what it decided
                # (e.g. these weights lose too much in int8: the float path runs) told once
                self._notes += restorer.prepare_precision()
            self._items[key] = restorer  # most recently used last
            while len(self._items) > self._keep:
                self._items.pop(next(iter(self._items)))
            return restorer

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def take_notes(self) -> list[str]:
        """What the restorers built since the last call have to tell the user (once each)."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes




# --- the work itself -------------------------------------------------------------

def preview_sides(height: int, width: int, final_side: int = PREVIEW_LONG_SIDE) -> tuple[int, ...]:
    """The long sides a ``height`` x ``width`` photo's preview runs at, in order: a first
    look at :data:`PREVIEW_COARSE_LONG_SIDE`, then the final one at ``final_side`` (the
    long side the view shows the photo at, in device pixels; at least
    :data:`PREVIEW_LONG_SIDE`, at most the photo's). The first look only where it costs at
    most half the final pass (a quarter for most photos); a smaller photo is previewed in
    one pass, since a first look that is nearly as slow would only push the final one back."""
    final = min(max(final_side, PREVIEW_LONG_SIDE), max(height, width, PREVIEW_LONG_SIDE))
    pixels = max(downscaled_size(height, width, final))
    if pixels * pixels >= 2 * PREVIEW_COARSE_LONG_SIDE * PREVIEW_COARSE_LONG_SIDE:
        return PREVIEW_COARSE_LONG_SIDE, final
    return (final,)


def warm_shapes(photos, first_look_only: bool = False, context: int = LIGHT_CONTEXT) -> list[tuple[int, int]]:
    """The tile shapes the previews of ``photos`` ((height, width) each, most likely first)
    run: every first look before any final pass, since the first look is what the user
    waits for, and a cancel between shapes leaves the most useful ones warm.
    ``first_look_only``: the first passes alone. At most as many shapes as the restorer
    keeps backends for (:data:`KEEP_BACKENDS`): warming more would evict the first ones.
    ``context``: the restorer's (each preview tile is framed by it)."""
    passes = [[preview_tile_shape(*photo, long_side=side, context=context) for side in preview_sides(*photo)]
              for photo in photos]
    first = [shapes[0] for shapes in passes]
    rest = [] if first_look_only else [shape for shapes in passes for shape in shapes[1:]]
    return list(dict.fromkeys(first + rest))[:KEEP_BACKENDS]


def warm_detector() -> None:
    """Build the detector and run it once: with Automatic it looks at every photo before
    anything is restored. Without its weights there is nothing to warm, and no error here:
    the photo's DETECT job says why, where the user sees it."""
    from cmfnet_core.detect import SCENE_SIDE, DetectorError, default_detector

    try:
        detector = default_detector()
    except DetectorError:
        return
    detector(np.full((SCENE_SIDE, SCENE_SIDE, 3), 128, np.uint8))


def warmup_work(cache: RestorerCache, task: str, options: EngineOptions, weights=None,
                photos=None, *, opening: bool = False, fallback: str | None = TASKS[0]) -> Work:
    """Load the weights and build what the first preview will run, so it is not also the slowest.

    A preview runs as one tile of the downscaled photo, first a coarse look then the final
    one (:func:`preview_sides`), and the OpenVINO backend compiles a model per tile shape,
    so what to build follows from the photo's size alone (:func:`warm_shapes`).
    ``photos``: the (height, width) of the photos to prepare for; before any photo is known,
    :data:`TYPICAL_PHOTOS`. Each shape is built and run once (:meth:`Restorer.warm`).
    ``opening``: for a photo being opened, whose preview is next in line: only its first
    look's model is built, and not run, since the first look itself runs next (a run on
    zeros, or a final shape, would only hold it back). A cancel request is honoured between
    shapes; ``progress`` counts them. The full-resolution tiles are not built: a full run
    takes far longer than compiling its model, a preview does not.

    ``task`` may be Automatic (``"auto"``): then the detector is warmed first, since it runs
    first on every photo, and then ``fallback``, the task Automatic most likely picks (None:
    the detector alone). "auto" itself has no weights, so it is never asked of the cache.
    """
    def work(progress: Progress, cancel: CancelToken) -> None:
        restores = task
        if task == AUTO_TASK:
            warm_detector()
            restores = fallback
            if restores is None:
                return
        cancel.raise_if_cancelled()
        restorer = cache.get(restores, options, weights)
        shapes = warm_shapes(photos or TYPICAL_PHOTOS, first_look_only=opening, context=restorer.context)
        restorer.warm(shapes, cancel, progress, run=not opening)
    return work


def preview_work(cache: RestorerCache, task: str, options: EngineOptions, image: np.ndarray,
                 weights=None, long_side: int = PREVIEW_LONG_SIDE) -> Work:
    """Restore a downscaled copy (long side ``long_side``): a pass of the preview.

    A thumbnail (long side up to :data:`PREVIEW_LONG_SIDE`) runs as one tile whatever the
    tile setting: a 512 x 340 thumbnail cut into tiles of 256 computed 2.3x its pixels.
    A screen-sized pass runs in tiles of at least the automatic size (with their context). A cancel that
    comes while a tile runs cannot stop it, but its result is then not returned: a
    superseded preview is never shown."""
    def work(progress: Progress, cancel: CancelToken) -> np.ndarray:
        small = downscale(image, long_side)
        restorer = cache.get(task, options, weights)
        if small.shape[:2] == image.shape[:2] and max(small.shape[:2]) > PREVIEW_LONG_SIDE:
            restored = restorer.restore(small, progress=progress, cancel=cancel)  # 1:1: Apply's own run
        elif max(small.shape[:2]) <= PREVIEW_LONG_SIDE:
            restored = restorer.restore_whole(small, progress=progress, cancel=cancel)
        else:  # a downscaled copy is not Apply's output anyway: the largest tiles that fit
            tile = max(restorer.tile, auto_tile(restorer.weights.config))
            restored = restorer.restore(small, progress=progress, cancel=cancel, tile=tile)
        cancel.raise_if_cancelled()
        return restored
    return work


def view_work(cache: RestorerCache, task: str, options: EngineOptions, image: np.ndarray,
              rect: tuple[int, int, int, int], scale: float, weights=None, *,
              first: tuple[float, float] | None = None, partial=None) -> Work:
    """The part ``rect`` = (x, y, w, h) of the photo in view, restored at ``scale`` restored
    pixels per photo pixel (the screen's; 1 or more: 1:1). At 1:1 it is exactly what the
    full run writes there (:meth:`Restorer.restore_region`), streamed in: the tiles nearest
    ``first`` (a photo point: the split line) first, ``partial(region, finished)`` after
    each (called on the worker thread). Below 1:1, the same region of the photo downscaled
    to ``scale``, restored in tiles with their context around it."""
    def work(progress: Progress, cancel: CancelToken) -> np.ndarray:
        restorer = cache.get(task, options, weights)
        if scale >= 1.0:
            return restorer.restore_region(image, rect, progress=progress, cancel=cancel,
                                           first=first, partial=partial)
        import cv2

        x, y, w, h = rect
        height, width = image.shape[:2]
        small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        x0, y0 = int(x * small_w / width), int(y * small_h / height)
        x1, y1 = -(-(x + w) * small_w // width), -(-(y + h) * small_h // height)
        restored = restorer.restore_region(small, (x0, y0, max(1, x1 - x0), max(1, y1 - y0)),
                                           progress=progress, cancel=cancel)
        cancel.raise_if_cancelled()
        return restored
    return work


def restore_work(cache: RestorerCache, task: str, options: EngineOptions, image: np.ndarray,
                 weights=None) -> Work:
    """Restore the full-resolution image."""
    def work(progress: Progress, cancel: CancelToken) -> np.ndarray:
        return cache.get(task, options, weights).restore(image, progress=progress, cancel=cancel)
    return work


def region_work(cache: RestorerCache, task: str, options: EngineOptions, image: np.ndarray,
                rect: tuple[int, int, int, int], weights=None) -> Work:
    """Restore ``rect`` = (x, y, w, h) at full resolution exactly as the full run will
    (:meth:`Restorer.restore_region`: the same tiles, context and blend), so a 1:1
    preview is the result, not an approximation of it."""
    def work(progress: Progress, cancel: CancelToken) -> np.ndarray:
        return cache.get(task, options, weights).restore_region(image, rect, progress=progress, cancel=cancel)
    return work


def size_work(path: str | Path) -> Work:
    def work(progress: Progress, cancel: CancelToken) -> tuple[int, int] | None:
        from cmfnet_core.imageio import header_size

        return header_size(path)
    return work


def read_work(path: str | Path) -> Work:
    def work(progress: Progress, cancel: CancelToken):
        from cmfnet_core.imageio import read_image

        return read_image(path)
    return work


def save_work(path: str | Path, pixels: np.ndarray, info, overwrite: bool) -> Work:
    def work(progress: Progress, cancel: CancelToken) -> Path:
        from cmfnet_core.imageio import write_image

        return write_image(path, pixels, info=info, overwrite=overwrite)
    return work


def batch_work(cache: RestorerCache, task: str, options: EngineOptions, path: str | Path,
               weights=None, out_dir=None) -> Work:
    """Read, restore and write ``NAME.TASK.EXT`` beside the file; nothing is written if
    the run is cancelled or fails."""
    def work(progress: Progress, cancel: CancelToken) -> Path:
        from cmfnet_core.imageio import output_path, read_image, write_image

        photo = read_image(path)
        cancel.raise_if_cancelled()
        out = cache.get(task, options, weights).restore(photo.pixels, progress=progress, cancel=cancel)
        cancel.raise_if_cancelled()
        return write_image(output_path(path, task, out_dir), out, info=photo.info, next_free=True)
    return work


def detect_work(image: np.ndarray) -> Work:
    """What the photo needs (:func:`cmfnet_core.detect.detect`): its Detection. Runs on
    the engine's thread like the restorations: the detector is a network too."""
    def work(progress: Progress, cancel: CancelToken):
        from cmfnet_core.detect import detect

        return detect(image)
    return work


@dataclass(frozen=True)
class AutoOutcome:
    """What :func:`auto_batch_work` made of one photo: the file written, or None when
    the photo was left as it is (it looks fine), and why."""

    output: Path | None
    detection: Any  # cmfnet_core.detect.Detection


def auto_batch_work(cache: RestorerCache, options: EngineOptions, path: str | Path,
                    out_dir=None) -> Work:
    """:func:`batch_work` for the Automatic choice: read, find out what the photo needs,
    restore that and write ``NAME.TASK.EXT``; a photo that needs nothing is not written."""
    def work(progress: Progress, cancel: CancelToken) -> AutoOutcome:
        from cmfnet_core.detect import detect
        from cmfnet_core.imageio import output_path, read_image, write_image

        photo = read_image(path)
        cancel.raise_if_cancelled()
        found = detect(photo.pixels)
        task = found.likely_task  # an unsure photo too: a batch was asked to restore (detect.py)
        if task is None:
            return AutoOutcome(None, found)
        cancel.raise_if_cancelled()
        out = cache.get(task, options).restore(photo.pixels, progress=progress, cancel=cancel)
        cancel.raise_if_cancelled()
        written = write_image(output_path(path, task, out_dir), out, info=photo.info, next_free=True)
        return AutoOutcome(written, found)
    return work


def import_work(task: str, source: str | Path) -> Work:
    def work(progress: Progress, cancel: CancelToken) -> Path:
        from cmfnet_core.weights import import_weights

        return import_weights(task, source, kind="official")
    return work


# --- helpers ---------------------------------------------------------------------------

def blend(original: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """``original + strength * (restored - original)`` in the original's pixel type."""
    strength = float(min(1.0, max(0.0, strength)))
    if strength >= 1.0:
        return restored
    if strength <= 0.0:
        return original.copy()
    mixed = original.astype(np.float32)
    mixed += strength * (restored.astype(np.float32) - mixed)
    if np.issubdtype(original.dtype, np.integer):
        info = np.iinfo(original.dtype)
        return np.clip(np.rint(mixed), info.min, info.max).astype(original.dtype)
    return mixed.astype(original.dtype)


class Eta:
    """Remaining time from the pace of the tiles done so far."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._start: float | None = None

    def update(self, done: int, total: int) -> float | None:
        now = self._clock()
        if done == 0 or self._start is None:
            self._start = now
            return None
        elapsed = now - self._start
        return elapsed / done * (total - done)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return _("estimating…")
    seconds = int(round(seconds))
    if seconds < 60:
        return _("about {seconds} s left").format(seconds=max(seconds, 1))
    minutes, seconds = divmod(seconds, 60)
    return _("about {minutes} min {seconds} s left").format(minutes=minutes, seconds=f"{seconds:02d}")


def describe_weights(task: str) -> tuple[str, str, bool]:
    """(short label, tooltip, installed?) for the weights the engine would use for ``task``."""
    from cmfnet_core.weights import default_weights

    try:
        entry = default_weights(task)
    except (WeightsError, OSError) as exc:
        return _("weights: error"), str(exc), False
    if entry is None:
        return _("no weights installed"), _("No weights are installed for {task}.").format(task=task), False
    return entry.label, (f"{task}: {entry.description}\n{entry.path}\n"
                         + _("Restore ▸ Weights… shows the others and downloads the authors'")), True
