"""Evaluate trained weights on paired data and make the model-card pictures.

    python -m cmfnet_core.training.evaluate --task dehaze \
        --weights runs/dehaze/dehaze.pth --pairs ../shared/data/dehaze

prints (and with ``--json`` writes) mean PSNR/SSIM over the same-named pairs
in ``PAIRS/input`` and ``PAIRS/gt`` for: the degraded input, a classical
method (unsharp mask for deblur, dark channel prior with guided-filter
refinement for dehaze, a 5x5 median filter for deraindrop, which is only a
reference: no classical method really removes drops), and the model.  The
model runs on the whole image (reflect-padded to a multiple of 8) in fp32
through the PyTorch twin, which matches the Paddle network to ~1e-6.

``--samples DIR --picture OUT.jpg`` writes a before/after strip for the
task's photos in DIR (files named like the task: deblur_*, haze_*,
raindrop_*). ``--loss-curve OUT.png --logs A.log.jsonl ...`` draws the
training loss curves (OpenCV, no matplotlib).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .metrics import psnr, ssim

SAMPLE_PREFIX = {"deblur": "deblur_", "dehaze": "haze_", "deraindrop": "raindrop_"}


# ------------------------------------------------------------------ classical methods
def unsharp_mask(img, sigma=2.0, amount=1.0):
    b = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img + amount * (img - b), 0, 1)


def _guided_filter(guide, src, r, eps):
    mean = lambda z: cv2.blur(z, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mi, ms = mean(guide), mean(src)
    cov = mean(guide * src) - mi * ms
    var = mean(guide * guide) - mi * mi
    a = cov / (var + eps)
    b = ms - a * mi
    return mean(a) * guide + mean(b)


def dark_channel_prior(img, patch=15, omega=0.95, t0=0.1, r=40, eps=1e-3):
    """He, Sun & Tang (CVPR 2009) with guided-filter refinement of t."""
    img = img.astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(img.min(axis=2), kernel)
    n = max(1, int(dark.size * 0.001))
    idx = np.argpartition(dark.ravel(), -n)[-n:]
    A = img.reshape(-1, 3)[idx].max(axis=0)        # brightest candidate per channel
    A = np.maximum(A, 1e-3)
    t = 1.0 - omega * cv2.erode((img / A).min(axis=2), kernel)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    t = _guided_filter(gray, t.astype(np.float32), r, eps)
    t = np.maximum(t, t0)[:, :, None]
    return np.clip((img - A) / t + A, 0, 1)


def median(img, k=5):
    u8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.medianBlur(u8, k).astype(np.float32) / 255.0


CLASSICAL = {
    "deblur": ("unsharp mask (sigma 2, amount 1)", unsharp_mask),
    "dehaze": ("dark channel prior (15 px, omega 0.95, guided filter)", dark_channel_prior),
    "deraindrop": ("median filter 5x5 (reference only)", median),
}


# ------------------------------------------------------------------ model
def load_twin(path):
    """The twin with the weights in ``path``, read without running code from the file."""
    from .train import read_twin_state
    from .twin import CMFNet, config_from_state_dict

    sd = read_twin_state(path)
    m = CMFNet(**config_from_state_dict(sd))
    m.load_state_dict(sd, strict=True)
    return m.eval()


def read_rgb(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return img[:, :, ::-1].astype(np.float32) / 255.0


def evaluate(task, weights, pairs_dir, threads=None, log=print):
    import torch
    from .train import restore_array

    if threads:
        torch.set_num_threads(threads)
    model = load_twin(weights) if weights else None
    cname, cfun = CLASSICAL[task]
    pd = Path(pairs_dir)
    rows = []
    for f in sorted((pd / "input").iterdir()):
        g = pd / "gt" / f.name
        if not g.exists():
            continue
        a, b = read_rgb(f), read_rgb(g)
        c = cfun(a)
        row = {"file": f.name, "psnr_in": psnr(a, b), "ssim_in": ssim(a, b),
               "psnr_classical": psnr(c, b), "ssim_classical": ssim(c, b)}
        if model is not None:
            y = restore_array(model, a)
            row.update(psnr_model=psnr(y, b), ssim_model=ssim(y, b))
        rows.append(row)
        log("  " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "file"}
    res = {"task": task, "pairs": str(pairs_dir), "n": len(rows), "classical": cname,
           "weights": str(weights) if weights else None, "mean": mean, "rows": rows}
    log(f"{task}: n={len(rows)} input {mean['psnr_in']:.2f}/{mean['ssim_in']:.4f}  "
        f"{cname} {mean['psnr_classical']:.2f}/{mean['ssim_classical']:.4f}" +
        (f"  model {mean['psnr_model']:.2f}/{mean['ssim_model']:.4f}" if model is not None else ""))
    return res


# ------------------------------------------------------------------ pictures
def _label(img_u8, text):
    out = img_u8.copy()
    cv2.rectangle(out, (0, 0), (8 + 11 * len(text), 24), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def before_after(task, weights, samples_dir, out_path, width=400, n=2, threads=None):
    """Strip of (input | ours) pairs for the first ``n`` samples of the task.

    Blur and raindrops are shown as a 1:1 crop (400 x 300 from the centre)
    so the detail is visible; haze is a whole-scene effect, so the photo is
    shown whole, restored at 800 px wide (haze does not depend on scale)."""
    import torch
    from .train import restore_array

    if threads:
        torch.set_num_threads(threads)
    model = load_twin(weights)
    files = sorted(Path(samples_dir).glob(SAMPLE_PREFIX[task] + "*"))[:n]
    rows = []
    for f in files:
        a = read_rgb(f)
        if task == "dehaze":
            s = 800 / a.shape[1]
            a = cv2.resize(a, (800, round(a.shape[0] * s) // 8 * 8), interpolation=cv2.INTER_AREA)
            label = f"{f.name} (whole, scaled)"
        else:
            h, w = a.shape[:2]
            ch, cw = min(300, h), min(width, w)
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            a = np.ascontiguousarray(a[y0:y0 + ch, x0:x0 + cw])
            label = f"{f.name} (1:1 crop)"
        y = restore_array(model, a)
        pair = []
        for im, lab in ((a, f"{label}: input"), (y, "ours")):
            u8 = (np.clip(im, 0, 1) * 255 + 0.5).astype(np.uint8)[:, :, ::-1]
            if u8.shape[1] != width:
                u8 = cv2.resize(u8, (width, round(u8.shape[0] * width / u8.shape[1])),
                                interpolation=cv2.INTER_AREA)
            pair.append(_label(u8, lab))
        rows.append(np.concatenate(pair, 1))
    strip = np.concatenate(rows, 0)
    cv2.imwrite(str(out_path), strip, [cv2.IMWRITE_JPEG_QUALITY, 88])
    return out_path


def loss_curve(logs, out_path, w=900, h=260, smooth=None):
    """One panel per log file: training loss (log scale) against step."""
    panels = []
    for lp in logs:
        recs = [json.loads(x) for x in Path(lp).read_text().splitlines() if x.strip()]
        pts = [(r["step"], r["loss"]) for r in recs if "loss" in r]
        if not pts:
            continue
        steps = np.array([p[0] for p in pts], float)
        loss = np.array([p[1] for p in pts], float)
        k = smooth or max(1, len(loss) // 12)
        if len(loss) > k > 1:
            loss = np.convolve(loss, np.ones(k) / k, mode="valid")
            steps = steps[k - 1:]
        img = np.full((h, w, 3), 255, np.uint8)
        x0, y0, x1, y1 = 60, 20, w - 20, h - 40
        lo, hi = np.log10(loss.min()), np.log10(loss.max())
        hi = hi if hi > lo else lo + 1
        X = x0 + (steps - steps.min()) / max(steps.max() - steps.min(), 1) * (x1 - x0)
        Y = y1 - (np.log10(loss) - lo) / (hi - lo) * (y1 - y0)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
        cv2.polylines(img, [np.stack([X, Y], 1).astype(np.int32)], False, (200, 80, 0), 2, cv2.LINE_AA)
        name = Path(lp).name.split(".")[0]
        cv2.putText(img, f"{name}: training loss (Charbonnier, log scale, moving mean of {k} log points) vs step",
                    (x0, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for v in (lo, (lo + hi) / 2, hi):
            yy = int(y1 - (v - lo) / (hi - lo) * (y1 - y0))
            cv2.putText(img, f"{10 ** v:.4f}", (2, yy + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        for sv in np.linspace(steps.min(), steps.max(), 5):
            xx = int(x0 + (sv - steps.min()) / max(steps.max() - steps.min(), 1) * (x1 - x0))
            cv2.putText(img, f"{int(sv)}", (xx - 12, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        panels.append(img)
    cv2.imwrite(str(out_path), np.concatenate(panels, 0))
    return out_path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cmfnet_core.training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=list(CLASSICAL))
    p.add_argument("--weights", help="any weights file the project reads: official-format .pth "
                                     "(e.g. from cmfnet train), .pdparams")
    p.add_argument("--pairs", help="folder with input/ and gt/")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--samples", help="folder of sample photos for --picture")
    p.add_argument("--picture", help="before/after strip (JPEG)")
    p.add_argument("--loss-curve", help="loss-curve picture (PNG)")
    p.add_argument("--logs", nargs="*", default=[], help="OUT.log.jsonl files for --loss-curve")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.pairs:
        res = evaluate(a.task, a.weights, a.pairs, a.threads)
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2))
    if a.picture:
        before_after(a.task, a.weights, a.samples, a.picture, threads=a.threads)
    if a.loss_curve:
        loss_curve(a.logs, a.loss_curve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
