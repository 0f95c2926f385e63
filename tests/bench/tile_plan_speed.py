"""Benchmark (not a test): restore time of this checkout's engine against another's.

    .venv/bin/python tests/bench/tile_plan_speed.py --code /path/to/older/checkout [--rounds 2]

Each checkout restores the same photos (a 1280 x 720 GoPro-size frame and the
app's 512 x 340 preview) with the default weights on the default backend, in
its own child process that stays warm; rounds alternate between the two, so a
busy machine slows both alike. Reported: the median seconds per photo for each,
the ratio, and the PSNR between the two outputs. The preview runs as the app
runs it: ``restore_whole`` where the checkout has it, else ``restore`` with the
app's tile setting (256).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys, time
import cv2, numpy as np
from cmfnet_core.engine import Restorer
photo = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
cases = {"photo 1280x720": cv2.resize(photo, (1280, 720), interpolation=cv2.INTER_AREA),
         "preview 512x340": cv2.resize(photo, (512, 340), interpolation=cv2.INTER_AREA)}
full = Restorer("deblur")
app = Restorer("deblur", tile=256)
def run(name):
    image = cases[name]
    if name.startswith("preview"):
        return app.restore_whole(image) if hasattr(app, "restore_whole") else app.restore(image)
    return full.restore(image)
for name in cases:
    run(name)  # export/compile for the shapes: not timed
print("READY", flush=True)
for line in sys.stdin:
    name = line.strip()
    start = time.perf_counter()
    out = run(name)
    np.save(sys.argv[2] + "/" + name.split()[0] + ".npy", out)
    print(json.dumps({"name": name, "seconds": time.perf_counter() - start}), flush=True)
"""


def main() -> int:
    from cmfnet_core.training.metrics import psnr  # this checkout's, like the code it times

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="the other checkout (e.g. an older main)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--photo", default=str(ROOT / "resources" / "samples" / "haze_1.jpg"))
    args = parser.parse_args()
    import tempfile

    children, folders = {}, {}
    for label, code in (("this", ROOT), ("other", args.code)):
        folders[label] = tempfile.mkdtemp(prefix=f"plan-{label}-")
        children[label] = subprocess.Popen([sys.executable, "-c", CHILD, args.photo, folders[label]], cwd=code,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert children[label].stdout.readline().strip() == "READY"
    names = ["photo 1280x720", "preview 512x340"]
    times = {(label, name): [] for label in children for name in names}
    for round_ in range(args.rounds):
        order = list(children) if round_ % 2 == 0 else list(children)[::-1]
        for name in names:
            for label in order:
                child = children[label]
                child.stdin.write(name + "\n")
                child.stdin.flush()
                times[label, name].append(json.loads(child.stdout.readline())["seconds"])
    for child in children.values():
        child.stdin.close()
        child.wait()
    for name in names:
        this, other = (statistics.median(times[label, name]) for label in ("this", "other"))
        key = name.split()[0]
        apart = psnr(np.load(f"{folders['this']}/{key}.npy"), np.load(f"{folders['other']}/{key}.npy"), peak=255)
        print(f"{name}: this {this:.2f} s, other {other:.2f} s, {other / this:.2f}x faster; "
              f"outputs {apart:.1f} dB apart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
