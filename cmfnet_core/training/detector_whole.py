"""Train the whole detector (encoders and head) with real photos, validated by source.

    python -m cmfnet_core.training.detector_whole views --data ../shared/data \\
        --out runs/detector/real-views.npz
    python -m cmfnet_core.training.detector_whole cv --real-views runs/detector/real-views.npz \\
        --synth runs/detector/views.npz --synth runs/detector/views-none3.npz --recipe finetune
    python -m cmfnet_core.training.detector_whole final ... --recipe finetune \\
        --out resources/weights/detector.pdparams

``detector_cv`` trains only the head, on the frozen features of run 14's
encoders; what it found is that those features do not tell city smog from
clean or blurred photos, whatever head reads them. Here the encoders learn
too. The views: the clean photos degraded by ``detector.degrade`` (the bulk,
made once by ``detector.cached_dataset``), re-framings of the real photos
(``detector_cv.reframed``), and views that are no photo at all, whose target
is every class alike.

The folds are ``detector_folds``'s. A CV fold is scored by a network trained
without its sources: neither its real photos nor the synthetic views of its
clean photos. ``final`` trains on every CV fold and scores the held-out fold
once; the file it writes is the one that was scored. Scoring runs the twin on
exactly the inputs the tool gives its network (``detect.prepared``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import detect
from . import detector as det
from . import detector_cv as cv
from . import detector_folds as folds

CLASSES = detect.DETECT_CLASSES
NONE = CLASSES.index("none")
SYNTHESIS_FOLDERS = ("clean", "clean-extra")


@dataclass(frozen=True)
class Recipe:
    from_shipped: bool   # start from the shipped detector (run 14) rather than a fresh network
    epochs: int
    lr: float
    real_repeat: int     # each real view is seen this many times an epoch (0: synthetic views only)
    keep_shipped: float = 0.0  # weight of a pull towards the shipped detector's answers on the
                               # synthetic views (distillation): learn the real photos, keep the rest


RECIPES = {
    "shipped": Recipe(True, 0, 0.0, 0),            # run 14 as it is, scored the same way
    "finetune": Recipe(True, 6, 5e-4, 2),
    "finetune-real4": Recipe(True, 8, 5e-4, 4),    # the real photos weigh as much as the synthetic views
    "finetune-keep": Recipe(True, 6, 5e-4, 2, keep_shipped=1.0),
    "finetune-synth": Recipe(True, 6, 5e-4, 0),   # the control: the same training without real photos
    "scratch": Recipe(False, 30, 2e-3, 2),
}


# --- views ------------------------------------------------------------------------------

def make_real_views(data: Path, out: Path, reframings: int = 16, noise_views: int = 300,
                    seed: int = 0, log=print) -> Path:
    """Every labelled photo as the tool reads it (for scoring), and ``reframings`` training
    views of each photo that is not a synthesis source; plus the no-photo views."""
    rng = np.random.default_rng(seed)
    items = folds.labelled_photos(data)
    clean = [p for p, _, _ in items if p.parent.name in SYNTHESIS_FOLDERS]
    eval_scene, eval_crops, eval_weight = [], [], []
    scenes, crops, labels, item_of = [], [], [], []
    start = time.perf_counter()
    for i, (path, cls, _) in enumerate(items):
        photo = det.read_rgb(path)
        scene, detail, weight = detect.prepared(photo)
        eval_scene.append(scene.astype(np.float16))
        eval_crops.append(detail.astype(np.float16))
        eval_weight.append(weight)
        if path.parent.name not in SYNTHESIS_FOLDERS:
            for _ in range(reframings):
                s, d = detect.views(cv.reframed(photo, rng))
                scenes.append(np.round(s * 255).astype(np.uint8))
                crops.append(np.round(d * 255).astype(np.uint8))
                labels.append(CLASSES.index(cls))
                item_of.append(i)
        if i % 50 == 0:
            log(f"real views: {i}/{len(items)} photos, {time.perf_counter() - start:.0f} s")
    for _ in range(noise_views):
        s, d = detect.views(cv.no_photo(rng, clean))
        scenes.append(np.round(s * 255).astype(np.uint8))
        crops.append(np.round(d * 255).astype(np.uint8))
        labels.append(cv.UNSURE_LABEL)
        item_of.append(-1)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, scenes=np.stack(scenes), crops=np.stack(crops), labels=np.array(labels),
             item_of=np.array(item_of), eval_scene=np.stack(eval_scene), eval_crops=np.stack(eval_crops),
             eval_weight=np.array(eval_weight, np.float32), paths=np.array([str(p) for p, _, _ in items]),
             truth=np.array([CLASSES.index(c) for _, c, _ in items]),
             sources=np.array([s for _, _, s in items]))
    log(f"real views: {len(labels)} views of {len(items)} photos in {time.perf_counter() - start:.0f} s -> {out}")
    return out


def make_even_haze_views(data: list[Path], out: Path, per_photo: int = 2, seed: int = 7, log=print) -> Path:
    """``per_photo`` views of every clean photo under an even haze (``detector.visible_even_haze``),
    in the format of ``detector.cached_dataset``'s files, so ``--synth`` takes it like them."""
    scenes, details, labels = det.make_dataset(data, per_photo, seed, labels=("dehaze",), log=log,
                                               damage=det.visible_even_haze)
    out.parent.mkdir(parents=True, exist_ok=True)
    key = json.dumps({"data": [str(d) for d in data], "variants": per_photo, "seed": seed, "damage": "even haze"})
    np.savez(out, key=key, scenes=scenes, details=details, labels=labels)
    log(f"even haze: {len(labels)} views -> {out}")
    return out


