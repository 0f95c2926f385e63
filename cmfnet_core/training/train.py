"""Train CMFNet (any width) with the PyTorch twin on synthesised pairs.

Entry points (the ``cmfnet train`` sub-command calls these):

* ``add_arguments(parser)`` adds the options ``--task --data --width
  --scale --patch --steps --batch --minutes --lr --resume --out --val --seed
  --threads --checkpoint-every --device --bf16/--no-bf16`` to an ``argparse`` parser.
* ``run(args)`` runs training from the parsed namespace and returns the exit
  code (what ``cmfnet train`` calls); ``run_from_args(args)`` returns the
  run's metadata instead.
* ``run_training(task, data_dir, out, width=24, patch=128, steps=4000,
  batch=4, resume=None, val_dir=None, seed=0, threads=None, log=print, ...)``
  is the plain-Python API; returns a dict with the final step, wall time and
  validation figures.
* ``main(argv=None)`` is a stand-alone CLI
  (``python -m cmfnet_core.training.train --task dehaze --data DIR --out F``).

What it does: reads clean photos from ``--data`` (one or more folders,
repeat the option), synthesises degraded/clean patches on the fly
(``cmfnet_core.training.synth``), and trains with Adam, Charbonnier loss,
a cosine learning-rate schedule with warm-up, channels-last on the CPU
(CUDA when present), and bf16 autocast only where it is native (CUDA, or a
CPU with AVX512-BF16 or AMX; fp32 elsewhere, and it says which).  ``--minutes`` sets a
wall-clock budget: the learning-rate schedule follows whichever of
steps/time runs out first, so a run ends on time with an annealed LR.

Files written (``OUT`` is the ``--out`` path):

* ``OUT``: official-format checkpoint ``{'epoch': step, 'state_dict': ...}``
  (keys without ``module.``), which the project's importer converts.
* ``OUT.ckpt``: resumable state (model, optimizer, step, elapsed time, RNG
  states, loss history), rewritten every ``--checkpoint-every`` seconds;
  pass it to ``--resume`` (``--steps``/``--minutes`` are totals, so a
  larger value extends a finished run); passing an official-format file to
  ``--resume`` fine-tunes from those weights instead.
* ``OUT.json``: provenance (task, config, steps, wall time, hardware, data).
* ``OUT.log.jsonl``: one line per logging interval (step, loss, lr, time)
  and per validation pass (PSNR/SSIM), for loss curves.

Validation (``--val DIR`` with ``DIR/input`` and ``DIR/gt`` holding
same-named pairs) prints PSNR/SSIM of the input and of the model on centre
crops, every ``--val-every`` steps and at the end.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .. import cpu
from . import synth
from .metrics import psnr, ssim

IMG_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_WIDTH = 24


# ------------------------------------------------------------------ data
def list_images(dirs):
    files = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            files.append(p)
            continue
        files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMG_EXT)
    return files


def read_rgb(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return np.ascontiguousarray(img[:, :, ::-1])


def load_images(dirs, min_side):
    imgs = []
    for f in list_images(dirs):
        try:
            im = read_rgb(f)
        except OSError:
            continue
        if min(im.shape[:2]) < min_side:
            s = min_side / min(im.shape[:2])
            im = cv2.resize(im, (math.ceil(im.shape[1] * s), math.ceil(im.shape[0] * s)),
                            interpolation=cv2.INTER_CUBIC)
        imgs.append(im)
    return imgs


def make_batch(task, imgs, patch, batch, rng):
    xs, ys = [], []
    for _ in range(batch):
        im = imgs[int(rng.integers(len(imgs)))]
        d, c = synth.make_pair(task, im, patch, rng)
        xs.append(d.transpose(2, 0, 1))
        ys.append(c.transpose(2, 0, 1))
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def load_pairs(val_dir, crop=None):
    """Same-named pairs from VAL/input and VAL/gt; optional centre crop."""
    vd = Path(val_dir)
    pairs = []
    for f in sorted((vd / "input").iterdir()):
        g = vd / "gt" / f.name
        if f.suffix.lower() not in IMG_EXT or not g.exists():
            continue
        a = read_rgb(f).astype(np.float32) / 255.0
        b = read_rgb(g).astype(np.float32) / 255.0
        if crop:
            h, w = a.shape[:2]
            ch, cw = min(crop, h) // 8 * 8, min(crop, w) // 8 * 8
            y, x = (h - ch) // 2, (w - cw) // 2
            a, b = a[y:y + ch, x:x + cw], b[y:y + ch, x:x + cw]
        pairs.append((f.name, a, b))
    return pairs


# ------------------------------------------------------------------ model helpers
def init_near_identity(model):
    """Start from (almost) the identity map: every SAM image head and the
    final tail start small, add123 starts as the identity, so the initial
    output is close to the input and training learns a correction."""
    import torch
    with torch.no_grad():
        for name in ("sam1o", "sam2o", "sam3o"):
            getattr(model, name).conv2.weight.mul_(0.1)
        w = model.add123.weight
        w.mul_(0.01)
        k = w.shape[-1] // 2
        for c in range(w.shape[0]):
            w[c, c, k, k] += 1.0
        model.tail.weight.mul_(0.1)


def run_model(model, x, pad_to=8):
    """x: 1x3xHxW tensor; reflect-pad to a multiple of pad_to, crop back."""
    import torch.nn.functional as F
    h, w = x.shape[-2:]
    ph, pw = (-h) % pad_to, (-w) % pad_to
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return model(x)[0][..., :h, :w]


def restore_array(model, img, device="cpu", bf16=False):
    """Run the twin on one HxWx3 float image in [0, 1]; returns clamped float."""
    import torch
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
        y = run_model(model, x).float()
    return y[0].clamp(0, 1).cpu().numpy().transpose(1, 2, 0)


def validate(model, pairs, device="cpu", bf16=False):
    was = model.training
    model.eval()
    res = {"psnr_in": [], "ssim_in": [], "psnr": [], "ssim": []}
    for _, a, b in pairs:
        y = restore_array(model, a, device, bf16)
        res["psnr_in"].append(psnr(a, b))
        res["ssim_in"].append(ssim(a, b))
        res["psnr"].append(psnr(y, b))
        res["ssim"].append(ssim(y, b))
    model.train(was)
    return {k: float(np.mean(v)) for k, v in res.items()}


def _atomic_save(obj, path):
    """``torch.save`` through the project's atomic writer: a stop mid-save keeps the old file."""
    import io

    import torch

    from ..files import write_atomic

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue(), overwrite=True)


