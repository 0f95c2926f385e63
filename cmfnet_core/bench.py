"""``cmfnet bench``: how fast each backend restores on this machine.

(About 530 lines: the plan of measurements, the table and the recommendation read the
same records and change together; what runs in fresh processes is in bench_child.py.)

Everything compared is measured in one run and interleaved (round 1 runs one
tile on every configuration, then round 2, ...), so a busy or throttling
machine slows all of them alike and the ratios stay meaningful; the table
reports the median over rounds.

First, this machine's practical peak at each precision: the GFLOP/s of one
wide 3x3 convolution through OpenVINO (``bench_child.peak``). Then, side by
side: ms per tile, megapixels per minute, effective TFLOP/s (the network's
FLOPs per pixel, from its config, times pixels per second) and that as a
share of the peak at the precision that ran, the speed-up over Paddle dygraph
fp32 and the estimated time for a 12-megapixel photo; how many pixels a
12-megapixel photo's tile plan computes per photo pixel (overlaps and
padding), for each tile size; then the peak RSS, the cold and warm latency of a preview (a thumbnail
with a 512-pixel long side, restored as one tile, in a fresh process), the
start-up time of ``cmfnet --help``, and a recommended default. What runs in a
fresh process is in ``bench_child.py``.

The cli calls :func:`add_arguments` and :func:`run`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cpu
from .bench_child import rss_mb
from .engine import DEFAULT_OVERLAP as OVERLAP
from .engine import PREVIEW_LONG_SIDE
from .versions import version_text

TILES = (256, 384, 512, 768)
MODELS = {  # random weights of these widths, for speed only
    "full": dict(n_feat=96, scale_unetfeats=48),
    "light": dict(n_feat=24, scale_unetfeats=12),  # the bundled weights' size
    "small": dict(n_feat=16, scale_unetfeats=8),
}


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _word_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = """examples:
  cmfnet bench                          installed deblur weights, the whole matrix
  cmfnet bench --quick                  256 and 512 tiles, one round, a few minutes
  cmfnet bench --model light --tiles 512 --precisions bf16 --threads 1,2
  cmfnet bench --model full --backends openvino,paddle --paddle-tiles 256
