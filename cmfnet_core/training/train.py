"""Train CMFNet (any width) with the PyTorch twin on synthesised pairs.

(About 600 lines: the data, the loop, checkpoints and the options of one training run,
which change together; synthesis, the twin and the metrics are modules of their own.)

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
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import cpu
from ..imageio import READABLE
from . import synth
from .metrics import psnr, ssim

DEFAULT_WIDTH = 24
CHARBONNIER_EPS = 1e-3  # the loss is sqrt(error^2 + eps^2): L1 that stays smooth at zero


# ------------------------------------------------------------------ data
def list_images(dirs):
    files = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            files.append(p)
            continue
        files += sorted(f for f in p.rglob("*") if f.suffix.lower() in READABLE)
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
        if f.suffix.lower() not in READABLE or not g.exists():
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


@dataclass
class _Run:
    """One run's settings and moving state, handed from step to step of :func:`run_training`."""

    task: str
    config: dict
    steps: int
    patch: int
    batch: int
    lr: float
    seed: int
    minutes: float | None
    device: str
    bf16: bool
    out: Path
    log: object = print
    model: object = None
    opt: object = None
    rng: np.random.Generator | None = None
    step: int = 0
    elapsed0: float = 0.0
    history: list = field(default_factory=list)

    @property
    def channels_last(self) -> bool:
        return self.device == "cpu"

    @property
    def ckpt_path(self) -> Path:
        return self.out.with_name(self.out.name + ".ckpt")

    @property
    def log_path(self) -> Path:
        return self.out.with_name(self.out.name + ".log.jsonl")

    def logline(self, rec) -> None:
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


