"""Every real photo the project has, labelled and split into folds by source.

A fold holds whole sources (a repository's folder, a video sequence, a scene
with its clean target), never parts of one, so a recipe
scored on a fold is scored on photos whose source it never trained on. The
assignment is a fixed rule (no scores involved): sources, largest first, each
to the fold whose class shares are furthest below an even split. The last
fold is the held-out one: looked at once, at the end, for the figure reported.

The photos: ``DATA/real/{blur,haze,raindrop}`` (``SOURCES.md`` there), the
degraded dev inputs and their clean targets (``DATA/{deblur,dehaze,deraindrop}``),
the CMFNet samples (``DATA/samples``) and the clean photos
(``DATA/clean``, ``DATA/clean-extra``), which should come out ``none``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .. import detect

CLASSES = detect.DETECT_CLASSES
FOLDS = 5
REAL_FOLDER_CLASS = {"blur": "deblur", "haze": "dehaze", "raindrop": "deraindrop"}
SAMPLE_CLASS = {"deblur_": "deblur", "haze_": "dehaze", "raindrop_": "deraindrop"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BSDS_PARTS = 8  # BSDS500 (CBSD68 is part of it) is 292 unrelated scenes: split into 8 sources


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def source_of(path: Path, kind: str) -> str:
    """The source a photo belongs to; ``kind`` is the folder it was found in."""
    name = path.name
    if kind == "deblur":  # GoPro pairs: the sequence, blurred frames with their sharp targets
        return "gopro-" + name.split("_")[0]
    if kind == "dehaze":  # RESIDE: the scene, hazy inputs with their targets
        return "reside-" + name.split("_")[0]
    if kind == "deraindrop":
        return "raindrop-dev"
    if kind == "sample":
        return "cmfnet-samples-" + name.split("_")[0]
    prefix = name.split("_")[0]
    if kind == "real":
        if prefix == "daclip":  # one repository, two datasets: GoPro sequence 0871, a Raindrop photo
            return "gopro-GOPR0871" if "GOPR" in name else "real-daclip-rain"
        return "real-" + prefix
    if prefix.startswith("kodim"):
        return "kodak"
    if prefix in ("bsds500", "cbsd68"):
        part = int(hashlib.sha256(name.encode()).hexdigest(), 16) % BSDS_PARTS
        return f"bsds-{part}"
    return prefix  # sunhays80, urban100


def labelled_photos(data: Path) -> list[tuple[Path, str, str]]:
    """(photo, true class, source) for every real photo under the shared ``data`` folder."""
    found = []
    for folder, cls in REAL_FOLDER_CLASS.items():
        found += [(p, cls, source_of(p, "real")) for p in _photos(data / "real" / folder)]
    for task in detect.TASKS:
        found += [(p, task, source_of(p, task)) for p in _photos(data / task / "input")]
        found += [(p, "none", source_of(p, task)) for p in _photos(data / task / "gt")]
    for p in _photos(data / "samples"):
        for prefix, cls in SAMPLE_CLASS.items():
            if p.name.startswith(prefix):
                found.append((p, cls, source_of(p, "sample")))
    for folder in ("clean", "clean-extra"):
        found += [(p, "none", source_of(p, "clean")) for p in _photos(data / folder)]
    return found


def assign_folds(items, folds: int = FOLDS) -> dict[str, int]:
    """source -> fold, balancing every class across the folds (a fixed rule: no scores)."""
    counts: dict[str, list[int]] = {}
    for _, cls, source in items:
        counts.setdefault(source, [0] * len(CLASSES))[CLASSES.index(cls)] += 1
    totals = [max(1, sum(c[i] for c in counts.values())) for i in range(len(CLASSES))]
    load = [[0.0] * len(CLASSES) for _ in range(folds)]
    fold_of = {}
    # largest first (by share of their classes), names break ties: the same split every time
    for source in sorted(counts, key=lambda s: (-max(c / t for c, t in zip(counts[s], totals)), s)):
        share = [c / t for c, t in zip(counts[source], totals)]

        def overshoot(f):
            return sum(max(0.0, load[f][i] + share[i] - 1 / folds) ** 2 + (load[f][i] + share[i]) * 1e-3
                       for i in range(len(CLASSES)) if share[i])
        best = min(range(folds), key=lambda f: (overshoot(f), f))
        fold_of[source] = best
        load[best] = [a + b for a, b in zip(load[best], share)]
    return fold_of


def fold_table(items, fold_of: dict[str, int], folds: int = FOLDS) -> str:
    """Per fold: its sources and how many photos of each class (for the model card)."""
    lines = ["fold | " + " | ".join(CLASSES) + " | sources"]
    for f in range(folds):
        n = [sum(1 for _, c, s in items if fold_of[s] == f and c == cls) for cls in CLASSES]
        sources = sorted(s for s in fold_of if fold_of[s] == f)
        tag = " (held out)" if f == folds - 1 else ""
        lines.append(f"{f}{tag} | " + " | ".join(map(str, n)) + " | " + ", ".join(sources))
    return "\n".join(lines)
