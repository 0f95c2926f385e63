"""Benchmark (not a test): where one tile's time goes, layer by layer, in OpenVINO on this CPU.

    .venv/bin/python tests/bench/layer_profile.py                        # default deblur weights, 512 tile
    .venv/bin/python tests/bench/layer_profile.py --model full --tile 256 --precision fp32
    .venv/bin/python tests/bench/layer_profile.py --compare              # light vs full, side by side

OpenVINO's own per-node counters (``PERF_COUNT``) after a warm-up run, the
median of ``--rounds`` runs per node. Printed:

* the total per tile and the convolutions' effective GFLOP/s (their
  multiply-adds x 2 over their time);
* the time per kind of node as the CPU plugin ran it (convolutions, the
  element-wise and attention ops fused or not, reorders between layouts,
  pooling, resizing): what is not a convolution is mostly memory-bound;
* the convolutions grouped by shape (input -> output channels, kernel, the
  resolution they run at): GFLOP/s per group shows how far small channel
  counts sit from the CPU's peak.

Answers issue 12's question of why the light network (24 channels) reaches a
smaller share of the CPU's peak than the full one (96): ``--compare``.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def conv_flops(model) -> dict[str, tuple[float, str]]:
    """For each convolution of the IR: (FLOPs for one tile, a label of its shape)."""
    found = {}
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind not in ("Convolution", "GroupConvolution"):
            continue
        out = [int(d) for d in op.output(0).get_shape()]
        weight = [int(d) for d in op.input(1).get_shape()]
        if kind == "GroupConvolution":  # G x Cout/G x Cin/G x kh x kw
            groups, cout_g, cin_g, kh, kw = weight
            cin, cout = cin_g * groups, cout_g * groups
            macs = out[2] * out[3] * cout * cin_g * kh * kw
        else:
            cout, cin, kh, kw = weight
            macs = out[2] * out[3] * cout * cin * kh * kw
        found[op.get_friendly_name()] = (2.0 * macs, f"{cin:>3}->{cout:<3} {kh}x{kw} at {out[2]}x{out[3]}")
    return found


def profile(weights, tile: int, precision: str, threads: int | None, rounds: int) -> dict:
    from cmfnet_core.backends.core import core
    from cmfnet_core.backends.openvino import OpenVINOBackend

    backend = OpenVINOBackend(weights, tile_shape=(tile, tile), precision=precision, threads=threads,
                              config={"PERF_COUNT": True})
    batch = np.random.default_rng(0).random((1, 3, tile, tile), dtype=np.float32)
    backend.run(batch)  # warm-up: first-run allocations are not the steady state
    per_node = collections.defaultdict(list)
    kinds = {}
    for _ in range(rounds):
        backend.run(batch)
        for node in backend._request.profiling_info:
            if node.status.name == "EXECUTED":
                per_node[node.node_name].append(node.real_time.total_seconds() * 1000)
                kinds[node.node_name] = (node.node_type, node.exec_type)
    ms = {name: statistics.median(times) for name, times in per_node.items()}
    flops = conv_flops(core().read_model(str(backend.model_path)))
    return {"ms": ms, "kinds": kinds, "flops": flops, "precision": backend.precision}


def report(title: str, result: dict, top: int) -> None:
    ms, kinds, flops = result["ms"], result["kinds"], result["flops"]
    total = sum(ms.values())
    conv_ms = sum(t for name, t in ms.items() if name in flops)
    conv_gflop = sum(flops[name][0] for name in ms if name in flops) / 1e9
    print(f"\n== {title}: {total:.1f} ms a tile ({result['precision']}); convolutions {conv_ms:.1f} ms "
          f"({100 * conv_ms / total:.0f} %), {conv_gflop:.2f} GFLOP -> {conv_gflop / (conv_ms / 1000):.0f} GFLOP/s")
    by_kind = collections.defaultdict(lambda: [0.0, 0])
    for name, t in ms.items():
        node_type, exec_type = kinds[name]
        by_kind[f"{node_type} ({exec_type})"][0] += t
        by_kind[f"{node_type} ({exec_type})"][1] += 1
    print(f"  {'node kind (implementation)':<52} {'ms':>8} {'share':>6} {'nodes':>6}")
    for kind, (t, n) in sorted(by_kind.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {kind:<52} {t:>8.1f} {100 * t / total:>5.1f}% {n:>6}")
    groups = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for name, t in ms.items():
        if name in flops:
            f, label = flops[name]
            groups[label][0] += t
            groups[label][1] += f
            groups[label][2] += 1
    print(f"  {'convolutions by shape':<34} {'ms':>8} {'share':>6} {'convs':>6} {'GFLOP/s':>8}")
    for label, (t, f, n) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {label:<34} {t:>8.1f} {100 * t / total:>5.1f}% {n:>6} {f / 1e9 / (t / 1000):>8.0f}")


def main() -> None:
    from cmfnet_core.bench import MODELS, _random_weights
    from cmfnet_core.engine import DEFAULT_TILE
    from cmfnet_core.weights import read_weights, resolve_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="deblur", help="whose installed weights (default: deblur)")
    parser.add_argument("--model", choices=["installed", *MODELS], default="installed",
                        help="random weights of a size instead (full: 96/48, the official size)")
    parser.add_argument("--compare", action="store_true", help="the installed weights, then full-size ones")
    parser.add_argument("--tile", type=int, default=None, help=f"tile side (default: {DEFAULT_TILE}; 256 for full)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or int8 (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="OpenVINO threads (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="rows per table (default: 12)")
    args = parser.parse_args()
    models = ["installed", "full"] if args.compare else [args.model]
    for model in models:
        weights = read_weights(resolve_weights(args.task)) if model == "installed" else _random_weights(model)
        tile = args.tile or (256 if model == "full" else DEFAULT_TILE)
        c = weights.config
        title = f"{model} weights (n_feat {c.n_feat}), {tile}x{tile} tile"
        report(title, profile(weights, tile, args.precision, args.threads, args.rounds), args.top)


if __name__ == "__main__":
    main()