def hardware_string(device):
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(0)
    return cpu.describe()


# ------------------------------------------------------------------ training
def _optimizer_fits(saved, opt) -> bool:
    """Adam state is stored by parameter index: check every moment has its parameter's shape."""
    params = [p for group in opt.param_groups for p in group["params"]]
    moments = saved.get("state", {})
    return len(params) == sum(len(g["params"]) for g in saved.get("param_groups", [])) and all(
        tuple(moments[i]["exp_avg"].shape) == tuple(p.shape)
        for i, p in enumerate(params) if i in moments)


def load_resume(path):
    """What ``--resume PATH`` starts from, read without running code from the file.

    A ``.ckpt`` written by this trainer resumes exactly (model, optimizer, step,
    RNG); any weights file the project reads (official ``.pth``, ``.pdparams``
    with its sidecar) is fine-tuned from, with a fresh optimizer.
    """
    import torch

    path = Path(path)
    if path.suffix == ".ckpt":
        return torch.load(path, map_location="cpu", weights_only=True)
    from .twin import config_from_state_dict

    model = read_twin_state(path)
    return {"model": model, "config": config_from_state_dict(model), "fine_tune": True}


def read_twin_state(path):
    """A weights file as the twin's state dict of float32 tensors, through the project's reader.

    Any format ``cmfnet weights import`` takes; nothing in the file is run
    (the reader's allow-list unpickler, not ``torch.load``).
    """
    import torch

    from ..weights import read_weights

    weights = read_weights(path)
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.state.items()}


def choose_bf16(device, requested=None):
    """bf16 autocast only where it is native: CUDA, or a CPU with AVX512-BF16/AMX.

    On an AVX2-only CPU a bf16 step was measured 8x slower than fp32.
    ``requested`` (True/False) overrides; returns (use_bf16, reason).
    """
    if requested is not None:
        return requested, "as asked"
    if device.startswith("cuda"):
        return True, "CUDA"
    if cpu.cpu_has_bf16():
        return True, "the CPU has native bf16"
    return False, "the CPU has no native bf16 (AVX512-BF16/AMX), where bf16 runs emulated and slower"


