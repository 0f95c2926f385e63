"""Benchmark (not a test): the full-size CMFNet (the authors' size) per precision on this CPU.

    nice .venv/bin/python tests/bench/full_size_speed.py [--rounds 3] [--threads 2] [--no-paddle]
    nice .venv/bin/python tests/bench/full_size_speed.py --progress [--precision auto]

Speed does not depend on the weights' values, so a full-size checkpoint with random
weights (PyTorch's default init, :func:`cmfnet_core.bench._random_weights`) stands in
for the downloaded ones; fidelity does, so the int8 figure here is for random
weights only (issue 24 measured 29.5 dB on such a checkpoint).

Default mode, in one process: OpenVINO fp32, bf16 (where the CPU runs it) and int8,
each built for the engine's default full-size tile (256) and for the app's two
preview passes of a 4000 x 3000 photo (``plugin/app/jobs.preview_sides``: a first look
at 256 px, the final one at 512), timed in interleaved rounds (medians); Paddle fp32
once on the 256 tile for reference. A 12-MP photo is extrapolated from the tile time
and the engine's tile plan (every tile of a photo has one shape). Each path's output
is compared with OpenVINO fp32 (PSNR, clipped to [0, 1]) on a real photo crop.

``--progress``: a real restore through the engine (``--precision``, default auto) of
a photo of several rows of tiles, recording when each tile's progress arrived, what
a linear ETA said at each point against what was really left, and, in a second run,
how long a cancel takes to stop it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PHOTO = (3000, 4000)  # 12 MP, height x width
TILE = 256  # the engine's DEFAULT_TILE for full-size weights


def psnr(a, b) -> float:
    a, b = np.clip(a, 0, 1).astype(np.float64), np.clip(b, 0, 1).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def photo_crop(height: int, width: int) -> np.ndarray:
    """A real photo, resized to cover and centre-cropped: 1 x 3 x height x width in [0, 1]."""
    import cv2

    image = cv2.cvtColor(cv2.imread(str(ROOT / "resources" / "samples" / "deblur_1.png")), cv2.COLOR_BGR2RGB)
    scale = max(height / image.shape[0], width / image.shape[1])
    image = cv2.resize(image, (int(np.ceil(image.shape[1] * scale)), int(np.ceil(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    y, x = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    crop = image[y:y + height, x:x + width].astype(np.float32) / 255
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None])


def full_weights_file(folder: Path) -> Path:
    """A full-size checkpoint with random weights, saved as the project's format (a user file)."""
    from cmfnet_core.bench import _random_weights
    from cmfnet_core.weights import save_weights

    return save_weights(_random_weights("full"), folder / "full_random.pdparams", task="deblur",
                        provenance={"kind": "official", "note": "random weights, benchmark only"})


