"""Benchmark (not a test): the engine's peak memory against the photo's own size.

    .venv/bin/python tests/bench/engine_memory.py [--megapixels 12,50,100] [--tile 512]

Each size runs in a fresh child process: a uint8 RGB photo is made in memory,
then ``Restorer.restore`` runs over it with the real tile plan and blending but
an identity network (the network's own memory is per tile and does not grow
with the photo; what this measures is what the engine holds for the photo).
Reported per size: the photo's bytes, peak RSS above the process with the
photo and an output-sized array allocated, and that as a multiple of the photo.
``--code DIR`` measures another checkout (e.g. an older one, for before/after).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, resource, sys
import numpy as np
from cmfnet_core.engine import Restorer

class Identity:
    name, precision = "identity", "fp32"
    def run(self, batch):
        return batch

def rss_mb(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) / 1024

megapixels, tile = float(sys.argv[1]), int(sys.argv[2])
width = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 8 * 8
height = int(megapixels * 1e6 / width)
restorer = Restorer("deblur", tile=tile, backend="paddle")
restorer.backend = lambda shape: Identity()
photo = np.full((height, width, 3), 128, np.uint8)
baseline = np.full((height, width, 3), 1, np.uint8)  # an output-sized array, then freed
del baseline
before = rss_mb("VmRSS:") + photo.nbytes / 2**20  # the output the engine must return
out = restorer.restore(photo)
assert out.shape == photo.shape and out.dtype == photo.dtype
print(json.dumps({"megapixels": height * width / 1e6, "photo_mb": photo.nbytes / 2**20,
                  "peak_mb": rss_mb("VmHWM:"), "above_photo_and_output_mb": rss_mb("VmHWM:") - before}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", default="12,50,100")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose engine to measure")
    args = parser.parse_args()
    print(f"{'MP':>6} {'photo MB':>9} {'peak RSS MB':>12} {'engine extra MB':>16} {'x photo':>8}")
    for megapixels in args.megapixels.split(","):
        result = subprocess.run([sys.executable, "-c", CHILD, megapixels, str(args.tile)], cwd=args.code,
                                capture_output=True, text=True, check=True)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        extra = r["above_photo_and_output_mb"]
        print(f"{r['megapixels']:6.1f} {r['photo_mb']:9.0f} {r['peak_mb']:12.0f} {extra:16.0f} "
              f"{extra / r['photo_mb']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