def run_training(task, data_dir, out, width=DEFAULT_WIDTH, patch=128, steps=4000, batch=4,
                 resume=None, val_dir=None, seed=0, threads=None, log=print, *,
                 scale=None, reduction=4, lr=3e-4, minutes=None, checkpoint_every=300.0,
                 val_every=1000, val_crop=256, device=None, bf16=None, progress=True,
                 log_every=25):
    import torch

    if task not in synth.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {synth.TASKS}")
    from .twin import CMFNet, config_from_state_dict, strip_module

    if threads:
        torch.set_num_threads(int(threads))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16, why = choose_bf16(device, bf16)
    log(f"precision: {'bf16 autocast' if bf16 else 'fp32'} ({why})")
    dirs = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")
    log_path = out.with_name(out.name + ".log.jsonl")

    state = load_resume(resume) if resume else None
    if state is not None:
        cfg = state["config"]
        width, scale, reduction = cfg["n_feat"], cfg["scale_unetfeats"], cfg["reduction"]
    if scale is None:
        scale = width // 2
    config = dict(n_feat=int(width), scale_unetfeats=int(scale), reduction=int(reduction))

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CMFNet(**config)
    if state is None:
        init_near_identity(model)
    else:
        model.load_state_dict(state["model"], strict=True)
    model.to(device)
    cl = device == "cpu"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    step, elapsed0, history = 0, 0.0, []
    if state is not None and not state.get("fine_tune"):
        if _optimizer_fits(state["optimizer"], opt):
            opt.load_state_dict(state["optimizer"])
        else:  # saved by a model whose parameters were declared in another order
            log("optimizer moments do not fit this model's parameter order; restarting them")
        step = int(state["step"])
        elapsed0 = float(state["elapsed"])
        history = list(state.get("history", []))
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if minutes is None:
            minutes = state.get("minutes")
        log(f"resumed from {resume} at step {step} ({elapsed0 / 60:.1f} min trained)")

    min_side = patch + 48
    imgs = load_images(dirs, min_side)
    if not imgs:
        raise ValueError(f"no readable images in {', '.join(map(str, dirs))}")
    val_pairs = load_pairs(val_dir, val_crop) if val_dir else []
    log(f"task={task} config={config} patch={patch} batch={batch} steps={steps} "
        f"minutes={minutes} images={len(imgs)} val_pairs={len(val_pairs)} device={device} "
        f"threads={torch.get_num_threads()} bf16={bf16}")

    warm = min(200, max(1, steps // 20))
    budget = minutes * 60.0 if minutes else None

    def progress_frac(s, el):
        f = s / steps
        if budget:
            f = max(f, el / budget)
        return min(f, 1.0)

    def lr_at(s, el):
        if s < warm:
            return lr * (s + 1) / warm
        f = progress_frac(s, el)
        return 1e-6 + 0.5 * (lr - 1e-6) * (1 + math.cos(math.pi * f))

    def save_ckpt(el):
        _atomic_save({"model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                      "optimizer": opt.state_dict(), "step": step, "elapsed": el,
                      "history": history, "rng": rng.bit_generator.state,
                      "torch_rng": torch.get_rng_state(), "config": config, "task": task,
                      "steps": steps, "minutes": minutes, "seed": seed, "patch": patch,
                      "batch": batch, "lr": lr}, ckpt_path)

    def logline(rec):
        with open(log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")

    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=steps, initial=step, desc=task, dynamic_ncols=True,
                       mininterval=5.0, file=sys.stderr)
        except ImportError:
            bar = None

    def do_val(el):
        if not val_pairs:
            return None
        v = validate(model, val_pairs, device)
        log(f"[val step {step}] input PSNR {v['psnr_in']:.2f} SSIM {v['ssim_in']:.4f} | "
            f"model PSNR {v['psnr']:.2f} SSIM {v['ssim']:.4f}")
        logline({"step": step, "time": el, **{f"val_{k}": x for k, x in v.items()}})
        return v

    model.train()
    t0 = time.time() - elapsed0
    last_ckpt = time.time()
    run_loss, run_n = 0.0, 0
    eps2 = 1e-3 ** 2
    while True:
        el = time.time() - t0
        if step >= steps or progress_frac(step, el) >= 1.0:
            break
        cur_lr = lr_at(step, el)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        xb, yb = make_batch(task, imgs, patch, batch, rng)
        x = torch.from_numpy(xb).to(device)
        y = torch.from_numpy(yb).to(device)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            o = model(x)[0]
        loss = torch.sqrt((o.float() - y) ** 2 + eps2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = loss.item()
        run_loss += lv
        run_n += 1
        if step % log_every == 0 or step == 1:
            el = time.time() - t0
            rec = {"step": step, "loss": run_loss / run_n, "lr": cur_lr, "time": el}
            history.append(rec)
            logline(rec)
            if bar is None and step % (log_every * 4) == 0:
                log(f"step {step}/{steps} loss {rec['loss']:.4f} lr {cur_lr:.2e} {el / 60:.1f} min")
            run_loss, run_n = 0.0, 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.4f}", lr=f"{cur_lr:.1e}", refresh=False)
        if time.time() - last_ckpt >= checkpoint_every:
            save_ckpt(time.time() - t0)
            last_ckpt = time.time()
        if val_every and step % val_every == 0:
            do_val(time.time() - t0)
    if bar is not None:
        bar.close()
    wall = time.time() - t0
    save_ckpt(wall)
    v = do_val(wall)
    sd = {k: v_.detach().float().cpu().contiguous() for k, v_ in model.state_dict().items()}
    _atomic_save({"epoch": step, "state_dict": sd}, out)
    meta = {
        "task": task, "config": dict(config, in_c=3, out_c=3, kernel_size=3, bias=False),
        "steps": step, "wall_time_s": round(wall, 1), "patch": patch, "batch": batch,
        "lr": lr, "seed": seed, "schedule": "Adam, cosine with warm-up, Charbonnier loss",
        "precision": "bf16 autocast" if bf16 else "fp32", "device": device,
        "hardware": hardware_string(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "data": [str(d) for d in dirs], "images": len(imgs),
        "synthesis": f"cmfnet_core.training.synth ({task})",
        "validation": {"dir": str(val_dir), "crop": val_crop, **(v or {})} if val_dir else None,
    }
    with open(out.with_name(out.name + ".json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    log(f"saved {out} after {step} steps, {wall / 60:.1f} min")
    return meta


# ------------------------------------------------------------------ CLI
def add_arguments(parser):
    p = parser
    p.add_argument("--task", required=True, choices=synth.TASKS, help="what to train")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="folder of clean photos (repeat for several)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="output checkpoint (official format {'state_dict': ...})")
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="n_feat (default %(default)s)")
    p.add_argument("--scale", type=int, default=None, help="scale_unetfeats (default width/2)")
    p.add_argument("--patch", type=int, default=128, help="training patch size (multiple of 8)")
    p.add_argument("--steps", type=int, default=4000, help="number of optimiser steps")
    p.add_argument("--batch", type=int, default=4, help="patches per step")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget; the LR schedule ends when steps or time run out")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    p.add_argument("--resume", metavar="CKPT", default=None,
                   help="resume from OUT.ckpt, or fine-tune from an official-format file")
    p.add_argument("--val", metavar="DIR", default=None, help="paired data DIR/input + DIR/gt")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=float, default=300.0, metavar="SEC")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", dest="bf16", action="store_const", const=True, default=None,
                           help="force bf16 autocast (default: only where the CPU or GPU runs it natively)")
    precision.add_argument("--no-bf16", dest="bf16", action="store_const", const=False,
                           help="force fp32")
    return parser


def run_from_args(args, log=print):
    return run_training(args.task, args.data, args.out, width=args.width, patch=args.patch,
                        steps=args.steps, batch=args.batch, resume=args.resume, val_dir=args.val,
                        seed=args.seed, threads=args.threads, log=log, scale=args.scale,
                        lr=args.lr, minutes=args.minutes, checkpoint_every=args.checkpoint_every,
                        val_every=args.val_every, device=args.device, bf16=args.bf16)


def run(args) -> int:
    """``cmfnet train``: train, print where the weights went; exit code 0."""
    result = run_from_args(args, log=lambda message: print(message, file=sys.stderr))
    print(args.out)
    return 0 if result is not None else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cmfnet train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except ImportError as e:
        print(f"cmfnet train needs PyTorch: pip install 'cmfnet-restore[train]' ({e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
