"""Convert a trained official-format checkpoint into the project's format.

    python -m cmfnet_core.training.export --task dehaze \
        --weights runs/dehaze/dehaze.pth --out resources/weights/dehaze.pdparams \
        [--eval runs/eval/dehaze.json]

Reads ``--weights`` with the project's own loader (``cmfnet_core.weights``:
torch-free, checks every key and shape), and writes ``OUT.pdparams`` plus its
JSON sidecar through ``cmfnet_core.weights.save_weights``.  The provenance in
the sidecar comes from the training run's ``<weights>.json`` (task, config,
steps, wall time, hardware, data) and, if given, the evaluation results.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def export(task, weights, out, eval_json=None, extra=None):
    from cmfnet_core.weights import read_weights, save_weights

    w = read_weights(weights)
    prov = {"kind": "bundled", "trained_by": "cmfnet train (cmfnet_core.training)"}
    run_meta = Path(str(weights) + ".json")
    if run_meta.exists():
        prov["training"] = json.loads(run_meta.read_text())
    if eval_json and Path(eval_json).exists():
        ev = json.loads(Path(eval_json).read_text())
        prov["evaluation"] = {k: ev[k] for k in ("pairs", "n", "classical", "mean") if k in ev}
    if extra:
        prov.update(extra)
    return save_weights(w, out, task=task, provenance=prov)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cmfnet_core.training.export")
    p.add_argument("--task", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--eval", default=None)
    a = p.parse_args(argv)
    print(export(a.task, a.weights, a.out, a.eval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