"""
    parser.add_argument("--task", default="deblur", help="whose installed weights to time (default: deblur)")
    parser.add_argument("--weights", metavar="FILE", help="a weights file to time instead of the installed default")
    parser.add_argument("--model", choices=["installed", *MODELS], default="installed",
                        help="random weights of a given size instead of installed ones: full (the "
                             "authors' full-size network, as 'cmfnet weights download' installs), light "
                             "(the size of the bundled weights), small (the tests' network); default: "
                             "installed, or full when no weights are installed")
    parser.add_argument("--backends", type=_word_list, default=["openvino", "paddle"],
                        help="comma-separated: openvino,paddle (default: both)")
    parser.add_argument("--precisions", type=_word_list, default=["fp32", "bf16", "int8"],
                        help="comma-separated precisions for openvino (default: fp32,bf16,int8; bf16 is "
                             "skipped where the CPU lacks it, int8 where nncf is not installed; int8 "
                             "calibrates on first use, about a minute)")
    parser.add_argument("--tiles", type=_int_list, default=list(TILES),
                        help="comma-separated tile sizes (default: 256,384,512,768)")
    parser.add_argument("--paddle-tiles", type=_int_list, default=[256],
                        help="tile sizes for the (slow) paddle reference (default: 256)")
    parser.add_argument("--threads", type=_int_list, default=None,
                        help="comma-separated thread counts to compare for openvino (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: tiles 256,512, one round, preview and start-up included")
    parser.add_argument("--no-preview", action="store_true", help="skip the cold/warm preview measurement")
    parser.add_argument("--no-startup", action="store_true", help="skip timing 'cmfnet --help'")
    parser.add_argument("--no-peak", action="store_true", help="skip measuring the machine's peak GFLOP/s")
    parser.add_argument("--photo", action="store_true",
                        help="also restore a synthetic 12-megapixel photo with the recommended settings "
                             "in a fresh process and report its time and peak RSS (slow)")
    parser.add_argument("--photo-mp", type=float, default=12.0,
                        help="photo size for the estimate and --photo, in megapixels (default: 12)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")


# --- measuring -------------------------------------------------------------------

@dataclass
class Case:
    backend: str
    precision: str
    tile: int
    threads: int
    runner: object = None
    setup_s: float = 0.0
    times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.precision}/{self.tile}/{self.threads}t"

    @property
    def ms(self) -> float:
        return statistics.median(self.times) * 1000 if self.times else float("nan")


def _random_weights(size: str, seed: int = 0):
    from .network_config import Config, expected_shapes
    from .weights import Weights

    config = Config(**MODELS[size])
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in expected_shapes(config).items():
        if len(shape) == 4:  # PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1 / np.sqrt(np.prod(shape[1:]))
            state[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif key == "mix.w":
            state[key] = np.ones(shape, np.float32)
        else:
            state[key] = np.full(shape, 0.25, np.float32)
    return Weights(state=state, config=config, meta={"task": "deblur"})


def _load_weights(args):
    """(Weights, description, path on disk or None)."""
    from .weights import read_weights, resolve_weights, WeightsError

    if args.weights:
        weights = read_weights(args.weights)
        return weights, f"{Path(args.weights).name}", Path(args.weights)
    if args.model == "installed":
        try:
            path = resolve_weights(args.task)
        except WeightsError:
            print("bench: no weights installed; timing random full-size weights (96/48)", file=sys.stderr)
            args.model = "full"
        else:
            return read_weights(path), f"{path.name} (installed, {args.task})", path
    weights = _random_weights(args.model)
    c = weights.config
    return weights, f"random {args.model} weights (n_feat {c.n_feat}, scale_unetfeats {c.scale_unetfeats})", None


def _make_cases(args, threads_default: int) -> list[Case]:
    cases = []
    thread_counts = args.threads or [threads_default]
    if "openvino" in args.backends:
        from .backends import _nncf_available
        from .backends.precision import cpu_has_bf16

        runs = {"fp32": True, "bf16": cpu_has_bf16(), "int8": _nncf_available()}
        precisions = [p for p in args.precisions if runs.get(p)]
        skipped = set(args.precisions) - set(precisions)
        if skipped:
            print(f"bench: skipping {', '.join(sorted(skipped))}: not supported here (no native bf16, "
                  f"no nncf for int8, or unknown)", file=sys.stderr)
        for precision in precisions:
            for tile in args.tiles:
                for threads in thread_counts:
                    cases.append(Case("openvino", precision, tile, threads))
    if "paddle" in args.backends:
        for tile in args.paddle_tiles:
            cases.append(Case("paddle", "fp32", tile, threads_default))
    return cases


def _prepare(case: Case, weights) -> None:
    start = time.perf_counter()
    try:
        if case.backend == "openvino":
            from .backends.openvino import OpenVINOBackend

            case.runner = OpenVINOBackend(weights, precision=case.precision, threads=case.threads,
                                          tile_shape=(case.tile, case.tile))
        else:
            from .backends.paddle import PaddleBackend

            case.runner = PaddleBackend(weights, threads=case.threads)
        ran = case.runner.precision  # the table reports what ran, not what was asked
        if ran != case.precision:
            print(f"bench: {case.label}: {case.precision} asked, {ran} ran", file=sys.stderr)
            case.precision = ran
        batch = np.random.default_rng(1).random((1, 3, case.tile, case.tile), dtype=np.float32)
        case.runner.run(batch)  # first inference allocates; not timed
    except Exception as exc:  # noqa: BLE001 - report and go on with the other cases
        case.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        case.runner = None
    case.setup_s = time.perf_counter() - start


def _measure(cases: list[Case], rounds: int) -> None:
    live = [c for c in cases if c.runner is not None]
    inputs = {c.tile: np.random.default_rng(c.tile).random((1, 3, c.tile, c.tile), dtype=np.float32)
              for c in live}
    for index in range(rounds):
        order = live[index % len(live):] + live[:index % len(live)] if live else []
        for case in order:
            start = time.perf_counter()
            case.runner.run(inputs[case.tile])
            case.times.append(time.perf_counter() - start)
        print(f"bench: round {index + 1}/{rounds} done", file=sys.stderr)


def _photo_shape(megapixels: float) -> tuple[int, int]:
    """(height, width) of a 4:3 photo of this many megapixels."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    return int(round(width * 3 / 4)), width


def tile_plan_overhead(megapixels: float, tile: int, context: int = 0) -> dict:
    """What a photo's tile plan computes: its tiles, their shape, and the pixels computed
    per photo pixel (each tile's ``context``, the engine's for the network, the blended
    overlaps and the padding to multiples of 8 make it more than 1)."""
    from .tiling import fit_context, plan_tiles

    height, width = _photo_shape(megapixels)
    _, tiles = plan_tiles(height, width, tile, OVERLAP, fit_context(tile, OVERLAP, context))
    computed = sum(t.h * t.w for t in tiles)
    return {"tiles": len(tiles), "tile_shape": (tiles[0].h, tiles[0].w),
            "pixels_per_photo_pixel": computed / (height * width)}


