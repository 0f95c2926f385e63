"""Train and validate the degradation detector (``cmfnet_core/detect.py``).

    python -m cmfnet_core.training.detector --data ../shared/data/clean \
        --data ../shared/data/clean-extra --out resources/weights/detector.pdparams \
        --validate ../shared/data

Each clean photo is degraded whole, by the same synthesis as the restoration
training (``synth.py``), into one of the four classes, ``none`` being the
photo untouched; every class then gets the same camera-like finish (a random
downscale, noise, JPEG) so that none of these is a cue. The views the network
reads are made by ``detect.views``, exactly as at inference, once per
degraded photo, and the network trains on them for a few epochs in PyTorch
(a twin with the Paddle network's parameter names).

``--validate DATA`` measures on real photos only: the degraded dev inputs
(``DATA/{deblur,dehaze,deraindrop}/input``), the real samples
(``DATA/samples``, named by task) and the clean dev targets (``DATA/*/gt``,
which should come out ``none``), and prints the confusion matrix. These are
never trained on.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .. import detect
from ..imageio import READABLE
from . import synth

CLASSES = detect.DETECT_CLASSES
DETECTOR_DRIZZLE_SHARE = 0.7
HAZE_MAX_CONTRAST = 0.8   # a haze positive keeps under this share of the photo's contrast (std)
RAIN_MIN_VISIBLE = 0.04   # a raindrop positive visibly changes this share of the photo or more
BLUR_MAX_DETAIL = 0.55    # a blur positive keeps under this share of its fine detail (the real
                          # dev pairs keep 0.37-0.70; softness on a fine photo keeps more)
SAMPLE_CLASS = {"deblur_": "deblur", "haze_": "dehaze", "raindrop_": "deraindrop"}


# --- the PyTorch twin ---------------------------------------------------------------

def twin():
    """DegradationNet in PyTorch, same layers and parameter names (Linear weights transposed)."""
    import torch
    from torch import nn

    from ..detector_network import DETAIL_WIDTHS, HIDDEN, SCENE_WIDTHS

    def encoder(widths):
        layers, channels = [], 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
            channels = width
        return nn.Sequential(*layers)

    def mean_and_max(f):
        return torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)

    class DegradationNetTwin(nn.Module):
        def __init__(self):
            super().__init__()
            self.scene = encoder(SCENE_WIDTHS)
            self.detail = encoder(DETAIL_WIDTHS)
            features = 2 * SCENE_WIDTHS[-1] + 2 * 2 * DETAIL_WIDTHS[-1]
            self.head = nn.Sequential(nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, len(CLASSES)))

        def features(self, scene, details):
            """What the head reads: the scene's and the crops' pooled features."""
            n, k, c, d, _ = details.shape
            s = mean_and_max(self.scene(scene - 0.5))
            crops = mean_and_max(self.detail(details.reshape(n * k, c, d, d) - 0.5)).reshape(n, k, -1)
            return torch.cat([s, crops.mean(dim=1), crops.amax(dim=1)], dim=1)

        def forward(self, scene, details):
            return self.head(self.features(scene, details))

    return DegradationNetTwin()


def twin_from_state(state: dict[str, np.ndarray]):
    """The twin holding a detector's weights (as ``detect.read_detector_state`` gives them)."""
    import torch

    model = twin()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(
        v.T if k.startswith("head.") and k.endswith(".weight") else v)) for k, v in state.items()})
    return model.eval()


def paddle_state(model) -> dict[str, np.ndarray]:
    """The twin's parameters as the Paddle network names and lays them out."""
    state = {}
    for key, value in model.state_dict().items():
        array = value.detach().float().cpu().numpy()
        if key.startswith("head.") and key.endswith(".weight"):
            array = array.T  # paddle's Linear is in x out
        state[key] = np.ascontiguousarray(array, np.float32)
    return state


# --- synthesis ----------------------------------------------------------------------

def degrade(photo: np.ndarray, label: str, rng: np.random.Generator, damage=None) -> np.ndarray:
    """A whole clean photo (uint8 RGB) degraded as ``label``, with a camera-like finish: uint8 RGB.
    ``damage(img, rng)``, if given, does the degrading instead of ``label``'s own synthesis."""
    img = synth.to_float(photo)
    h, w = img.shape[:2]
    if min(h, w) > 320 and rng.random() < 0.5:  # varied scene scale; never enlarged (that blurs)
        s = rng.uniform(max(0.5, 300 / min(h, w)), 1.0)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        img = np.ascontiguousarray(img[:, ::-1])
    if damage is not None:
        img = damage(img, rng)
    elif label == "deblur":
        img = visible_blur(img, rng)
    elif label == "dehaze":
        img = visible_haze(img, rng)
    elif label == "deraindrop":
        img = visible_raindrops(img, rng)
    elif rng.random() < 0.7:
        img = camera_softness(img, rng)
    if rng.random() < 0.7:
        img = synth.add_noise(img, rng, 0.01)
    if rng.random() < 0.8:
        img = synth.jpeg(img, rng, 60, 95)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def redrawn_until(draw, looks_damaged, tries: int = 6) -> np.ndarray:
    """``draw()`` again, up to ``tries`` times, until ``looks_damaged`` says its result shows
    the damage (the last draw otherwise)."""
    for _ in range(tries):
        out = draw()
        if looks_damaged(out):
            break
    return out


