"""Benchmark (not a test): how closely tiled restoration matches a whole-image pass.

    .venv/bin/python tests/bench/tiling_agreement.py [--weights FILE] [--task T] [--tile 256]

Restores sample photos once whole (one tile holds the photo) and once tiled, each
with and without local statistics in the channel attention, and prints the PSNR
of tiled against whole. Uses the exact Paddle backend.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cmfnet_core.engine import Restorer
from cmfnet_core.imageio import read_image
from cmfnet_core.training import metrics

ROOT = Path(__file__).resolve().parents[2]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return metrics.psnr(a, b, peak=255.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--task", default="dehaze")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--size", type=int, default=512, help="crop side of the test photos")
    parser.add_argument("photos", nargs="*", default=[str(ROOT / "resources/samples/haze_1.jpg"),
                                                      str(ROOT / "resources/samples/deblur_1.png")])
    args = parser.parse_args()
    print(f"tile {args.tile}, overlap {args.overlap}, crops {args.size}x{args.size}, task {args.task}")
    print(f"{'photo':<16} {'local stats':<12} {'PSNR tiled vs whole (dB)':>24}")
    for local in (False, True):
        whole = Restorer(args.task, args.weights, tile=args.size, overlap=args.overlap,
                         backend="paddle", local_stats=local)
        tiled = Restorer(args.task, args.weights, tile=args.tile, overlap=args.overlap,
                         backend="paddle", local_stats=local)
        for photo_path in args.photos:
            pixels = read_image(photo_path).pixels[: args.size, : args.size]
            value = psnr(whole.restore(pixels), tiled.restore(pixels))
            label = f"window {tiled.local_window}" if local else "off (global)"
            print(f"{Path(photo_path).name:<16} {label:<12} {value:>24.2f}", flush=True)


if __name__ == "__main__":
    main()
