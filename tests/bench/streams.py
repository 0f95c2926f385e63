"""Benchmark (not a test): one stream on every core, or a stream per core, for a photo's tiles.

    .venv/bin/python tests/bench/streams.py [--tile 512] [--tiles 8] [--precision auto] [--rounds 3]

The engine runs a photo's tiles one after another, each on one OpenVINO
stream using every core (``NUM_STREAMS`` 1, ``INFERENCE_NUM_THREADS`` = the
cores). The alternative measured here: as many streams as cores, one thread
each, the tiles in flight at once through an ``AsyncInferQueue``, which also
frees the Python thread while they run (the engine could cut and blend the
neighbouring tiles meanwhile). Run it on an otherwise idle machine: it is
about how the cores share the work. Reported: seconds for ``--tiles`` tiles
per setting (median of interleaved rounds) and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def compiled(xml: Path, precision: str, streams: int, threads: int):
    from cmfnet_core.backends.core import core
    from cmfnet_core.backends.openvino import compile_properties

    properties = compile_properties("cpu", precision, threads)
    properties.update(NUM_STREAMS=streams, PERFORMANCE_HINT="LATENCY" if streams == 1 else "THROUGHPUT")
    return core().compile_model(str(xml), "CPU", properties)


def one_after_another(model, tiles) -> float:
    request = model.create_infer_request()
    start = time.perf_counter()
    for tile in tiles:
        request.infer([tile])
    return time.perf_counter() - start


def in_flight(model, tiles, jobs: int) -> float:
    import openvino as ov

    queue = ov.AsyncInferQueue(model, jobs)
    start = time.perf_counter()
    for tile in tiles:
        queue.start_async([tile])
    queue.wait_all()
    return time.perf_counter() - start


def main() -> None:
    from cmfnet_core.backends import default_threads
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.weights import read_weights, resolve_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="deblur")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--tiles", type=int, default=8, help="tiles per measurement (default: 8)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = default_threads()
    weights = read_weights(resolve_weights(args.task))
    backend = OpenVINOBackend(weights, tile_shape=(args.tile, args.tile), precision=args.precision)
    precision = backend.requested_precision
    rng = np.random.default_rng(0)
    tiles = [rng.random((1, 3, args.tile, args.tile), dtype=np.float32) for _ in range(args.tiles)]
    settings = {f"1 stream x {cores} threads, one tile at a time": (compiled(backend.model_path, precision, 1, cores), None),
                f"{cores} streams x 1 thread, {cores} tiles in flight": (compiled(backend.model_path, precision, cores, cores), cores)}
    times = {name: [] for name in settings}
    for name, (model, jobs) in settings.items():  # warm-up, not timed
        one_after_another(model, tiles[:1]) if jobs is None else in_flight(model, tiles[:jobs], jobs)
    for _ in range(args.rounds):
        for name, (model, jobs) in settings.items():
            times[name].append(one_after_another(model, tiles) if jobs is None else in_flight(model, tiles, jobs))
    print(f"{args.tiles} tiles of {args.tile}x{args.tile}, {args.task} weights, {backend.precision}, {cores} cores")
    base = None
    for name, measured in times.items():
        seconds = statistics.median(measured)
        base = base or seconds
        print(f"  {name:<45} {seconds:>7.2f} s  {base / seconds:>5.2f}x")


if __name__ == "__main__":
    main()
