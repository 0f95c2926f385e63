"""The benchmark's measurements that need a fresh process: a preview, a whole photo, the peak.

``cmfnet bench`` runs each as ``python -m cmfnet_core.bench_child NAME OPTIONS``
(OPTIONS: a JSON object) and reads the JSON object printed as the last line
of stdout. A fresh process is the point: the preview's cold start (imports,
weights, export and compile) and a photo's peak memory are what a user's
first run sees, not what a process that has run everything before would; and
the machine's peak is measured with nothing else loaded.
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    current = peak = 0.0
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        # ru_maxrss, unlike VmHWM, can carry the parent's peak across exec: a fallback only
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current, peak


def peak_rss_mb() -> float:
    return rss_mb()[1]


def _restorer(options: dict):
    from .engine import DEFAULT_OVERLAP, Restorer

    return Restorer("deblur", options["weights"], tile=options["tile"], overlap=DEFAULT_OVERLAP,
                    backend=options["backend"], precision=options["precision"], threads=options["threads"])


def preview(options: dict) -> dict:
    """Time a preview as the app runs it (one tile of a thumbnail of ``shape``), first in
    this process, then warm. ``launched``: the parent's ``time.time()`` when it started
    this process, so ``import_s`` and ``cold_s`` include the interpreter's start-up."""
    import numpy as np

    imported_at = time.time()
    start = time.perf_counter()
    restorer = _restorer(options)
    built = time.perf_counter()
    rng = np.random.default_rng(0)
    h, w = options["shape"]
    base = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    restorer.restore_whole(base)
    first = time.perf_counter()
    warm = []
    for i in range(options["warm_runs"]):
        image = np.ascontiguousarray(np.roll(base, 8 * (i + 1), axis=1))
        t = time.perf_counter()
        restorer.restore_whole(image)
        warm.append(time.perf_counter() - t)
    import_s = imported_at - options.get("launched", imported_at)
    return {"import_s": import_s, "construct_s": built - start, "first_restore_s": first - built,
            "cold_s": import_s + first - start, "warm_s": statistics.median(warm) if warm else None,
            "warm_all_s": warm, "paddle_imported": "paddle" in sys.modules,
            "peak_rss_mb": peak_rss_mb()}


def photo(options: dict) -> dict:
    """Restore a synthetic photo of ``shape`` with the given settings: time and peak memory."""
    import numpy as np

    start = time.perf_counter()
    restorer = _restorer(options)
    h, w = options["shape"]
    rng = np.random.default_rng(0)
    image = (rng.random((-(-h // 16), -(-w // 16), 3)) * 255).astype(np.uint8).repeat(16, 0).repeat(16, 1)
    image = np.ascontiguousarray(image[:h, :w])
    t = time.perf_counter()
    restorer.restore(image)
    return {"restore_s": time.perf_counter() - t, "total_s": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb()}


def _peak_model(channels: int, size: int, int8: bool, rng):
    """One 3x3 convolution, ``channels`` in and out, on a 1 x channels x size x size input:
    the operation CMFNet spends its time in, at a width where the CPU's vector (or AMX)
    units can be kept busy. int8: the activations through a FakeQuantize and int8 weights
    with a scale, the pattern NNCF writes, which OpenVINO runs as an int8 convolution."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, channels, size, size], np.float32, name="x")
    shape = (channels, channels, 3, 3)
    if int8:
        source = ops.fake_quantize(x, 0.0, 1.0, 0.0, 1.0, 256)
        weights = ops.multiply(ops.convert(ops.constant(rng.integers(-127, 128, shape).astype(np.int8)), "f32"),
                               ops.constant(np.full((channels, 1, 1, 1), 0.01, np.float32)))
    else:
        source, weights = x, ops.constant((rng.standard_normal(shape) * 0.01).astype(np.float32))
    y = ops.convolution(source, weights, [1, 1], [1, 1], [1, 1], [1, 1])
    return ov.Model([y], [x], "peak")


def peak(options: dict) -> dict:
    """This machine's practical peak per precision: GFLOP/s of the best of repeated runs of
    :func:`_peak_model` through OpenVINO (``seconds`` of runs each, at least 3), and the
    precision each really ran in (bf16 asked for runs fp32 where the CPU has no bf16)."""
    import numpy as np

    from .backends.core import core
    from .backends.precision import runtime_precision

    channels, size = int(options.get("channels", 256)), int(options.get("size", 64))
    flops = 2.0 * channels * channels * 9 * size * size
    rng = np.random.default_rng(0)
    data = rng.random((1, channels, size, size), dtype=np.float32)
    result = {"channels": channels, "size": size, "gflop_per_run": flops / 1e9, "precisions": {}}
    for precision in options.get("precisions", ["fp32", "bf16", "int8"]):
        compiled = core().compile_model(_peak_model(channels, size, precision == "int8", rng), "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": int(options["threads"]), "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1})
        request = compiled.create_infer_request()
        request.infer([data])  # the first run allocates: not timed
        best, runs, start = float("inf"), 0, time.perf_counter()
        while runs < 3 or time.perf_counter() - start < float(options.get("seconds", 1.0)):
            t = time.perf_counter()
            request.infer([data])
            best, runs = min(best, time.perf_counter() - t), runs + 1
        result["precisions"][precision] = {"gflops": flops / best / 1e9, "ran": runtime_precision(compiled),
                                           "runs": runs}
    return result


CHILDREN = {"preview": preview, "photo": photo, "peak": peak}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in CHILDREN:
        print(f"usage: python -m cmfnet_core.bench_child {{{','.join(CHILDREN)}}} OPTIONS_JSON",
              file=sys.stderr)
        return 2
    result = CHILDREN[argv[0]](json.loads(argv[1]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