def visible_haze(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``synth.haze`` that took away a visible share of the contrast. A quarter of the
    restoration training's hazes keep over 78 % of it (the real hazy dev photos keep 68 %
    at most): such a photo looks fine, and as a positive it taught that any flat light is
    haze (sunlit clean video frames came out 'dehaze')."""
    contrast = img.std()
    return redrawn_until(lambda: synth.haze(img, rng)[0],
                         lambda out: out.std() < HAZE_MAX_CONTRAST * contrast)


def visible_even_haze(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Haze about as thick near as far, a little thicker toward the top: smog or mist over a
    whole city or street, a haze machine's fog. ``synth.haze`` grades haze by a depth map,
    so the near things stay clear; real smog photos, whose near buildings are as washed out
    as the far ones, came out 'none' or 'deblur' (issue 22)."""
    h = img.shape[0]
    contrast = img.std()

    def draw():
        towards_top = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None, None]
        t = np.clip(rng.uniform(0.25, 0.65) * (1 - rng.uniform(0.0, 0.5) * towards_top), 0.1, 1.0)
        tint = rng.normal(0, 0.03, 3)
        if rng.random() < 0.4:  # yellow-brown smog
            tint += np.array([0.05, 0.02, -0.08]) * rng.uniform(0.5, 1.5)
        airlight = np.clip(rng.uniform(0.6, 0.95) + tint, 0.4, 1.0).astype(np.float32)
        return img * t + airlight * (1 - t)
    return redrawn_until(draw, lambda out: out.std() < HAZE_MAX_CONTRAST * contrast)