class Views:
    """The real views file and the synthetic views, each view knowing the photo it came from."""

    def __init__(self, real: Path, synth: list[Path]):
        with np.load(real) as f:
            self.scenes, self.crops = f["scenes"], f["crops"]
            self.labels, self.item_of = f["labels"], f["item_of"]
            self.eval_scene, self.eval_crops, self.eval_weight = f["eval_scene"], f["eval_crops"], f["eval_weight"]
            self.paths, self.sources = [str(p) for p in f["paths"]], [str(s) for s in f["sources"]]
            self.truth = f["truth"]
        items = [(Path(p), CLASSES[t], s) for p, t, s in zip(self.paths, self.truth, self.sources)]
        self.fold_of_source = folds.assign_folds(items)
        self.item_fold = np.array([self.fold_of_source[s] for s in self.sources])
        self.heldout = folds.FOLDS - 1
        index = {p: i for i, p in enumerate(self.paths)}
        s_scenes, s_crops, s_labels, s_items = [], [], [], []
        for path in synth:
            with np.load(path) as f:
                key = json.loads(str(f["key"]))
                photos = [str(p) for p in det.photos_in(key["data"])]
                per_photo = len(f["labels"]) // len(photos)
                if per_photo * len(photos) != len(f["labels"]):
                    raise ValueError(f"{path}: {len(f['labels'])} views do not divide over {len(photos)} photos")
                s_scenes.append(f["scenes"])
                s_crops.append(f["details"])
                s_labels.append(f["labels"])
                s_items.append(np.repeat([index[self._same_photo(p, index)] for p in photos], per_photo))
        self.synth_scenes, self.synth_crops = np.concatenate(s_scenes), np.concatenate(s_crops)
        self.synth_labels, self.synth_item_of = np.concatenate(s_labels), np.concatenate(s_items)

    @staticmethod
    def _same_photo(path: str, index: dict[str, int]) -> str:
        """``path`` as the real views file names it (the two may spell the data folder apart)."""
        if path in index:
            return path
        tail = Path(path).parts[-2:]
        return next(p for p in index if Path(p).parts[-2:] == tail)

    def fold_of_items(self, item_of: np.ndarray) -> np.ndarray:
        """The fold of each view's photo; -1 for a no-photo view (it belongs to every training)."""
        return np.where(item_of >= 0, self.item_fold[np.maximum(item_of, 0)], -1)


# --- training ---------------------------------------------------------------------------

def training_pool(views: Views, train_folds, real_repeat: int) -> np.ndarray:
    """The views one epoch goes through, as rows (0, i) for synthetic view i and (1, i) for real
    or no-photo view i: those of photos in ``train_folds`` only, each real view ``real_repeat``
    times, every no-photo view once."""
    keep_synth = np.flatnonzero(np.isin(views.fold_of_items(views.synth_item_of), list(train_folds)))
    real_fold = views.fold_of_items(views.item_of)
    real = np.flatnonzero(np.isin(real_fold, list(train_folds)))
    noise = np.flatnonzero(real_fold < 0)
    rows = [(0, keep_synth)] + [(1, real)] * real_repeat + [(1, noise)]
    return np.concatenate([np.stack([np.full_like(i, kind), i], 1) for kind, i in rows])