class _Schedule:
    """Linear warm-up, then a cosine to 1e-6 over whichever of steps or ``minutes`` runs out first."""

    def __init__(self, lr, steps, minutes):
        self.lr, self.steps = lr, steps
        self.warm = min(200, max(1, steps // 20))
        self.budget = minutes * 60.0 if minutes else None

    def fraction(self, step, elapsed) -> float:
        f = step / self.steps
        if self.budget:
            f = max(f, elapsed / self.budget)
        return min(f, 1.0)

    def lr_at(self, step, elapsed) -> float:
        if step < self.warm:
            return self.lr * (step + 1) / self.warm
        f = self.fraction(step, elapsed)
        return 1e-6 + 0.5 * (self.lr - 1e-6) * (1 + math.cos(math.pi * f))


def _choose_device(device, bf16, threads, log):
    """Threads, device (CUDA when present) and precision, said in the log: (device, bf16)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16, why = choose_bf16(device, bf16)
    log(f"precision: {'bf16 autocast' if bf16 else 'fp32'} ({why})")
    return device, bf16


def _network_config(state, width, scale, reduction) -> dict:
    """The twin's config: the resumed run's if there is one, else from the options."""
    if state is not None:
        cfg = state["config"]
        width, scale, reduction = cfg["n_feat"], cfg["scale_unetfeats"], cfg["reduction"]
    if scale is None:
        scale = width // 2
    return dict(n_feat=int(width), scale_unetfeats=int(scale), reduction=int(reduction))


def _build_model(run: _Run, state) -> None:
    """Seeded model (near identity, or the resumed weights) on its device, its Adam and the data RNG."""
    import torch

    from .twin import CMFNet

    torch.manual_seed(run.seed)
    run.rng = np.random.default_rng(run.seed)
    model = CMFNet(**run.config)
    if state is None:
        init_near_identity(model)
    else:
        model.load_state_dict(state["model"], strict=True)
    model.to(run.device)
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    run.model = model
    run.opt = torch.optim.Adam(model.parameters(), lr=run.lr, betas=(0.9, 0.999))


def _resume(run: _Run, state, resume) -> None:
    """Carry on a ``.ckpt``'s run exactly: optimiser moments, step, time, history, RNGs, budget."""
    import torch

    if state is None or state.get("fine_tune"):
        return
    if _optimizer_fits(state["optimizer"], run.opt):
        run.opt.load_state_dict(state["optimizer"])
    else:  # saved by a model whose parameters were declared in another order
        run.log("optimizer moments do not fit this model's parameter order; restarting them")
    run.step = int(state["step"])
    run.elapsed0 = float(state["elapsed"])
    run.history = list(state.get("history", []))
    run.rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    if run.minutes is None:
        run.minutes = state.get("minutes")
    run.log(f"resumed from {resume} at step {run.step} ({run.elapsed0 / 60:.1f} min trained)")


def _save_checkpoint(run: _Run, elapsed) -> None:
    """``OUT.ckpt``: everything :func:`_resume` needs to go on exactly where this left off."""
    import torch

    _atomic_save({"model": {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()},
                  "optimizer": run.opt.state_dict(), "step": run.step, "elapsed": elapsed,
                  "history": run.history, "rng": run.rng.bit_generator.state,
                  "torch_rng": torch.get_rng_state(), "config": run.config, "task": run.task,
                  "steps": run.steps, "minutes": run.minutes, "seed": run.seed, "patch": run.patch,
                  "batch": run.batch, "lr": run.lr}, run.ckpt_path)


def _validate(run: _Run, val_pairs, elapsed):
    """PSNR/SSIM on the validation pairs, logged; None without pairs."""
    if not val_pairs:
        return None
    v = validate(run.model, val_pairs, run.device)
    run.log(f"[val step {run.step}] input PSNR {v['psnr_in']:.2f} SSIM {v['ssim_in']:.4f} | "
            f"model PSNR {v['psnr']:.2f} SSIM {v['ssim']:.4f}")
    run.logline({"step": run.step, "time": elapsed, **{f"val_{k}": x for k, x in v.items()}})
    return v


def _progress_bar(run: _Run, progress):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=run.steps, initial=run.step, desc=run.task, dynamic_ncols=True,
                mininterval=5.0, file=sys.stderr)


def _train_step(run: _Run, imgs, lr) -> float:
    """One optimiser step on a fresh synthesised batch at this learning rate: its loss."""
    import torch

    for g in run.opt.param_groups:
        g["lr"] = lr
    xb, yb = make_batch(run.task, imgs, run.patch, run.batch, run.rng)
    x = torch.from_numpy(xb).to(run.device)
    y = torch.from_numpy(yb).to(run.device)
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=run.device.split(":")[0], dtype=torch.bfloat16, enabled=run.bf16):
        o = run.model(x)[0]
    loss = torch.sqrt((o.float() - y) ** 2 + CHARBONNIER_EPS ** 2).mean()
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.opt.step()
    run.step += 1
    return loss.item()


def _train_loop(run: _Run, imgs, val_pairs, schedule: _Schedule, bar, *, checkpoint_every,
                val_every, log_every) -> float:
    """Steps until steps or time run out, logging, checkpointing and validating on the way.

    Returns ``t0``, the wall-clock time the run would have started had it never paused.
    """
    run.model.train()
    t0 = time.time() - run.elapsed0
    last_ckpt = time.time()
    run_loss, run_n = 0.0, 0
    while True:
        el = time.time() - t0
        if run.step >= run.steps or schedule.fraction(run.step, el) >= 1.0:
            return t0
        cur_lr = schedule.lr_at(run.step, el)
        lv = _train_step(run, imgs, cur_lr)
        run_loss += lv
        run_n += 1
        if run.step % log_every == 0 or run.step == 1:
            _log_interval(run, run_loss / run_n, cur_lr, time.time() - t0, quiet=bar is not None,
                          every=log_every)
            run_loss, run_n = 0.0, 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.4f}", lr=f"{cur_lr:.1e}", refresh=False)
        if time.time() - last_ckpt >= checkpoint_every:
            _save_checkpoint(run, time.time() - t0)
            last_ckpt = time.time()
        if val_every and run.step % val_every == 0:
            _validate(run, val_pairs, time.time() - t0)