def load_info() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def speed(args) -> dict:
    from cmfnet_core import cpu
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.backends.precision import cpu_has_bf16
    from cmfnet_core.engine import preview_tile_shape
    from cmfnet_core.tiling import plan_tiles
    from cmfnet_core.weights import read_weights

    sys.path.insert(0, str(ROOT))
    from plugin.app.jobs import preview_sides

    folder = Path(tempfile.mkdtemp(prefix="cmfnet-fullbench-"))
    weights = read_weights(full_weights_file(folder))
    shapes = {"tile 256": (TILE, TILE)}
    for side in preview_sides(*PHOTO):
        shapes[f"preview {side}"] = preview_tile_shape(*PHOTO, long_side=side)
    precisions = ["fp32"] + (["bf16"] if cpu_has_bf16() else []) + ["int8"]
    print(f"# {cpu.describe()}; {load_info()}; shapes {shapes}", file=sys.stderr, flush=True)
    report = {"cpu": cpu.describe(), "threads": args.threads, "shapes": shapes, "build_s": {},
              "ran": {}, "ms": {}, "psnr_vs_fp32": {}, "load_before": os.getloadavg()}
    backends = {}
    for precision in precisions:
        for label, shape in shapes.items():
            start = time.perf_counter()
            backend = OpenVINOBackend(weights, tile_shape=shape, precision=precision, threads=args.threads)
            report["build_s"][f"{precision} {label}"] = round(time.perf_counter() - start, 1)
            report["ran"][precision] = backend.precision
            backends[precision, label] = backend
            print(f"# built {precision} {label} in {report['build_s'][f'{precision} {label}']} s "
                  f"({load_info()})", file=sys.stderr, flush=True)
    inputs = {label: photo_crop(*shape) for label, shape in shapes.items()}
    outputs = {}
    times: dict[tuple[str, str], list[float]] = {key: [] for key in backends}
    for round_ in range(args.rounds):
        for label in shapes:
            for precision in precisions:
                start = time.perf_counter()
                out = backends[precision, label].run(inputs[label])
                times[precision, label].append(time.perf_counter() - start)
                outputs[precision, label] = out
        print(f"# round {round_ + 1}: " + ", ".join(f"{p} {l} {t[-1]:.2f}s" for (p, l), t in times.items())
              + f" ({load_info()})", file=sys.stderr, flush=True)
    # on a loaded machine the ratio within a round is steadier than either time
    report["speedup_vs_fp32"] = {
        f"{precision} {label}": round(statistics.median(
            f / p for f, p in zip(times["fp32", label], times[precision, label])), 2)
        for precision in precisions[1:] for label in shapes}
    for (precision, label), values in times.items():
        report["ms"][f"{precision} {label}"] = round(statistics.median(values) * 1000)
        if precision != "fp32":
            report["psnr_vs_fp32"][f"{precision} {label}"] = round(
                psnr(outputs[precision, label], outputs["fp32", label]), 2)
    if args.paddle:
        from cmfnet_core.backends.paddle import PaddleBackend

        paddle = PaddleBackend(weights, threads=args.threads)
        paddle.run(inputs["tile 256"])  # its first run sets itself up
        start = time.perf_counter()
        out = paddle.run(inputs["tile 256"])
        report["ms"]["paddle fp32 tile 256"] = round((time.perf_counter() - start) * 1000)
        report["psnr_vs_fp32"]["openvino fp32 vs paddle, tile 256"] = round(
            psnr(outputs["fp32", "tile 256"], out), 2)
        for precision in precisions[1:]:
            report["psnr_vs_fp32"][f"{precision} vs paddle, tile 256"] = round(
                psnr(outputs[precision, "tile 256"], out), 2)
    _, tiles = plan_tiles(*PHOTO, TILE, 32)
    tile_h, tile_w = tiles[0].h, tiles[0].w
    report["photo_12mp"] = {"tiles": len(tiles), "tile_shape": [tile_h, tile_w]}
    for precision in precisions + (["paddle fp32"] if args.paddle else []):
        key = f"{precision} tile 256" if precision != "paddle fp32" else "paddle fp32 tile 256"
        # the plan's tile may be a little smaller than 256: scale by its area
        seconds = report["ms"][key] / 1000 * len(tiles) * (tile_h * tile_w) / (TILE * TILE)
        report["photo_12mp"][precision] = round(seconds)
    report["load_after"] = os.getloadavg()
    return report


def progress_run(args) -> dict:
    """Progress, ETA and cancel on a real restore of several minutes."""
    from cmfnet_core.engine import Cancelled, CancelToken, Restorer

    folder = Path(tempfile.mkdtemp(prefix="cmfnet-fullbench-"))
    path = full_weights_file(folder)
    restorer = Restorer("deblur", path, precision=args.precision, threads=args.threads)
    image = (photo_crop(*args.size)[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    events: list[tuple[float, int, int]] = []
    start = time.perf_counter()

    def progress(done, total):
        events.append((time.perf_counter() - start, done, total))
        print(f"# {events[-1][0]:7.1f} s  {done}/{total}", file=sys.stderr, flush=True)

    restorer.restore(image, progress=progress)
    finished = time.perf_counter() - start
    total = events[-1][2]
    # a linear ETA (what a bar shows once its rate settles): elapsed / done * left,
    # measured from the first tile's end (the first includes building the model)
    etas = []
    first_end = next(t for t, d, _ in events if d == 1)
    for t, done, _ in events:
        if 1 < done < total:
            said = (t - first_end) / (done - 1) * (total - done)
            etas.append({"done": done, "at_s": round(t, 1), "eta_s": round(said, 1),
                         "truth_s": round(finished - t, 1)})
    per_tile = [b[0] - a[0] for a, b in zip(events[1:], events[2:])]
    # cancel: set from another thread in the middle of a tile, time until restore stops
    token = CancelToken()
    stopped = {}

    def cancel_later():
        time.sleep(args.cancel_after)
        stopped["set"] = time.perf_counter()
        token.cancel()

    threading.Thread(target=cancel_later, daemon=True).start()
    try:
        restorer.restore(image, cancel=token)
        cancelled = False
    except Cancelled:
        cancelled = True
    latency = time.perf_counter() - stopped.get("set", time.perf_counter())
    return {"precision_asked": args.precision, "size": args.size, "tiles": total,
            "first_tile_s": round(first_end, 1), "total_s": round(finished, 1),
            "tile_s_median": round(statistics.median(per_tile), 2),
            "tile_s_min_max": [round(min(per_tile), 2), round(max(per_tile), 2)],
            "eta_checks": etas[:: max(1, len(etas) // 8)], "cancelled": cancelled,
            "cancel_latency_s": round(latency, 2), "load": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--no-paddle", dest="paddle", action="store_false")
    parser.add_argument("--progress", action="store_true", help="progress, ETA and cancel instead")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--size", type=int, nargs=2, default=(704, 928), metavar=("H", "W"))
    parser.add_argument("--cancel-after", type=float, default=20.0)
    args = parser.parse_args()
    report = progress_run(args) if args.progress else speed(args)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
