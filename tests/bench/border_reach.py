"""Benchmark (not a test): how far a tile's border effect reaches into it, and which
padding of the photo's own border comes closest to having real pixels beyond it.

    PYTHONPATH=. .venv/bin/python tests/bench/border_reach.py [--full] [--size 640] [PHOTO...]

For each photo, a ``size`` x ``size`` region is restored as one piece (the truth with real
context), then its central crop on its own: the difference at each distance from the
crop's edge (mean over the ring, in 8-bit levels; and the 99th percentile) says how much
real context a tile needs before the pixels it keeps agree with the whole image. The
same crop restored after padding it by reflection / replication / zeros (the network's
own zero padding) says which choice for the photo's border is closest to real context.
Channel attention with global statistics (the official model) and with local windows
are both measured. ``--full``: a full-size network (n_feat 96) with random weights
instead of the bundled light ones (slow: keep ``--size`` small).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cmfnet_core.imageio import read_image
from cmfnet_core.weights import Weights, build_network, read_weights, resolve_weights

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real" / "haze"


def random_full_size() -> Weights:
    """A full-size CMFNet (the official widths) with PyTorch's default initialisation, as
    ``cmfnet bench`` times it (Paddle's default initialisation makes its outputs explode)."""
    from cmfnet_core.bench import _random_weights

    return _random_weights("full")


def runner(weights: Weights, window: int):
    import paddle

    network = build_network(weights, local_window=window)

    def run(image: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            batch = paddle.to_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32))
            return network(batch).numpy()[0].transpose(1, 2, 0)
    return run


def ring_profile(diff: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 99th percentile of ``diff`` (H x W) at each distance 0..reach-1 from its edge."""
    h, w = diff.shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    distance = np.minimum(np.minimum(rows, h - 1 - rows), np.minimum(cols, w - 1 - cols))
    means = np.array([diff[distance == d].mean() for d in range(reach)])
    p99 = np.array([np.percentile(diff[distance == d], 99) for d in range(reach)])
    return means, p99


def first_below(profile: np.ndarray, level: float) -> int:
    """The distance from which on the profile stays below ``level``."""
    above = np.nonzero(profile >= level)[0]
    return 0 if above.size == 0 else int(above[-1]) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-size network, random weights")
    parser.add_argument("--task", default="dehaze")
    parser.add_argument("--size", type=int, default=640, help="side of the region restored whole")
    parser.add_argument("--crop", type=int, default=0, help="side of the crop (default: size - 2 x 160)")
    parser.add_argument("--windows", default="0,auto", help="local windows (0: global statistics)")
    parser.add_argument("--pads", default="zeros:0,reflect:16,reflect:64,symmetric:64,edge:64",
                        help="paddings of the crop to compare, mode:pixels")
    parser.add_argument("photos", nargs="*", default=[str(REAL / "dpzhu_softmatting_11.jpg"),
                                                      str(ROOT / "resources/samples/haze_1.jpg")])
    args = parser.parse_args()
    weights = random_full_size() if args.full else read_weights(resolve_weights(args.task))
    patch = weights.meta.get("provenance", {}).get("training", {}).get("patch", 256)
    crop = args.crop or args.size - 2 * 160
    margin = (args.size - crop) // 2
    print(f"n_feat {weights.config.n_feat}, region {args.size}, crop {crop} (margin {margin})")
    for window_arg in args.windows.split(","):
        window = patch if window_arg == "auto" else int(window_arg)
        run = runner(weights, window)
        for photo in args.photos:
            pixels = read_image(photo).pixels[..., :3].astype(np.float32) / 255.0
            y0, x0 = (pixels.shape[0] - args.size) // 2, (pixels.shape[1] - args.size) // 2
            region = pixels[y0:y0 + args.size, x0:x0 + args.size]
            started = time.perf_counter()
            truth = run(region)[margin:margin + crop, margin:margin + crop]
            seconds = time.perf_counter() - started
            inner = region[margin:margin + crop, margin:margin + crop]
            name = Path(photo).name
            print(f"\n{name} window {window or 'global'} (whole region {seconds:.1f} s)")
            for mode, pad in (item.split(":") for item in args.pads.split(",")):
                pad = 0 if mode == "zeros" else int(pad)  # zeros: the network's own padding
                padded = np.pad(inner, ((pad, pad), (pad, pad), (0, 0)), mode=mode) if pad else inner
                out = run(padded)[pad:pad + crop, pad:pad + crop]
                diff = np.abs(out - truth).mean(axis=2) * 255
                means, p99 = ring_profile(diff, crop // 2)
                print(f"  pad {mode:<9} {pad:>3}: border 0-6 px {means[:6].mean():5.2f} lv, "
                      f"centre {means[-8:].mean():5.2f}; mean < 1 lv from {first_below(means, 1):>3} px, "
                      f"< 0.25 from {first_below(means, 0.25):>3}; p99 < 1 lv from {first_below(p99, 1):>3}",
                      flush=True)

if __name__ == "__main__":
    main()
