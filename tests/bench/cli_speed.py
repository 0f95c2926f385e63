"""Benchmark (not a test): ``cmfnet restore`` of this checkout against another's, as a user runs it.

    .venv/bin/python tests/bench/cli_speed.py --code /path/to/older/checkout [--rounds 3]

Issue 12's targets are whole commands: a 2000 x 1500 photo and a 512 x 340 image,
``cmfnet restore --task deblur`` with the default weights and settings, process start
included. Each checkout runs with its own model cache, warmed by one untimed run per
image (exports and compiles are not what is measured); then the rounds alternate
between the checkouts, so a busy machine slows both alike. Reported: the median
wall-clock seconds per command for each, the ratio, and the PSNR between the outputs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SOURCE = ROOT / "resources" / "samples" / "haze_1.jpg"  # 1600 x 1200: a real photo to resize
SIZES = {"photo 2000x1500": (2000, 1500), "image 512x340": (512, 340)}


def restore_seconds(code: Path, cache: Path, image: Path, output: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(code), CMFNET_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "cmfnet_core.cli", "restore", str(image), "--task", "deblur",
               "-o", str(output), "--overwrite", "-q"]
    start = time.perf_counter()
    subprocess.run(command, cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    from cmfnet_core.training.metrics import psnr

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", required=True, type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    checkouts = {"this": ROOT, "other": args.code.resolve()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = cv2.imread(str(SOURCE))
        images = {}
        for name, size in SIZES.items():
            images[name] = tmp / f"{name.split()[0]}.png"
            cv2.imwrite(str(images[name]), cv2.resize(photo, size, interpolation=cv2.INTER_AREA))
        out = {(who, name): tmp / f"{who}-{name.split()[0]}.png" for who in checkouts for name in SIZES}
        caches = {who: tmp / f"cache-{who}" for who in checkouts}
        for who, code in checkouts.items():
            for name in SIZES:
                warm = restore_seconds(code, caches[who], images[name], out[who, name])
                print(f"warm-up {who} {name}: {warm:.1f} s", file=sys.stderr)
        times = {key: [] for key in out}
        for round_ in range(args.rounds):
            for name in SIZES:
                for who, code in (checkouts.items() if round_ % 2 == 0 else reversed(checkouts.items())):
                    times[who, name].append(restore_seconds(code, caches[who], images[name], out[who, name]))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        print(f"{'case':<18} {'this (s)':>9} {'other (s)':>10} {'speed-up':>9} {'PSNR this vs other':>19}")
        for name in SIZES:
            this, other = (statistics.median(times[who, name]) for who in checkouts)
            agree = psnr(*(cv2.imread(str(out[who, name])) / 255.0 for who in checkouts))
            print(f"{name:<18} {this:>9.2f} {other:>10.2f} {other / this:>8.2f}x {agree:>16.1f} dB")


if __name__ == "__main__":
    main()