def measure_peak(threads: int, precisions, seconds: float = 1.0, channels: int = 256, size: int = 64) -> dict:
    """The machine's practical peak GFLOP/s per precision, in a fresh process (``bench_child.peak``)."""
    return _child("peak", dict(threads=threads, precisions=list(precisions), seconds=seconds,
                               channels=channels, size=size))


# --- preview and start-up (fresh processes) ------------------------------------------

def _child_env(env: dict | None = None) -> dict:
    """This environment (plus ``env``), with this checkout first on the path."""
    root = Path(__file__).resolve().parent.parent
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), full_env.get("PYTHONPATH")]))
    return full_env


def _child(name: str, options: dict, env: dict | None = None, timeout: float = 1800) -> dict:
    """Run ``bench_child``'s measurement ``name`` in a fresh process; its result, plus the
    process's wall time (``process_wall_s``)."""
    options = dict(options, launched=time.time())
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cmfnet_core.bench_child", name, json.dumps(options)],
                          capture_output=True, text=True, env=_child_env(env), timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"child process failed: {tail[0][:200]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def measure_preview(weights_path: Path, backend: str, precision: str, threads: int,
                    long_side: int = PREVIEW_LONG_SIDE, warm_runs: int = 3) -> dict:
    """Cold (empty model cache), second process (cache on disk) and warm preview latency."""
    shape = (long_side * 3 // 4 // 8 * 8, long_side)  # a 4:3 thumbnail
    options = dict(weights=str(weights_path), tile=long_side, backend=backend, precision=precision,
                   threads=threads, shape=shape, warm_runs=warm_runs)
    with tempfile.TemporaryDirectory(prefix="cmfnet-bench-cache-") as cache:
        env = {"CMFNET_CACHE_DIR": cache}
        cold = _child("preview", options, env)
        second = _child("preview", options, env)
    return {"shape": shape, "megapixels": shape[0] * shape[1] / 1e6, "first_ever": cold,
            "cache_on_disk": second}


def measure_photo(weights_path: Path, backend: str, precision: str, threads: int, tile: int,
                  megapixels: float) -> dict:
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    shape = (int(round(width * 3 / 4)), width)
    options = dict(weights=str(weights_path), tile=tile, backend=backend, precision=precision,
                   threads=threads, shape=shape)
    result = _child("photo", options)
    result["shape"] = shape
    return result


HEAVY_MODULES = ("paddle", "openvino", "cv2", "torch", "PyQt6")


def heavy_imports_of_help() -> list[str] | str:
    """Which of :data:`HEAVY_MODULES` ``cmfnet --help`` imports (Python's ``-X importtime``
    report names every module imported), or ``"?"`` where that report is missing."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cmfnet_core.cli", "--help"],
                          capture_output=True, text=True, env=_child_env())
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    if proc.returncode != 0 or not imported:
        return "?"
    return [name for name in HEAVY_MODULES if name in imported]


def measure_startup(runs: int = 3) -> dict:
    """Wall time of ``cmfnet --help`` in a fresh process, and whether it imported paddle/openvino."""
    script = Path(sys.executable).parent / "cmfnet"
    command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "cmfnet_core.cli", "--help"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            return {"command": " ".join(command), "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    heavy = heavy_imports_of_help()
    bare = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
        bare.append(time.perf_counter() - start)
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
            "median_s": statistics.median(times), "all_s": times,
            "python_alone_s": statistics.median(bare), "heavy_modules_imported": heavy}


# --- reporting --------------------------------------------------------------------

def _recommend(cases: list[Case], megapixels: float, context: int = 0) -> Case | None:
    """Fastest openvino configuration for a whole photo (overlap included).

    A smaller tile wins within 10% of the fastest (less memory, finer progress
    and cancel; on a shared machine such differences are noise anyway), and so
    does using all cores (the engine's default) within 10% of fewer threads.
    int8 is recommended only by ``auto``'s own rule: where it is at least
    ``INT8_MIN_SPEEDUP`` times faster than the fastest float configuration.
    """
    from .backends.precision import INT8_MIN_SPEEDUP

    timed = [c for c in cases if c.backend == "openvino" and c.times]
    if not timed:
        timed = [c for c in cases if c.times]
    if not timed:
        return None
    seconds = {id(c): tile_plan_overhead(megapixels, c.tile, context)["tiles"] * c.ms for c in timed}
    floats = [seconds[id(c)] for c in timed if c.precision != "int8"]
    if floats:
        timed = [c for c in timed if c.precision != "int8" or seconds[id(c)] * INT8_MIN_SPEEDUP <= min(floats)]
    best_precision = min(timed, key=lambda c: seconds[id(c)]).precision
    pool = [c for c in timed if c.precision == best_precision]
    fastest = min(seconds.values())
    near = [c for c in pool if seconds[id(c)] <= 1.10 * fastest]
    tile = min(c.tile for c in near)
    same_tile = [c for c in near if c.tile == tile]
    quickest = min(same_tile, key=lambda c: seconds[id(c)])
    most_threads = max(same_tile, key=lambda c: c.threads)  # the engine's default: all cores
    return most_threads if seconds[id(most_threads)] <= 1.10 * seconds[id(quickest)] else quickest


def _table(cases: list[Case], flops_per_pixel: float, megapixels: float, peak: dict | None = None,
           context: int = 0) -> list[str]:
    """One line per case; ``peak``: GFLOP/s per precision (:func:`measure_peak`), for the
    '% peak' column (the share of the peak at the precision the case ran in)."""
    baseline = next((c for c in cases if c.backend == "paddle" and c.times), None)
    base_rate = baseline.tile * baseline.tile / baseline.ms if baseline else None
    head = (f"{'backend':<9} {'prec':<5} {'tile':>5} {'thr':>3} {'ms/tile':>9} {'min ms':>9} "
            f"{'MP/min':>7} {'TFLOP/s':>8} {'% peak':>6} {'x paddle':>8} {f'{megapixels:g}MP est.':>11} "
            f"{'setup s':>8}")
    lines = [head, "-" * len(head)]
    for c in cases:
        if c.error:
            lines.append(f"{c.backend:<9} {c.precision:<5} {c.tile:>5} {c.threads:>3}  failed: {c.error}")
            continue
        if not c.times:
            continue
        seconds = c.ms / 1000
        pixels = c.tile * c.tile
        mp_min = pixels / seconds * 60 / 1e6
        tflops = flops_per_pixel * pixels / seconds / 1e12
        speedup = f"{pixels / c.ms / base_rate:8.1f}" if base_rate else f"{'-':>8}"
        estimate = tile_plan_overhead(megapixels, c.tile, context)["tiles"] * seconds
        top = (peak or {}).get(c.precision)
        share = f"{100 * tflops * 1000 / top:>5.0f}%" if top else f"{'-':>6}"
        lines.append(f"{c.backend:<9} {c.precision:<5} {c.tile:>5} {c.threads:>3} {c.ms:>9.0f} "
                     f"{min(c.times) * 1000:>9.0f} {mp_min:>7.2f} {tflops:>8.3f} {share} {speedup} "
                     f"{estimate:>10.0f}s {c.setup_s:>8.1f}")
    return lines


def run(args) -> int:
    from .backends import default_threads

    if args.quick:
        args.tiles = [t for t in args.tiles if t in (256, 512)] or [256]
        args.rounds = 1
    bad = [t for t in args.tiles + args.paddle_tiles if t % 8 or t <= 0]
    if bad:
        print(f"bench: tile sizes must be positive multiples of 8, got {bad[0]}", file=sys.stderr)
        return 2
    unknown = set(args.backends) - {"openvino", "paddle"}
    if unknown:
        print(f"bench: unknown backend {sorted(unknown)[0]!r}; choose openvino or paddle", file=sys.stderr)
        return 2
    weights, description, weights_path = _load_weights(args)
    flops = weights.config.flops_per_pixel()
    threads = default_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cmfnet bench: {description}; {flops / 1e6:.2f} MFLOP per pixel")
    print(f"machine: {cpu.describe()}, {threads} cores usable, load average {load:.2f} at start; "
          f"{args.rounds} interleaved round(s), median shown")
    print(" | ".join(version_text().splitlines()))
    report: dict = {"weights": description, "flops_per_pixel": flops, "threads_available": threads,
                    "load_at_start": load}

    peaks = None  # GFLOP/s per precision
    if not args.no_peak:
        from .backends.precision import cpu_has_bf16

        try:
            measured = measure_peak(threads, ["fp32", *(["bf16"] if cpu_has_bf16() else []), "int8"])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"peak: not measured ({exc})")
        else:
            peaks = {name: p["gflops"] for name, p in measured["precisions"].items() if p["ran"] == name}
            print(f"peak (one {measured['channels']}-channel 3x3 convolution, {measured['size']}x"
                  f"{measured['size']}, OpenVINO, best of repeated runs): "
                  + ", ".join(f"{name} {p['gflops']:.0f} GFLOP/s" + ("" if p["ran"] == name else f" (ran {p['ran']})")
                              for name, p in measured["precisions"].items()))
            report["peak"] = measured
    from .engine import context_for

    context = context_for(weights.config)
    plan = {tile: tile_plan_overhead(args.photo_mp, tile, context) for tile in sorted(set(args.tiles))}
    height, width = _photo_shape(args.photo_mp)
    print(f"{args.photo_mp:g}-MP photo ({width}x{height}) tile plans, context {context} px a side "
          f"(at most a quarter of the tile), overlap {OVERLAP}: "
          + "; ".join(f"tile {tile}: {p['tiles']} of {p['tile_shape'][1]}x{p['tile_shape'][0]}, "
                      f"{p['pixels_per_photo_pixel']:.3f} px computed per photo px" for tile, p in plan.items()))
    report["tile_plans"] = {str(tile): p for tile, p in plan.items()}

    cases = _make_cases(args, threads)
    for case in cases:
        print(f"bench: preparing {case.label} (export/compile on first use)...", file=sys.stderr)
        _prepare(case, weights)
    _measure(cases, max(1, args.rounds))
    current, peak = rss_mb()
    print()
    for line in _table(cases, flops, args.photo_mp, peaks, context):
        print(line)
    print(f"\npeak RSS of this benchmark process: {peak:.0f} MB (every configuration above loaded "
          f"at once; now {current:.0f} MB)")
    report["cases"] = [dict(backend=c.backend, precision=c.precision, tile=c.tile, threads=c.threads,
                            ms=c.ms, times_ms=[t * 1000 for t in c.times], setup_s=c.setup_s, error=c.error)
                       for c in cases]
    report["peak_rss_mb"] = peak

    best = _recommend(cases, args.photo_mp, context)
    for case in cases:
        case.runner = None  # free the compiled models before the child processes run
    if best:
        print(f"recommended default: --backend {best.backend} --precision {best.precision} "
              f"--tile {best.tile} --threads {best.threads}")
        report["recommended"] = dict(backend=best.backend, precision=best.precision, tile=best.tile,
                                     threads=best.threads)

    need_file = (not args.no_preview or args.photo) and best is not None
    with tempfile.TemporaryDirectory(prefix="cmfnet-bench-") as scratch:
        if need_file and weights_path is None:
            from .weights import save_weights

            weights_path = save_weights(weights, Path(scratch) / "bench.pdparams", task="deblur",
                                        provenance={"kind": "random", "note": "cmfnet bench"})
        if not args.no_preview and best is not None:
            try:
                preview = measure_preview(weights_path, best.backend, best.precision, best.threads)
                cold, second = preview["first_ever"], preview["cache_on_disk"]
                print(f"\npreview ({preview['shape'][1]}x{preview['shape'][0]}, "
                      f"{preview['megapixels']:.2f} MP, one tile, {best.backend}/{best.precision}):")
                print(f"  first ever (empty model cache, export + compile): {cold['cold_s']:.2f} s "
                      f"(start-up and imports {cold['import_s']:.2f}, weights {cold['construct_s']:.2f}, "
                      f"export+compile+restore {cold['first_restore_s']:.2f}; process {cold['process_wall_s']:.2f} s)")
                print(f"  new process, model cached on disk:               {second['cold_s']:.2f} s "
                      f"(first restore {second['first_restore_s']:.2f}; process {second['process_wall_s']:.2f} s, "
                      f"paddle imported: {second['paddle_imported']})")
                print(f"  warm (model compiled, inference only):           {second['warm_s']:.3f} s")
                print(f"  peak RSS: {cold['peak_rss_mb']:.0f} MB first ever, {second['peak_rss_mb']:.0f} MB cached")
                report["preview"] = preview
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"\npreview: not measured ({exc})")
        if args.photo and best is not None:
            try:
                photo = measure_photo(weights_path, best.backend, best.precision, best.threads, best.tile,
                                      args.photo_mp)
                print(f"\n{args.photo_mp:g}-MP photo ({photo['shape'][1]}x{photo['shape'][0]}), tile {best.tile}: "
                      f"restore {photo['restore_s']:.1f} s, process {photo['process_wall_s']:.1f} s, "
                      f"peak RSS {photo['peak_rss_mb']:.0f} MB")
                report["photo"] = photo
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"\nphoto: not measured ({exc})")
    if not args.no_startup:
        startup = measure_startup()
        if "error" in startup:
            print(f"\nstart-up: '{startup['command']}' failed: {startup['error']}")
        else:
            print(f"\nstart-up: '{startup['command']}' {startup['median_s']:.2f} s median "
                  f"(python alone {startup['python_alone_s']:.2f} s); heavy modules imported by --help: "
                  f"{startup['heavy_modules_imported']}")
        report["startup"] = startup
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cmfnet bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
