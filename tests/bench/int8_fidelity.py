"""Benchmark (not a test): int8 recipes against fp32 and bf16, fidelity and speed on this CPU.

    .venv/bin/python tests/bench/int8_fidelity.py                 # the shipped recipe + NNCF's defaults, ~3 min
    .venv/bin/python tests/bench/int8_fidelity.py --options all   # every option (slow: ~1 min each)
    .venv/bin/python tests/bench/int8_fidelity.py --options keep-gates,mixed --tasks dehaze --cache /tmp/c

Each option is a quantisation recipe (``cmfnet_core.backends.quantize.Recipe``),
calibrated on the crops that ship with the package, for each task's default
weights. Measured per option:

* PSNR against the fp32 output (outputs clipped to [0, 1] as the engine
  writes them) on 8 crops of EVAL_SHAPE from the dev inputs
  (``shared/data/{deblur,dehaze,deraindrop}/input``, each crop through its
  task's weights): the minimum and the mean over crops;
* the dev-pair change: PSNR against the ground truth of int8 minus that of
  fp32, mean over the same crops (negative: int8 restores worse);
* ms per 512 x 512 tile, median of interleaved rounds (fp32, bf16 and every
  option take turns, so a busy machine slows all alike), and the speed-up
  over fp32 and bf16;
* seconds to calibrate (only where the cache did not hold it already).

The dev data is used here to measure, never to calibrate. By default the
models go to a fresh temporary cache, so everything is calibrated and
exported in this run; ``--cache`` keeps them for the next run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "data"
EVAL_SHAPE = (384, 512)  # fits every dev input (the dehaze ones are 550 x 411 at the least)
SPEED_TILE = 512
TASKS = ("deblur", "dehaze", "deraindrop")
CROPS_PER_TASK = {"deblur": 3, "dehaze": 3, "deraindrop": 2}
DEFAULT_OPTIONS = ("shipped", "shipped/rest-f32", "nncf-default")


def options():
    """name -> (Recipe, OpenVINO compile properties over the backend's own).

    The rows that study a recipe run NNCF's floating-point rest in f32 (:data:`F32_REST`),
    so they compare quantisations alone; ``shipped`` runs as ``--precision int8`` does
    (the rest in bf16 where the CPU has it).
    """
    from cmfnet_core.backends.quantize import RECIPE, Recipe, shipped_recipe

    base = Recipe()  # NNCF's defaults (preset performance, fast bias correction) on the shipped crops
    every = ("gates", "sam", "output")
    best = base.replace(keep=every, ranges="minmax", preset="mixed")
    return {
        "shipped": (shipped_recipe(), {}),  # for this CPU: see RECIPE_NO_VNNI
        "shipped/rest-f32": (shipped_recipe(), F32_REST),
        # the two recipes shipped, whatever this CPU is (their rest in f32)
        "recipe-vnni": (RECIPE, F32_REST),
        "recipe-no-vnni": (RECIPE.replace(overflow_fix="enable"), F32_REST),
        # one change at a time from NNCF's defaults
        "nncf-default": (base, F32_REST),
        "mixed": (base.replace(preset="mixed"), F32_REST),
        "minmax": (base.replace(ranges="minmax"), F32_REST),
        "histogram": (base.replace(ranges="histogram"), F32_REST),
        "crops-96": (base.replace(crops=96), F32_REST),
        "crops-32x256": (base.replace(crops=32, crop=256), F32_REST),
        "no-fast-bias-corr": (base.replace(fast_bias_correction=False), F32_REST),
        "model-transformer": (base.replace(model_type="transformer"), F32_REST),
        "keep-gates": (base.replace(keep=("gates",)), F32_REST),
        "keep-sam": (base.replace(keep=("sam",)), F32_REST),
        "keep-output": (base.replace(keep=("output",)), F32_REST),
        "keep-all": (base.replace(keep=every), F32_REST),
        # the combination that meets the bar (the shipped one), and changes to it
        "best": (best, F32_REST),
        "best-keep-gates+output": (best.replace(keep=("gates", "output")), F32_REST),
        "best-keep-output": (best.replace(keep=("output",)), F32_REST),
        "best+crops-96": (best.replace(crops=96), F32_REST),
        "best+crops-32x256": (best.replace(crops=32, crop=256), F32_REST),
        "best+histogram": (best.replace(ranges="histogram"), F32_REST),
        "best+seed-1": (best.replace(seed=1), F32_REST),
    }


F32_REST = {"INFERENCE_PRECISION_HINT": "f32"}


from cmfnet_core.training.metrics import psnr  # noqa: E402


def _read(path: Path) -> np.ndarray:
    from cmfnet_core.imageio import read_image

    return read_image(path).pixels[..., :3].astype(np.float32) / 255


def eval_crops(task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input, ground truth) crops of EVAL_SHAPE from the task's dev pairs, as 1 x 3 x H x W."""
    names = sorted(p.name for p in (DEV / task / "input").iterdir())
    count = CROPS_PER_TASK[task]
    picks = [names[i * len(names) // count] for i in range(count)]
    height, width = EVAL_SHAPE
    crops = []
    for index, name in enumerate(picks):
        image, truth = _read(DEV / task / "input" / name), _read(DEV / task / "gt" / name)
        # spread the crops: the left, middle or right part, whatever the photo
        y = (image.shape[0] - height) // 2
        x = [0, (image.shape[1] - width) // 2, image.shape[1] - width][(index * 2 + (count == 2)) % 3]
        crops.append(tuple(np.ascontiguousarray(a[y:y + height, x:x + width].transpose(2, 0, 1)[None])
                           for a in (image, truth)))
    return crops


def build(weights, shape, precision, recipe=None, config=None):
    from cmfnet_core.backends.openvino import OpenVINOBackend

    start = time.perf_counter()
    backend = OpenVINOBackend(weights, precision=precision, tile_shape=shape, recipe=recipe, config=config)
    return backend, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", default=",".join(DEFAULT_OPTIONS),
                        help=f"comma-separated option names, or 'all' (default: {','.join(DEFAULT_OPTIONS)})")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds (default: 5)")
    parser.add_argument("--cache", help="model cache folder to use and keep (default: a fresh temporary one)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default: all three)")
    args = parser.parse_args()
    table = options()
    chosen = list(table) if args.options == "all" else [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = [o for o in chosen if o not in table]
    if unknown:
        print(f"unknown option {unknown[0]!r}; choose from {', '.join(table)}", file=sys.stderr)
        return 2
    if not (DEV / "deblur" / "input").is_dir():
        print(f"dev data not found under {DEV}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cmfnet-int8-bench-") as scratch:
        os.environ["CMFNET_CACHE_DIR"] = args.cache or scratch
        return run(chosen, table, args.rounds, [t.strip() for t in args.tasks.split(",") if t.strip()])


def run(chosen, table, rounds, tasks=TASKS) -> int:
    from cmfnet_core import cpu
    from cmfnet_core.backends.precision import cpu_has_bf16
    from cmfnet_core.weights import read_weights, resolve_weights

    load = os.getloadavg()[0]
    print(f"machine: {cpu.describe()}; load average {load:.2f} at start "
          f"(another process loading the CPU slows every row alike, not the ratios)")
    weights = {task: read_weights(resolve_weights(task)) for task in tasks}
    crops = {task: eval_crops(task) for task in tasks}
    speed_weights = weights.get("deblur") or weights[tasks[0]]
    rows = {}

    def fidelity(make) -> dict:
        """PSNR vs fp32 per crop and the dev-pair change, over every task's crops."""
        versus, change = [], []
        for task in tasks:
            backend = make(task)
            for (image, truth), reference in zip(crops[task], fp32_out[task]):
                out = np.clip(backend.run(image), 0, 1)
                versus.append(psnr(out, reference))
                change.append(psnr(out, truth) - psnr(reference, truth))
        return {"psnr": versus, "change": change}

    fp32_out = {}
    for task in tasks:
        backend, _ = build(weights[task], EVAL_SHAPE, "fp32")
        fp32_out[task] = [np.clip(backend.run(image), 0, 1) for image, _ in crops[task]]
    speed_cases = {"fp32": build(speed_weights, (SPEED_TILE, SPEED_TILE), "fp32")[0]}
    if cpu_has_bf16():
        rows["bf16"] = fidelity(lambda task: build(weights[task], EVAL_SHAPE, "bf16")[0])
        speed_cases["bf16"] = build(speed_weights, (SPEED_TILE, SPEED_TILE), "bf16")[0]
    for name in chosen:
        recipe, config = table[name]
        start = time.perf_counter()
        print(f"option {name}: calibrating/exporting ...", file=sys.stderr, flush=True)
        seconds = {}

        def make(task, recipe=recipe, config=config):
            backend, took = build(weights[task], EVAL_SHAPE, "int8", recipe, config)
            seconds[task] = took
            return backend

        rows[name] = fidelity(make)
        rows[name]["setup_s"] = time.perf_counter() - start
        speed_cases[name] = build(speed_weights, (SPEED_TILE, SPEED_TILE), "int8", recipe, config)[0]
        assert speed_cases[name].precision == "int8", f"{name}: {speed_cases[name].precision} ran"
    times = {name: [] for name in speed_cases}
    tile = np.random.default_rng(0).random((1, 3, SPEED_TILE, SPEED_TILE), dtype=np.float32)
    for backend in speed_cases.values():
        backend.run(tile)  # the first run allocates: not timed
    names = list(speed_cases)
    for index in range(rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            start = time.perf_counter()
            speed_cases[name].run(tile)
            times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}

    print(f"\nfidelity: {sum(len(c) for c in crops.values())} crops of {EVAL_SHAPE[1]}x{EVAL_SHAPE[0]} "
          f"from the dev inputs ({', '.join(f'{t} {len(c)}' for t, c in crops.items())}), each task's "
          f"default weights; speed: one {SPEED_TILE}x{SPEED_TILE} tile, {speed_weights.task} weights, "
          f"{rounds} interleaved rounds, median")
    head = (f"{'option':<20} {'PSNR vs fp32 min':>16} {'mean':>6} {'dev dB mean':>11} {'worst':>6} "
            f"{'ms/tile':>8} {'x fp32':>6} {'x bf16':>6} {'setup s':>7}")
    print(head)
    print("-" * len(head))
    print(f"{'fp32':<20} {'(reference)':>16} {'':>6} {'':>11} {'':>6} {ms['fp32']:>8.0f} {1.0:>6.2f} "
          f"{ms['fp32'] / ms['bf16'] if 'bf16' in ms else float('nan'):>6.2f}")
    for name, row in rows.items():
        psnrs, change = row["psnr"], row["change"]
        bf16 = f"{ms['bf16'] / ms[name]:>6.2f}" if "bf16" in ms else f"{'-':>6}"
        setup = f"{row['setup_s']:>7.0f}" if "setup_s" in row else f"{'':>7}"
        print(f"{name:<20} {min(psnrs):>16.2f} {statistics.mean(psnrs):>6.2f} "
              f"{statistics.mean(change):>+11.3f} {min(change):>+6.3f} {ms[name]:>8.0f} "
              f"{ms['fp32'] / ms[name]:>6.2f} {bf16} {setup}")
    labels = [f"{task}{i + 1}" for task in tasks for i in range(len(crops[task]))]
    print("per crop, PSNR vs fp32 (dev-pair change):")
    for name, row in rows.items():
        print(f"  {name:<18} " + " ".join(f"{label} {p:.1f} ({c:+.2f})" for label, p, c
                                         in zip(labels, row["psnr"], row["change"])))
    for name, (recipe, config) in table.items():
        if name in rows:
            print(f"  {name}: {recipe.as_dict()}{' ' + str(config) if config else ''}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
