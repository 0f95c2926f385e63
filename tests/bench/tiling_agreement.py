"""Benchmark (not a test): how closely tiled restoration matches a one-tile pass, and the frame.

    PYTHONPATH=. .venv/bin/python tests/bench/tiling_agreement.py [--weights FILE] [--task T]
        [--tiles 0,256,512] [--contexts auto,0] [--local-stats] [PHOTO...]

Restores real photos once as one tile and once tiled, for each tile size (0: the
automatic one) and each context (``auto``: what the engine gives the network; 0: tiles
that see nothing beyond what they keep, as before issue 20), and prints the PSNR of
tiled against one tile, the worst row or column (mean difference, levels) and the
border frame (``cmfnet_core.agreement``), with the pixels computed per photo pixel.
OpenVINO fp32 by default (``--backend paddle`` for the exact reference).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from cmfnet_core.agreement import frame, psnr, worst_line
from cmfnet_core.engine import Restorer
from cmfnet_core.imageio import read_image

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real" / "haze"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--task", default="dehaze")
    parser.add_argument("--tiles", default="0,256,512")
    parser.add_argument("--contexts", default="auto,0")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--local-stats", action="store_true")
    parser.add_argument("photos", nargs="*", default=[str(REAL / "dpzhu_softmatting_11.jpg"),
                                                      str(ROOT / "resources/samples/haze_1.jpg")])
    args = parser.parse_args()
    print(f"task {args.task}, {args.backend} {args.precision}, local statistics {args.local_stats}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'photo':<26} {'context':>7} {'tile':>5} {'px/px':>6} {'PSNR dB':>8} {'worst line':>10} "
          f"{'frame':>6} {'s':>6}")
    for photo in args.photos:
        pixels = read_image(photo).pixels[..., :3]
        for context_arg in args.contexts.split(","):
            context = None if context_arg == "auto" else int(context_arg)
            options = dict(backend=args.backend, precision=args.precision, context=context,
                           local_stats=args.local_stats)
            whole = Restorer(args.task, args.weights, **options).restore_whole(pixels)
            for tile in (int(t) for t in args.tiles.split(",")):
                restorer = Restorer(args.task, args.weights, tile=tile, **options)
                if context == 0:  # the old engine's blend: 32 px
                    restorer = Restorer(args.task, args.weights, tile=tile, overlap=32, **options)
                _, tiles, used = restorer.plan(*pixels.shape[:2])
                started = time.perf_counter()
                tiled = restorer.restore(pixels)
                seconds = time.perf_counter() - started
                computed = sum(t.h * t.w for t in tiles) / (pixels.shape[0] * pixels.shape[1])
                print(f"{Path(photo).name[:26]:<26} {used:>7} {restorer.tile:>5} {computed:>6.2f} "
                      f"{psnr(tiled, whole):>8.2f} {worst_line(tiled, whole):>10.2f} "
                      f"{frame(pixels, tiled):>6.2f} {seconds:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