def visible_raindrops(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``synth.raindrop``, mostly drizzle, that visibly changed at least RAIN_MIN_VISIBLE of
    the photo (a tenth of full scale or more): drops that look like the background behind
    them are invisible, and as positives they taught nothing the network could see; a
    photo with two faint drops looks fine, and such positives taught that any soft blotch
    is rain (clean photos came out so)."""
    def draw():
        return synth.raindrop(img, rng, density=rng.uniform(0.4, 1.0), scale=min(img.shape[:2]),
                              drizzle_share=DETECTOR_DRIZZLE_SHARE)[0]
    return redrawn_until(draw, lambda out: (np.abs(out - img).max(axis=2) > 0.1).mean() >= RAIN_MIN_VISIBLE)


def fine_detail(img: np.ndarray) -> float:
    """Mean fine-scale contrast (luma minus a 1-px Gaussian blur of it): what blur takes away."""
    grey = cv2.cvtColor(np.float32(img), cv2.COLOR_RGB2GRAY)
    return float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0)).mean())


def visible_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The restoration training's blur (video-like 60 %, a kernel otherwise) that took away a
    visible share of the fine detail: its shortest shakes (2 px) keep most of it and look
    like the soft lenses of ``camera_softness``, which are fine."""
    detail = fine_detail(img)
    return redrawn_until(lambda: (synth.video_blur if rng.random() < 0.6 else synth.blur)(img, rng)[0],
                         lambda out: fine_detail(out) < BLUR_MAX_DETAIL * detail)


def camera_softness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What photos that are fine still have: a slightly soft lens, a resampled copy, in-camera
    sharpening, flat light. Without these, the sharp training photos taught that any softness
    is blur (clean video frames came out 'deblur')."""
    h, w = img.shape[:2]
    kind = rng.integers(4)
    if kind == 3:  # flat or hard light: less contrast than haze takes, a brighter or darker exposure
        mean = img.mean()
        flat = mean + (img - mean) * rng.uniform(HAZE_MAX_CONTRAST, 1.0)
        return np.clip(flat, 0, 1) ** rng.uniform(0.7, 1.3)
    if kind == 0:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.3))
    if kind == 1:  # a video frame or a phone's upscaled crop
        s = rng.uniform(0.4, 0.9)
        small = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    return np.clip(img + rng.uniform(0.3, 1.0) * (img - soft), 0, 1)


def read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else bgr[:, :, ::-1].copy()


def photos_in(folders) -> list[Path]:
    return sorted(p for folder in folders for p in Path(folder).iterdir()
                  if p.suffix.lower() in READABLE)


def make_dataset(folders, variants: int, seed: int, labels=CLASSES, log=print, damage=None):
    """Views of every clean photo degraded ``variants`` times (``labels`` in turn; see
    :func:`degrade` for ``damage``): uint8 arrays."""
    rng = np.random.default_rng(seed)
    scenes, details, targets = [], [], []
    paths = photos_in(folders)
    start = time.perf_counter()
    for n, path in enumerate(paths):
        photo = read_rgb(path)
        if photo is None:
            continue
        for v in range(variants):
            label = labels[(n + v) % len(labels)]
            scene, crops = detect.views(degrade(photo, label, rng, damage))
            scenes.append(np.round(scene * 255).astype(np.uint8))
            details.append(np.round(crops * 255).astype(np.uint8))
            targets.append(CLASSES.index(label))
        if n % 50 == 0:
            log(f"synthesis: {n}/{len(paths)} photos, {time.perf_counter() - start:.0f} s")
    return np.stack(scenes), np.stack(details), np.array(targets, np.int64)


# --- training -----------------------------------------------------------------------

def cached_dataset(data, variants: int, seed: int, cache: Path | None, labels=CLASSES, log=print):
    """``make_dataset``, kept in ``cache`` (.npz) for the next run with the same settings."""
    import hashlib

    # the synthesis and the views decide the data: any change to their code makes it afresh
    code = b"".join(Path(module.__file__).read_bytes() for module in (synth, detect, sys.modules[__name__]))
    key = {"data": [str(d) for d in data], "variants": variants, "seed": seed,
           "code": hashlib.sha256(code).hexdigest()[:16]}
    if tuple(labels) != CLASSES:
        key["labels"] = list(labels)
    key = json.dumps(key)
    if cache and cache.exists():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                log(f"dataset: from {cache}")
                return stored["scenes"], stored["details"], stored["labels"]
    scenes, details, labels = make_dataset(data, variants, seed, labels, log)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=key, scenes=scenes, details=details, labels=labels)
    return scenes, details, labels


def train(data, epochs: int, variants: int, seed: int = 0, lr: float = 2e-3, batch: int = 32,
          threads: int | None = None, cache: Path | None = None, extra_none: int = 0, log=print):
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    scenes, details, labels = cached_dataset(data, variants, seed, cache, log=log)
    if extra_none:
        # More fine photos than damaged ones of each kind: a user's photo that looks fine
        # should stay alone; with equal shares, soft but clean video frames came out 'deblur'.
        more = cached_dataset(data, extra_none, seed + 1000,
                              cache and cache.with_name(cache.stem + f"-none{extra_none}.npz"),
                              labels=("none",), log=log)
        scenes, details, labels = (np.concatenate(pair) for pair in zip((scenes, details, labels), more))
    log(f"dataset: {len(labels)} views, per class {np.bincount(labels, minlength=len(CLASSES)).tolist()}")
    model = twin()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(labels) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed + 1)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(labels))
        losses, right = [], np.zeros(len(CLASSES), int)
        model.train()
        for b in range(len(labels) // batch):
            idx = order[b * batch:(b + 1) * batch]
            s = torch.from_numpy(scenes[idx]).float() / 255
            d = torch.from_numpy(details[idx]).float() / 255
            if rng.random() < 0.5:  # mirror: the classes do not care
                s, d = s.flip(-1), d.flip(-1)
            y = torch.from_numpy(labels[idx])
            logits = model(s, d)
            loss = F.cross_entropy(logits, y, label_smoothing=0.05)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            right += np.bincount(y[logits.argmax(1) == y].numpy(), minlength=len(CLASSES))
        seen = np.bincount(labels[order[:batch * (len(labels) // batch)]], minlength=len(CLASSES))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                        "train_accuracy": float(right.sum() / seen.sum()),
                        "per_class": dict(zip(CLASSES, (round(float(v), 3) for v in right / seen)))})
        log(json.dumps(history[-1]))
    model.eval()
    return model, history


# --- validation on real photos ------------------------------------------------------

def real_photos(data: Path) -> list[tuple[Path, str]]:
    """(photo, true class) for the real degraded dev inputs and samples, and the clean targets."""
    found = []
    for task in detect.TASKS:
        found += [(p, task) for p in photos_in([data / task / "input"])]
        found += [(p, "none") for p in photos_in([data / task / "gt"])]
    for p in photos_in([data / "samples"]):
        for prefix, task in SAMPLE_CLASS.items():
            if p.name.startswith(prefix):
                found.append((p, task))
    return found


def confusion(predict, items) -> dict:
    """Rows: true class; columns: the most likely class; plus the accuracies the issue asks
    for, and what the tool then does (:attr:`~cmfnet_core.detect.Detection.restore_task`:
    a photo is left alone when it looks fine or the detector is unsure)."""
    matrix = np.zeros((len(CLASSES), len(CLASSES)), int)
    wrong = []
    restored_right = skipped_clean = 0
    for path, truth in items:
        got = predict(read_rgb(path))
        matrix[CLASSES.index(truth), CLASSES.index(got.task)] += 1
        restored_right += truth != "none" and got.restore_task == truth
        skipped_clean += truth == "none" and got.restore_task is None
        if got.task != truth:
            wrong.append(f"{path.parent.parent.name}/{path.parent.name}/{path.name}: {truth} -> "
                         f"{got.task} {got.confidence:.2f}")
    degraded, clean = max(matrix[:3].sum(), 1), max(matrix[3].sum(), 1)
    return {"classes": list(CLASSES), "matrix": matrix.tolist(),
            "degraded_right": float(np.trace(matrix[:3, :3]) / degraded),
            "clean_none": float(matrix[3, 3] / clean),
            "degraded_restored_right": float(restored_right / degraded),
            "clean_left_alone": float(skipped_clean / clean),
            "n": int(matrix.sum()), "wrong": wrong}


def format_confusion(result: dict) -> str:
    head = "true \\ called  " + "".join(f"{c:>11}" for c in result["classes"])
    rows = [f"{c:<14}" + "".join(f"{v:>11}" for v in row) for c, row in zip(result["classes"], result["matrix"])]
    return "\n".join([head, *rows,
                      f"degraded photos called right: {100 * result['degraded_right']:.0f} %; "
                      f"clean photos called none: {100 * result['clean_none']:.0f} %",
                      f"what the tool does: degraded photos restored with the right task "
                      f"{100 * result['degraded_restored_right']:.0f} %; clean photos left alone "
                      f"{100 * result['clean_left_alone']:.0f} %"])


def log_confusion(result: dict, log) -> dict:
    """The matrix, the rates and each miss, one line each; returns ``result``."""
    log(format_confusion(result))
    for line in result["wrong"]:
        log(f"  wrong: {line}")
    return result


def twin_predictor(model):
    import torch

    def predict(image):
        scene, crops, weight = detect.prepared(image)  # as the tool does (detect.Detector)
        with torch.no_grad():
            logits = model(torch.from_numpy(scene[None]), torch.from_numpy(crops[None])).numpy()[0]
        return detect.detection_of(logits, weight)
    return predict


# --- writing ------------------------------------------------------------------------

def save(state: dict[str, np.ndarray], out: Path, provenance: dict) -> Path:
    """``out`` (.pdparams) and its JSON sidecar, in the detector's format."""
    from ..weights import write_params

    return write_params(state, out, {"format": detect.DETECTOR_FORMAT, "classes": list(CLASSES),
                                     "provenance": provenance})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmfnet_core.training.detector", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", metavar="DIR", help="folder of clean photos (repeat)")
    p.add_argument("--out", type=Path)
    p.add_argument("--validate", type=Path, default=None, metavar="DATA",
                   help="the shared data folder: real dev inputs, samples and clean targets")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="with --validate, no training: validate these detector weights as the "
                        "tool runs them")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--cache", type=Path, default=None, metavar="FILE.npz",
                   help="keep the synthesised views here and reuse them next time")
    p.add_argument("--variants", type=int, default=12, help="degraded copies of each clean photo")
    p.add_argument("--extra-none", type=int, default=0, metavar="N",
                   help="N more untouched copies of each photo (a prior toward 'none')")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if a.weights:
        if not a.validate:
            p.error("--weights needs --validate")
        log_confusion(confusion(detect.Detector(a.weights), real_photos(a.validate)), log)
        return 0
    if not a.data or not a.out:
        p.error("training needs --data and --out (or validate given weights: --validate and --weights)")
    start = time.perf_counter()
    model, history = train(a.data, a.epochs, a.variants, a.seed, a.lr, threads=a.threads, cache=a.cache, extra_none=a.extra_none, log=log)
    provenance = {"kind": "bundled", "trained_by": "python -m cmfnet_core.training.detector",
                  "epochs": a.epochs, "variants": a.variants, "extra_none": a.extra_none, "lr": a.lr, "seed": a.seed,
                  "data": [str(d) for d in a.data], "wall_time_s": round(time.perf_counter() - start, 1),
                  "history": history}
    if a.validate:
        provenance["validation"] = log_confusion(confusion(twin_predictor(model), real_photos(a.validate)), log)
    print(save(paddle_state(model), a.out, provenance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
