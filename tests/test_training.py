"""Degradation synthesis and the training loop (a few steps on tiny data)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cmfnet_core.training import synth


def _photo(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx / (5 + 3 * c) + yy / 7 * c) for c in range(3)], -1)
    img += rng.random((h, w, 3)).astype(np.float32) * 0.2
    for _ in range(6):   # a few hard edges
        x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
        img[y0:y0 + 20, x0:x0 + 20] = rng.random(3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("task", synth.TASKS)
def test_make_pair_shapes_ranges_and_change(task):
    rng = np.random.default_rng(1)
    img = _photo()
    for _ in range(3):
        deg, clean = synth.make_pair(task, img, 64, rng)
        assert deg.shape == clean.shape == (64, 64, 3)
        assert deg.dtype == clean.dtype == np.float32
        assert 0.0 <= deg.min() and deg.max() <= 1.0
        assert 0.0 <= clean.min() and clean.max() <= 1.0
        assert np.abs(deg - clean).mean() > 1e-3


@pytest.mark.parametrize("task", synth.TASKS)
def test_make_pair_is_deterministic(task):
    img = _photo()
    a = synth.make_pair(task, img, 64, np.random.default_rng(7))
    b = synth.make_pair(task, img, 64, np.random.default_rng(7))
    c = synth.make_pair(task, img, 64, np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_blur_kernels_are_normalised():
    rng = np.random.default_rng(0)
    for _ in range(10):
        k = synth.random_blur_kernel(rng)
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert abs(float(k.sum()) - 1.0) < 1e-4 and k.min() >= 0


def test_haze_follows_scattering_model():
    img = np.full((64, 64, 3), 0.2, np.float32)
    hazy, _ = synth.haze(img, np.random.default_rng(3))
    # haze brightens a dark scene, and more toward the top (farther away)
    assert hazy.mean() > 0.25
    assert hazy[:16].mean() > hazy[-16:].mean()


def test_training_runs_loss_falls_and_resumes(tmp_path):
    torch = pytest.importorskip("torch")
    from cmfnet_core.training.train import run_training
    from cmfnet_core.training.twin import CMFNet, strip_module

    data = tmp_path / "clean"
    data.mkdir()
    for i in range(4):
        cv2.imwrite(str(data / f"p{i}.png"), _photo(96, 96, i))
    val = tmp_path / "val"
    (val / "input").mkdir(parents=True)
    (val / "gt").mkdir()
    rng = np.random.default_rng(0)
    clean = _photo(64, 64, 9).astype(np.float32) / 255
    hazy, _ = synth.haze(clean, rng)
    cv2.imwrite(str(val / "gt" / "a.png"), (clean[:, :, ::-1] * 255).round().astype(np.uint8))
    cv2.imwrite(str(val / "input" / "a.png"), (hazy[:, :, ::-1] * 255).round().astype(np.uint8))

    out = tmp_path / "run" / "dehaze.pth"
    logs = []
    kw = dict(width=8, patch=32, batch=4, seed=0, threads=1, log=logs.append, lr=2e-3,
              progress=False, log_every=1, val_every=0, checkpoint_every=1e9)
    meta = run_training("dehaze", str(data), out, steps=40, val_dir=str(val), **kw)
    assert meta["steps"] == 40 and meta["config"]["n_feat"] == 8
    recs = [json.loads(x) for x in out.with_name(out.name + ".log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in recs if "loss" in r]
    assert np.mean(losses[-8:]) < np.mean(losses[:8])
    assert "psnr" in meta["validation"]

    # the output is an official-format checkpoint the twin loads strictly
    sd = torch.load(out, map_location="cpu")["state_dict"]
    assert not any(k.startswith("module.") for k in sd)
    m = CMFNet(n_feat=8, scale_unetfeats=4, reduction=4)
    m.load_state_dict(strip_module(sd), strict=True)

    # resume continues from the saved step and reaches the new total
    ckpt = out.with_name(out.name + ".ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # as --resume reads it
    assert state["step"] == 40
    out2 = tmp_path / "run2" / "dehaze.pth"
    import shutil
    out2.parent.mkdir()
    shutil.copy(ckpt, out2.with_name(out2.name + ".ckpt"))
    meta2 = run_training("dehaze", str(data), out2, steps=44, resume=str(ckpt), **kw)
    assert any("resumed" in line and "step 40" in line for line in logs)
    assert meta2["steps"] == 44      # continued from 40 to the new total
    sd2 = torch.load(out2, map_location="cpu")["state_dict"]
    assert any(not torch.equal(sd[k], sd2[k]) for k in sd)


def test_classical_baselines_and_metrics():
    from cmfnet_core.training.evaluate import dark_channel_prior, median, unsharp_mask
    from cmfnet_core.training.metrics import psnr, ssim

    clean = _photo(96, 128, 3).astype(np.float32) / 255
    assert psnr(clean, clean) == float("inf") and abs(ssim(clean, clean) - 1) < 1e-9
    hazy, _ = synth.haze(clean, np.random.default_rng(0))
    assert psnr(dark_channel_prior(hazy), clean) > psnr(hazy, clean)
    for f in (unsharp_mask, median, dark_channel_prior):
        out = f(clean)
        assert out.shape == clean.shape and 0 <= out.min() and out.max() <= 1


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_evaluate_reads_weights_without_running_code_from_them(tmp_path, small_weights):
    """``evaluate --weights`` goes through the project's reader, as ``cmfnet train --resume`` does."""
    import pickle

    pytest.importorskip("torch")
    from cmfnet_core.training.evaluate import load_twin
    from cmfnet_core.weights import WeightsError

    model = load_twin(small_weights)  # the authors' zip format
    assert not model.training and sum(p.numel() for p in model.parameters()) > 0
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"state_dict": {"x": _Exploit(marker)}}, protocol=2))
    with pytest.raises(WeightsError, match="refused"):
        load_twin(evil)
    assert not marker.exists()
