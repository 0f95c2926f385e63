"""Paddle's eager/static switch is shared by the process's threads (cmfnet_core/paddle_mode.py).

Each test runs in a fresh process: which thread imports paddle first is the point, and the
test process has long since imported it."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def run_fresh(code: str, tmp_path) -> str:
    env_code = f"import os; os.environ['CMFNET_CACHE_DIR'] = {str(tmp_path / 'cache')!r}\n"
    done = subprocess.run([sys.executable, "-c", env_code + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_network_builds_on_a_thread_other_than_the_one_that_imported_paddle(tmp_path):
    """The app imports paddle on a worker; the main thread then came up static and the next
    network built there failed."""
    out = run_fresh("""
        import threading
        t = threading.Thread(target=lambda: __import__('paddle')); t.start(); t.join()
        from cmfnet_core.bundled import WEIGHTS
        from cmfnet_core.weights import build_network, read_weights
        print(type(build_network(read_weights(WEIGHTS / 'deblur.pdparams'))).__name__)
    """, tmp_path)
    assert out.strip() == "CMFNet"


def test_an_export_on_one_thread_and_eager_runs_on_another_do_not_break_each_other(tmp_path):
    """The app's first start exports the detector (static mode) on one thread while another
    runs the network eagerly; an export on a thread born static left the process static."""
    out = run_fresh("""
        import threading
        import numpy as np
        t = threading.Thread(target=lambda: __import__('paddle')); t.start(); t.join()
        from cmfnet_core.backends.export import export_onnx
        from cmfnet_core.backends.paddle import PaddleBackend
        from cmfnet_core.bundled import WEIGHTS
        from cmfnet_core.weights import read_weights

        weights = read_weights(WEIGHTS / 'dehaze.pdparams')
        errors = []

        def export(i):
            try:
                export_onnx(weights, (64, 64), 0, __import__('pathlib').Path(%r) / str(i))
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(e))

        exporters = [threading.Thread(target=export, args=(i,)) for i in range(2)]
        for e in exporters:
            e.start()
        backend = PaddleBackend(weights)  # eager, on the main thread, while they export
        for _ in range(3):
            out = backend.run(np.zeros((1, 3, 64, 64), np.float32))
        for e in exporters:
            e.join()
        out = backend.run(np.zeros((1, 3, 64, 64), np.float32))  # and after them
        print(errors, out.shape)
    """ % str(tmp_path / "exports"), tmp_path)
    assert out.strip() == "[] (1, 3, 64, 64)"
