"""Honest validation of detector recipes, and the run that ships from it.

    python -m cmfnet_core.training.detector_cv features --data ../shared/data \\
        --weights resources/weights/detector.pdparams --out runs/detector-cv/features.npz
    python -m cmfnet_core.training.detector_cv cv --features runs/detector-cv/features.npz
    python -m cmfnet_core.training.detector_cv final --features runs/detector-cv/features.npz \\
        --recipe real4 --out resources/weights/detector.pdparams

Every real photo is put in a fold by source (``detector_folds.py``); the last
fold is held out. ``cv`` scores each recipe on each of the other folds,
trained without it, for several seeds, and prints the mean and spread: a
recipe is chosen on these figures only. ``final`` trains the chosen recipe on
every fold but the held-out one, fits the temperature on the cross-validated
predictions of those folds, and scores the held-out fold once.

What is trained: the head of the shipped detector, on the pooled features of
its two encoders (kept as they are). The features of every view are computed
once (``features``), so a recipe costs seconds per fold and seed on a CPU and
many can be compared. The views: the clean photos degraded by the synthesis of
``detector.degrade`` (the bulk), real photos of the training folds in a few
re-framings each, and views that are no photo at all (noise, flat colour,
gradients, tiny crops), whose target is "no idea": every class alike.
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
from . import detector as det
from . import detector_folds as folds
from . import synth

CLASSES = detect.DETECT_CLASSES
NONE = CLASSES.index("none")
UNSURE_LABEL = -1          # a view that is no photo: the target is every class alike
SOURCE_SYNTH, SOURCE_REAL, SOURCE_NOISE = 0, 1, 2


# --- views -----------------------------------------------------------------------------

def reframed(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real photo as another camera or editor might have saved it: a crop of 60-100 % of
    each side, a downscale (never below 240 px short side), a mirror, a JPEG."""
    h, w = photo.shape[:2]
    if max(h, w) > 2048:  # the detector reads at most 1024 px: shrink the float copy's cost first
        s = 2048 / max(h, w)
        photo = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    img = synth.to_float(photo)
    h, w = img.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    img = img[y:y + ch, x:x + cw]
    if min(ch, cw) > 300 and rng.random() < 0.6:
        s = rng.uniform(max(0.35, 240 / min(ch, cw)), 1.0)
        img = cv2.resize(img, (round(cw * s), round(ch * s)), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        img = np.ascontiguousarray(img[:, ::-1])
    if rng.random() < 0.5:
        img = synth.jpeg(img, rng, 70, 95)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def no_photo(rng: np.random.Generator, clean: list[Path]) -> np.ndarray:
    """Something that is not a photo one could judge: noise, flat colour, a gradient, stripes,
    or a photo shrunk or cropped to a few dozen pixels."""
    kind = rng.integers(6)
    h, w = (int(v) for v in rng.integers(8, 400, 2)) if kind < 4 else (int(v) for v in rng.integers(8, 64, 2))
    if kind == 0:
        img = rng.random((h, w, 3))
    elif kind == 1:
        img = rng.random(3) + rng.normal(0, rng.uniform(0.02, 0.4), (h, w, 3 if rng.random() < 0.7 else 1))
    elif kind == 2:
        ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(-1, 1, 3) + rng.random(3)
        img = np.broadcast_to(ramp, (h, w, 3)) + rng.normal(0, rng.uniform(0, 0.05), (h, w, 3))
    elif kind == 3:
        period = int(rng.integers(2, 24))
        img = ((np.arange(w)[None, :] // period + np.arange(h)[:, None] // period * (rng.random() < 0.5)) % 2)
        img = img[:, :, None] * rng.random(3) + rng.random(3) * 0.5
    else:
        photo = det.read_rgb(clean[rng.integers(len(clean))])
        if kind == 4:
            img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA) / 255.0
        else:
            y, x = rng.integers(0, photo.shape[0] - h), rng.integers(0, photo.shape[1] - w)
            img = photo[y:y + h, x:x + w] / 255.0
    return np.clip(np.asarray(img, np.float64) * 255 + 0.5, 0, 255).astype(np.uint8)


def feature_rows(model, images) -> np.ndarray:
    import torch

    rows = []
    with torch.no_grad():
        for image in images:
            scene, crops = detect.views(image)
            rows.append(model.features(torch.from_numpy(scene[None]), torch.from_numpy(crops[None])).numpy()[0])
    return np.stack(rows).astype(np.float32)


def extract(data: Path, weights: Path, out: Path, variants: int = 8, extra_none: int = 2,
            reframings: int = 8, noise_views: int = 400, seed: int = 0, log=print) -> Path:
    """Features of every view (see the module's docstring), saved to ``out`` (.npz)."""
    import torch

    torch.set_num_threads(2)
    model = det.twin_from_state(detect.read_detector_state(weights))
    head = {k: v for k, v in detect.read_detector_state(weights).items() if k.startswith("head.")}
    items = folds.labelled_photos(data)
    rng = np.random.default_rng(seed)
    feats, labels, source, item_of = [], [], [], []
    eval_feats = []
    clean = [p for p, _, s in items if p.parent.name in ("clean", "clean-extra")]
    start = time.perf_counter()
    for i, (path, cls, _) in enumerate(items):
        photo = det.read_rgb(path)
        eval_feats.append(feature_rows(model, [photo])[0])
        if path.parent.name in ("clean", "clean-extra"):  # synthesis: every class in turn
            chosen = [CLASSES[(i + v) % len(CLASSES)] for v in range(variants)] + ["none"] * extra_none
            images = [det.degrade(photo, label, rng) for label in chosen]
            kind = SOURCE_SYNTH
        else:
            chosen = [cls] * reframings
            images = [reframed(photo, rng) for _ in chosen]
            kind = SOURCE_REAL
        feats.append(feature_rows(model, images))
        labels += [CLASSES.index(c) for c in chosen]
        source += [kind] * len(chosen)
        item_of += [i] * len(chosen)
        if i % 25 == 0:
            log(f"features: {i}/{len(items)} photos, {time.perf_counter() - start:.0f} s")
    feats.append(feature_rows(model, [no_photo(rng, clean) for _ in range(noise_views)]))
    labels += [UNSURE_LABEL] * noise_views
    source += [SOURCE_NOISE] * noise_views
    item_of += [-1] * noise_views
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, feats=np.concatenate(feats), labels=np.array(labels), source=np.array(source),
             item_of=np.array(item_of), eval_feats=np.stack(eval_feats),
             paths=np.array([str(p) for p, _, _ in items]),
             truth=np.array([CLASSES.index(c) for _, c, _ in items]),
             sources=np.array([s for _, _, s in items]),
             head=json.dumps({k: v.tolist() for k, v in head.items()}))
    log(f"features: {len(labels)} views of {len(items)} photos in {time.perf_counter() - start:.0f} s -> {out}")
    return out


# --- the head ---------------------------------------------------------------------------

RECIPES = {
    # name: (start from the shipped head?, real views' weight, epochs); the real views
    # together weigh real_weight / 4 of the synthetic views together (``train_head``)
    "shipped": None,                       # run 14 as it is
    "synth": (True, 0.0, 30),              # the head again, synthetic views only (+ no-photo views)
    "real1": (True, 1.0, 30),              # + real views of the training folds, a quarter of the weight
    "real4": (True, 4.0, 30),              # + real views, as much weight as the synthetic ones
    "real4-fresh": (False, 4.0, 60),       # as real4, from a fresh head
    "real12": (True, 12.0, 30),            # real views, 3x the synthetic ones' weight
}


class Features:
    def __init__(self, path: Path):
        with np.load(path) as f:
            self.feats, self.labels, self.source, self.item_of = f["feats"], f["labels"], f["source"], f["item_of"]
            self.eval_feats, self.truth = f["eval_feats"], f["truth"]
            self.paths, self.sources = [str(p) for p in f["paths"]], [str(s) for s in f["sources"]]
            self.head = {k: np.array(v, np.float32) for k, v in json.loads(str(f["head"])).items()}
        items = [(Path(p), CLASSES[t], s) for p, t, s in zip(self.paths, self.truth, self.sources)]
        self.fold_of_source = folds.assign_folds(items)
        self.item_fold = np.array([self.fold_of_source[s] for s in self.sources])
        self.heldout = folds.FOLDS - 1


def head_module(start: dict | None):
    import torch
    from torch import nn

    from ..detector_network import HIDDEN

    head = nn.Sequential(nn.Linear(2 * 64 + 2 * 2 * 64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, len(CLASSES)))
    if start is not None:
        head.load_state_dict({k.removeprefix("head."): torch.from_numpy(v.T.copy() if k.endswith("weight") else v)
                              for k, v in start.items()})
    return head


def soft_targets(labels: np.ndarray, smoothing: float = 0.05) -> np.ndarray:
    """Label smoothing as run 14 trained; a no-photo view's target is every class alike."""
    k = len(CLASSES)
    target = np.full((len(labels), k), 1 / k, np.float32)
    known = labels >= 0
    target[known] = smoothing / k
    target[known, labels[known]] = 1 - smoothing + smoothing / k
    return target


def train_head(F: Features, train_folds, recipe: str, seed: int, lr: float = 1e-3):
    """The head trained on the views of photos in ``train_folds`` (and the no-photo views)."""
    import torch
    import torch.nn.functional as nnf

    start_shipped, real_weight, epochs = RECIPES[recipe]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    in_fold = np.isin(F.item_fold[np.maximum(F.item_of, 0)], list(train_folds)) | (F.item_of < 0)
    keep = in_fold & ((F.source != SOURCE_REAL) | (real_weight > 0))
    x = torch.from_numpy(F.feats[keep])
    labels = F.labels[keep]
    target = soft_targets(labels)
    # each class weighs the same within the synthetic and within the real views
    weight = np.ones(len(labels), np.float32)
    src = F.source[keep]
    for kind, total in ((SOURCE_SYNTH, 1.0), (SOURCE_REAL, real_weight)):
        mask = src == kind
        if not mask.any():
            continue
        counts = np.bincount(labels[mask], minlength=len(CLASSES))
        per = total * mask.sum() / (len(CLASSES) * np.maximum(counts, 1))
        weight[mask] = per[labels[mask]]
    weight[src == SOURCE_REAL] *= (src == SOURCE_SYNTH).sum() / max(1, (src == SOURCE_REAL).sum()) * 0.25
    t, w = torch.from_numpy(target), torch.from_numpy(weight / weight.mean())
    head = head_module(F.head if start_shipped else None)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    batch = 256
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for b in range(0, len(order), batch):
            idx = torch.from_numpy(order[b:b + batch])
            loss = (nnf.cross_entropy(head(x[idx]), t[idx], reduction="none") * w[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def logits_of(F: Features, recipe: str, head, items: np.ndarray) -> np.ndarray:
    import torch

    if head is None:  # the shipped head
        w1, b1, w2, b2 = (F.head[k] for k in ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"))
        hidden = np.maximum(F.eval_feats[items] @ w1 + b1, 0)
        return hidden @ w2 + b2
    with torch.no_grad():
        return head(torch.from_numpy(F.eval_feats[items])).numpy()


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def rates(truth: np.ndarray, p: np.ndarray) -> dict:
    """Degraded photos called right, clean ones called none, and what the tool then does."""
    called = p.argmax(1)
    sure = p.max(1) >= detect.AUTO_THRESHOLD
    degraded, clean = truth != NONE, truth == NONE
    return {"degraded_right": float((called[degraded] == truth[degraded]).mean()) if degraded.any() else np.nan,
            "clean_none": float((called[clean] == NONE).mean()) if clean.any() else np.nan,
            "degraded_restored_right": float(((called == truth) & sure)[degraded].mean()) if degraded.any() else np.nan,
            "n_degraded": int(degraded.sum()), "n_clean": int(clean.sum())}


def confusion_matrix(truth: np.ndarray, p: np.ndarray) -> np.ndarray:
    m = np.zeros((len(CLASSES), len(CLASSES)), int)
    np.add.at(m, (truth, p.argmax(1)), 1)
    return m


def expected_calibration_error(truth: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[float, list]:
    """ECE of the top class (equal-width bins), and per bin (mean confidence, accuracy, count)."""
    conf, right = p.max(1), p.argmax(1) == truth
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - right[m].mean())
            table.append((float(conf[m].mean()), float(right[m].mean()), int(m.sum())))
    return float(ece), table


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (a grid, then refined)."""
    def nll(t):
        p = softmax(logits, t)
        return -np.log(np.maximum(p[np.arange(len(truth)), truth], 1e-12)).mean()
    grid = np.exp(np.linspace(np.log(0.25), np.log(8), 200))
    best = grid[np.argmin([nll(t) for t in grid])]
    fine = np.linspace(best * 0.95, best * 1.05, 41)
    return float(fine[np.argmin([nll(t) for t in fine])])


def balanced(truth: np.ndarray) -> np.ndarray:
    """Weights that give the degraded photos and the clean ones equal say (clean ones are 5x as many)."""
    w = np.where(truth == NONE, 1.0 / max(1, (truth == NONE).sum()), 1.0 / max(1, (truth != NONE).sum()))
    return w / w.mean()


def cross_validate(F: Features, recipe: str, seeds, log=print) -> dict:
    """Each CV fold scored by the recipe trained on the others (the held-out fold untouched)."""
    cv_folds = [f for f in range(folds.FOLDS) if f != F.heldout]
    per_run, oof = [], {}
    for seed in seeds:
        logits = np.zeros((len(F.truth), len(CLASSES)), np.float32)
        for f in cv_folds:
            items = np.flatnonzero(F.item_fold == f)
            head = None if RECIPES[recipe] is None else train_head(F, [g for g in cv_folds if g != f], recipe, seed)
            logits[items] = logits_of(F, recipe, head, items)
            r = rates(F.truth[items], softmax(logits[items]))
            per_run.append(dict(r, fold=f, seed=seed))
        oof[seed] = logits
        if RECIPES[recipe] is None:
            break
    summary = {}
    for key in ("degraded_right", "clean_none", "degraded_restored_right"):
        values = np.array([r[key] for r in per_run])
        summary[key] = (float(np.nanmean(values)), float(np.nanstd(values)), float(np.nanmin(values)))
    log(f"{recipe:12s} degraded right {100 * summary['degraded_right'][0]:5.1f} ± {100 * summary['degraded_right'][1]:4.1f} "
        f"(worst {100 * summary['degraded_right'][2]:3.0f})   clean none {100 * summary['clean_none'][0]:5.1f} ± "
        f"{100 * summary['clean_none'][1]:4.1f} (worst {100 * summary['clean_none'][2]:3.0f})   "
        f"restored right {100 * summary['degraded_restored_right'][0]:5.1f}   [{len(per_run)} fold x seed runs]")
    return {"summary": summary, "runs": per_run, "oof": oof}


def misses(F: Features, p: np.ndarray, items: np.ndarray) -> list[str]:
    out = []
    for i, row in zip(items, p):
        if row.argmax() != F.truth[i]:
            out.append(f"{Path(F.paths[i]).parent.name}/{Path(F.paths[i]).name} [{F.sources[i]}]: "
                       f"{CLASSES[F.truth[i]]} -> {CLASSES[row.argmax()]} {row.max():.2f}")
    return out


def head_state(head, temperature: float) -> dict[str, np.ndarray]:
    """The head's arrays as the Paddle network names them, the temperature folded into the last layer."""
    state = {}
    for k, v in head.state_dict().items():
        a = v.detach().numpy().astype(np.float32)
        if k.startswith("2."):
            a = a / temperature
        state["head." + k] = np.ascontiguousarray(a.T if k.endswith("weight") else a)
    return state


def evaluate(data: Path, weights: Path, which: str, log=print) -> dict:
    """A detector file run as the tool runs it (``detect.Detector``) on the photos of
    ``which`` folds (``cv``, ``heldout`` or ``all``): rates per class group and per fold."""
    items = folds.labelled_photos(data)
    fold_of = folds.assign_folds(items)
    wanted = {"all": range(folds.FOLDS), "cv": range(folds.FOLDS - 1), "heldout": [folds.FOLDS - 1]}[which]
    chosen = [(p, c, s) for p, c, s in items if fold_of[s] in wanted]
    detector = detect.Detector(weights)
    truth, probs, fold = [], [], []
    for path, cls, source in chosen:
        found = detector(det.read_rgb(path))
        truth.append(CLASSES.index(cls))
        probs.append([found.probabilities[c] for c in CLASSES])
        fold.append(fold_of[source])
    truth, probs, fold = np.array(truth), np.array(probs), np.array(fold)
    result = {"weights": str(weights), "folds": which, "all": rates(truth, probs),
              "matrix": confusion_matrix(truth, probs).tolist(),
              "ece": expected_calibration_error(truth, probs)[0],
              "reliability": expected_calibration_error(truth, probs)[1],
              "per_fold": {int(f): rates(truth[fold == f], probs[fold == f]) for f in sorted(set(fold))},
              "real_folder": rates(truth[[p.parent.parent.name == "real" for p, _, _ in chosen]],
                                   probs[[p.parent.parent.name == "real" for p, _, _ in chosen]]),
              "misses": [f"{p.parent.name}/{p.name} [{s}]: {c} -> {CLASSES[row.argmax()]} {row.max():.2f}"
                         for (p, c, s), row in zip(chosen, probs) if CLASSES[row.argmax()] != c]}
    log(json.dumps({k: v for k, v in result.items() if k != "misses"}))
    for line in result["misses"]:
        log("  wrong: " + line)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmfnet_core.training.detector_cv",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="compute the views' features once")
    f.add_argument("--data", type=Path, required=True, help="the shared data folder")
    f.add_argument("--weights", type=Path, default=detect.DETECTOR_WEIGHTS)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("cv", help="score recipes on the cross-validation folds (mean and spread)")
    c.add_argument("--features", type=Path, required=True)
    c.add_argument("--recipes", nargs="*", default=list(RECIPES))
    c.add_argument("--seeds", type=int, default=3)
    c.add_argument("--folds", action="store_true", help="print the folds and their sources first")
    t = sub.add_parser("final", help="train one recipe on every CV fold; score the held-out fold once")
    t.add_argument("--features", type=Path, required=True)
    t.add_argument("--recipe", required=True, choices=[r for r in RECIPES if RECIPES[r]])
    t.add_argument("--seeds", type=int, default=3)
    t.add_argument("--weights", type=Path, default=detect.DETECTOR_WEIGHTS, help="the encoders' source")
    t.add_argument("--out", type=Path, default=None, help="write the detector here (.pdparams + .json)")
    e = sub.add_parser("evaluate", help="a detector file, run as the tool runs it, on real photos")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--weights", type=Path, default=detect.DETECTOR_WEIGHTS)
    e.add_argument("--folds", choices=("cv", "heldout", "all"), default="cv")
    a = p.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if a.command == "evaluate":
        print(json.dumps(evaluate(a.data, a.weights, a.folds, log), indent=1))
        return 0
    if a.command == "features":
        extract(a.data, a.weights, a.out, seed=a.seed, log=log)
        return 0
    F = Features(a.features)
    if a.command == "cv":
        if a.folds:
            items = [(Path(p), CLASSES[t], s) for p, t, s in zip(F.paths, F.truth, F.sources)]
            log(folds.fold_table(items, F.fold_of_source))
        results = {r: cross_validate(F, r, range(a.seeds), log) for r in a.recipes}
        print(json.dumps({r: v["summary"] for r, v in results.items()}, indent=1))
        return 0
    # final: temperature from the CV folds' out-of-fold predictions, then the held-out fold, once
    cv = cross_validate(F, a.recipe, range(a.seeds), log)
    cv_items = np.flatnonzero(F.item_fold != F.heldout)
    oof = np.concatenate([cv["oof"][s][cv_items] for s in cv["oof"]])
    oof_truth = np.tile(F.truth[cv_items], len(cv["oof"]))
    temperature = fit_temperature(oof, oof_truth)
    log(f"temperature (fit on the CV folds' out-of-fold predictions): {temperature:.3f}; "
        f"ECE there {expected_calibration_error(oof_truth, softmax(oof))[0]:.3f} -> "
        f"{expected_calibration_error(oof_truth, softmax(oof, temperature))[0]:.3f}")
    held = np.flatnonzero(F.item_fold == F.heldout)
    train_folds = [g for g in range(folds.FOLDS) if g != F.heldout]
    report, shipped_head = [], None
    for seed in range(a.seeds):
        head = train_head(F, train_folds, a.recipe, seed)
        shipped_head = head if shipped_head is None else shipped_head
        prob = softmax(logits_of(F, a.recipe, head, held), temperature)
        report.append(dict(rates(F.truth[held], prob), seed=seed,
                           ece=expected_calibration_error(F.truth[held], prob)[0]))
        log(f"held-out fold, seed {seed}: " + json.dumps(report[-1]))
    prob = softmax(logits_of(F, a.recipe, shipped_head, held), temperature)
    baseline = softmax(logits_of(F, "shipped", None, held))
    ece, table = expected_calibration_error(F.truth[held], prob)
    result = {"recipe": a.recipe, "temperature": temperature, "cv": cv["summary"], "heldout_seeds": report,
              "heldout": rates(F.truth[held], prob), "heldout_matrix": confusion_matrix(F.truth[held], prob).tolist(),
              "heldout_ece": ece, "heldout_reliability": table, "heldout_misses": misses(F, prob, held),
              "run14_heldout": rates(F.truth[held], baseline),
              "run14_heldout_matrix": confusion_matrix(F.truth[held], baseline).tolist(),
              "run14_heldout_ece": expected_calibration_error(F.truth[held], baseline)[0],
              "folds": {s: int(g) for s, g in F.fold_of_source.items()}}
    print(json.dumps(result, indent=1))
    if a.out:
        state = detect.read_detector_state(a.weights)
        state.update(head_state(shipped_head, temperature))
        provenance = {"kind": "bundled", "trained_by": "python -m cmfnet_core.training.detector_cv final",
                      "encoders_from": str(a.weights), "features": str(a.features),
                      **{k: v for k, v in result.items() if k != "heldout_misses"}}
        print(det.save(state, a.out, provenance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