def _log_interval(run: _Run, loss, lr, elapsed, *, quiet, every) -> None:
    """The interval's mean loss into the history and OUT.log.jsonl; a line now and then without a bar."""
    rec = {"step": run.step, "loss": loss, "lr": lr, "time": elapsed}
    run.history.append(rec)
    run.logline(rec)
    if not quiet and run.step % (every * 4) == 0:
        run.log(f"step {run.step}/{run.steps} loss {loss:.4f} lr {lr:.2e} {elapsed / 60:.1f} min")


def _save_final(run: _Run, wall, dirs, imgs, val_dir, val_crop, validation) -> dict:
    """``OUT`` (official format) and ``OUT.json`` (provenance); returns the provenance."""
    import torch

    sd = {k: v.detach().float().cpu().contiguous() for k, v in run.model.state_dict().items()}
    _atomic_save({"epoch": run.step, "state_dict": sd}, run.out)
    meta = {
        "task": run.task, "config": dict(run.config, in_c=3, out_c=3, kernel_size=3, bias=False),
        "steps": run.step, "wall_time_s": round(wall, 1), "patch": run.patch, "batch": run.batch,
        "lr": run.lr, "seed": run.seed, "schedule": "Adam, cosine with warm-up, Charbonnier loss",
        "precision": "bf16 autocast" if run.bf16 else "fp32", "device": run.device,
        "hardware": hardware_string(run.device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "data": [str(d) for d in dirs], "images": len(imgs),
        "synthesis": f"cmfnet_core.training.synth ({run.task})",
        "validation": {"dir": str(val_dir), "crop": val_crop, **(validation or {})} if val_dir else None,
    }
    with open(run.out.with_name(run.out.name + ".json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    run.log(f"saved {run.out} after {run.step} steps, {wall / 60:.1f} min")
    return meta


def run_training(task, data_dir, out, width=DEFAULT_WIDTH, patch=128, steps=4000, batch=4,
                 resume=None, val_dir=None, seed=0, threads=None, log=print, *,
                 scale=None, reduction=4, lr=3e-4, minutes=None, checkpoint_every=300.0,
                 val_every=1000, val_crop=256, device=None, bf16=None, progress=True,
                 log_every=25):
    """Train the twin and write OUT, OUT.ckpt, OUT.json, OUT.log.jsonl (see the module's doc);
    returns the provenance written to OUT.json."""
    import torch

    if task not in synth.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {synth.TASKS}")
    device, bf16 = _choose_device(device, bf16, threads, log)
    dirs = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = load_resume(resume) if resume else None
    run = _Run(task, _network_config(state, width, scale, reduction), steps, patch, batch, lr, seed,
               minutes, device, bf16, out, log)
    _build_model(run, state)
    _resume(run, state, resume)

    imgs = load_images(dirs, patch + 48)
    if not imgs:
        raise ValueError(f"no readable images in {', '.join(map(str, dirs))}")
    val_pairs = load_pairs(val_dir, val_crop) if val_dir else []
    log(f"task={task} config={run.config} patch={patch} batch={batch} steps={steps} "
        f"minutes={run.minutes} images={len(imgs)} val_pairs={len(val_pairs)} device={device} "
        f"threads={torch.get_num_threads()} bf16={bf16}")

    bar = _progress_bar(run, progress)
    t0 = _train_loop(run, imgs, val_pairs, _Schedule(lr, steps, run.minutes), bar,
                     checkpoint_every=checkpoint_every, val_every=val_every, log_every=log_every)
    if bar is not None:
        bar.close()
    wall = time.time() - t0
    _save_checkpoint(run, wall)
    validation = _validate(run, val_pairs, wall)
    return _save_final(run, wall, dirs, imgs, val_dir, val_crop, validation)


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