def train_whole(views: Views, train_folds, recipe: Recipe, seed: int, batch: int = 32, log=print):
    """The twin trained on the views of the photos in ``train_folds`` (and the no-photo views)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    shipped_state = detect.read_detector_state(detect.DETECTOR_WEIGHTS)
    model = det.twin_from_state(shipped_state) if recipe.from_shipped else det.twin()
    if recipe.epochs == 0:
        return model.eval()
    pool = training_pool(views, train_folds, recipe.real_repeat)
    log(f"training on folds {sorted(train_folds)}: {int((pool[:, 0] == 0).sum())} synthetic views, "
        f"{int((pool[:, 0] == 1).sum())} real (x {recipe.real_repeat}) and no-photo views")
    shipped = det.twin_from_state(shipped_state) if recipe.keep_shipped else None
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
    steps = recipe.epochs * (len(pool) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        order = pool[rng.permutation(len(pool))]
        losses = []
        for b in range(len(pool) // batch):
            chosen = order[b * batch:(b + 1) * batch]
            synth_i, real_i = chosen[chosen[:, 0] == 0, 1], chosen[chosen[:, 0] == 1, 1]
            s = np.concatenate([views.synth_scenes[synth_i], views.scenes[real_i]])
            d = np.concatenate([views.synth_crops[synth_i], views.crops[real_i]])
            y = np.concatenate([views.synth_labels[synth_i], views.labels[real_i]])
            s, d = torch.from_numpy(s).float() / 255, torch.from_numpy(d).float() / 255
            if rng.random() < 0.5:  # mirror: the classes do not care
                s, d = s.flip(-1), d.flip(-1)
            logits = model(s, d)
            loss = F.cross_entropy(logits, torch.from_numpy(cv.soft_targets(y)))
            if shipped is not None and len(synth_i):
                with torch.no_grad():
                    before = F.softmax(shipped(s[:len(synth_i)], d[:len(synth_i)]), dim=1)
                loss = loss + recipe.keep_shipped * F.kl_div(
                    F.log_softmax(logits[:len(synth_i)], dim=1), before, reduction="batchmean") * len(synth_i) / len(y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {np.mean(losses):.4f}, {time.perf_counter() - start:.0f} s")
    return model.eval()


def probabilities(model, views: Views, items: np.ndarray) -> np.ndarray:
    """What the tool would say of each photo: the twin on ``detect.prepared``'s inputs, the
    logits scaled by the evidence, as probabilities (``detect.detection_of``)."""
    import torch

    out = []
    with torch.no_grad():
        for chunk in np.array_split(items, max(1, len(items) // 64)):
            logits = model(torch.from_numpy(views.eval_scene[chunk].astype(np.float32)),
                           torch.from_numpy(views.eval_crops[chunk].astype(np.float32))).numpy()
            out.append(logits * views.eval_weight[chunk, None])
    return cv.softmax(np.concatenate(out))


def dev_target(views: Views, i: int) -> bool:
    """A clean photo that no synthesis started from (a dev pair's target): truly unseen."""
    return views.truth[i] == NONE and Path(views.paths[i]).parent.name not in SYNTHESIS_FOLDERS


def score(views: Views, p: np.ndarray, items: np.ndarray) -> dict:
    truth = views.truth[items]
    unseen = np.array([dev_target(views, i) for i in items])
    r = cv.rates(truth, p)
    r["dev_targets_none"] = float((p[unseen].argmax(1) == NONE).mean()) if unseen.any() else float("nan")
    r["ece"] = cv.expected_calibration_error(truth, p)[0]
    return r


def cross_validate(views: Views, recipe_name: str, seeds, log=print) -> dict:
    """Each CV fold scored by the recipe trained on the other CV folds (held-out fold untouched)."""
    cv_folds = [f for f in range(folds.FOLDS) if f != views.heldout]
    runs, oof = [], {}
    for seed in seeds:
        p_all = np.zeros((len(views.truth), len(CLASSES)))
        for f in cv_folds:
            items = np.flatnonzero(views.item_fold == f)
            model = train_whole(views, [g for g in cv_folds if g != f], RECIPES[recipe_name], seed, log=log)
            p_all[items] = probabilities(model, views, items)
            runs.append(dict(score(views, p_all[items], items), fold=f, seed=seed))
            log(f"{recipe_name} seed {seed} fold {f}: " + json.dumps(runs[-1]))
            for line in cv.misses(views, p_all[items], items):
                log("  wrong: " + line)
        oof[seed] = p_all
    summary = {}
    for key in ("degraded_right", "clean_none", "dev_targets_none", "degraded_restored_right", "ece"):
        values = np.array([r[key] for r in runs])
        summary[key] = (float(np.nanmean(values)), float(np.nanstd(values)), float(np.nanmin(values)))
    cv_items = np.flatnonzero(views.item_fold != views.heldout)
    pooled = np.concatenate([oof[s][cv_items] for s in oof])
    pooled_truth = np.tile(views.truth[cv_items], len(oof))
    summary["pooled_matrix"] = cv.confusion_matrix(pooled_truth, pooled).tolist()
    summary["pooled_ece"] = cv.expected_calibration_error(pooled_truth, pooled)[0]
    log(f"{recipe_name}: degraded right {100 * summary['degraded_right'][0]:.1f} ± {100 * summary['degraded_right'][1]:.1f} "
        f"(worst {100 * summary['degraded_right'][2]:.0f}); clean none {100 * summary['clean_none'][0]:.1f} ± "
        f"{100 * summary['clean_none'][1]:.1f}; dev targets none {100 * summary['dev_targets_none'][0]:.1f}; "
        f"[{len(runs)} fold x seed runs]")
    # every CV photo's out-of-fold probabilities, per seed: recipes can be compared or mixed later
    return {"summary": summary, "runs": runs, "paths": [views.paths[i] for i in cv_items],
            "oof": {str(s): np.round(oof[s][cv_items], 5).tolist() for s in oof}}


def final(views: Views, recipe_name: str, seeds, out: Path | None, log=print) -> dict:
    """Trained on every CV fold, per seed; the held-out fold scored once per seed. The first
    seed's network is the one written (chosen before scoring, not for its score)."""
    train_folds = [f for f in range(folds.FOLDS) if f != views.heldout]
    held = np.flatnonzero(views.item_fold == views.heldout)
    report, written = [], None
    for seed in seeds:
        model = train_whole(views, train_folds, RECIPES[recipe_name], seed, log=log)
        p = probabilities(model, views, held)
        ece, table = cv.expected_calibration_error(views.truth[held], p)
        report.append(dict(score(views, p, held), seed=seed, matrix=cv.confusion_matrix(views.truth[held], p).tolist(),
                           reliability=table, misses=cv.misses(views, p, held)))
        log(f"held-out fold, seed {seed}: " + json.dumps({k: v for k, v in report[-1].items() if k != "misses"}))
        for line in report[-1]["misses"]:
            log("  wrong: " + line)
        written = model if written is None else written
    result = {"recipe": recipe_name, "recipe_settings": RECIPES[recipe_name].__dict__, "heldout": report,
              "folds": {s: int(g) for s, g in views.fold_of_source.items()}}
    if out:
        provenance = {"kind": "bundled", "trained_by": "python -m cmfnet_core.training.detector_whole final",
                      "seed": seeds[0], **result}
        log(str(det.save(det.paddle_state(written), out, provenance)))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmfnet_core.training.detector_whole",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("views", help="the real photos' views (scoring and training), once")
    v.add_argument("--data", type=Path, required=True, help="the shared data folder")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--reframings", type=int, default=16)
    e = sub.add_parser("even-haze", help="views of the clean photos under an even haze (for --synth)")
    e.add_argument("--data", type=Path, action="append", required=True, help="a folder of clean photos (repeat)")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--per-photo", type=int, default=2)
    for name, help_ in (("cv", "score a recipe on the CV folds (mean and spread over folds and seeds)"),
                        ("final", "train on every CV fold; score the held-out fold once")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--real-views", type=Path, required=True)
        c.add_argument("--synth", type=Path, action="append", required=True,
                       help="a synthetic views cache of detector.cached_dataset (repeat)")
        c.add_argument("--recipe", choices=list(RECIPES), required=True)
        c.add_argument("--seeds", type=int, default=1, help="how many seeds (each a whole run)")
        c.add_argument("--first-seed", type=int, default=0)
        c.add_argument("--threads", type=int, default=2)
        if name == "final":
            c.add_argument("--out", type=Path, default=None, help="write the first seed's detector here")
    a = p.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if a.command == "views":
        make_real_views(a.data, a.out, a.reframings, log=log)
        return 0
    if a.command == "even-haze":
        make_even_haze_views(a.data, a.out, a.per_photo, log=log)
        return 0
    import torch

    torch.set_num_threads(a.threads)
    views = Views(a.real_views, a.synth)
    if a.command == "cv":
        result = cross_validate(views, a.recipe, range(a.first_seed, a.first_seed + a.seeds), log)
    else:
        result = final(views, a.recipe, list(range(a.first_seed, a.first_seed + a.seeds)), a.out, log)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
