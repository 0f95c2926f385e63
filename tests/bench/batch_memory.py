"""Benchmark (not a test): memory stays flat over a long batch, and every output is right.

    .venv/bin/python tests/bench/batch_memory.py [--cli 200] [--gui 20] [--weights FILE]

1. ``cmfnet restore`` on N small photos in one invocation (one model load). The
   command runs in a child process whose ``write_image`` is wrapped to log the
   resident set size (RSS) after every photo written.
2. The desktop app's batch queue on M photos (offscreen Qt, the real window),
   with RSS logged as each row finishes.

Reported: RSS at start (process up, nothing loaded), after the first photo
(model built, warm) and after the last, and the peak. Every output is checked
to exist and to equal what the engine gives for that photo on its own.
Uses the exact Paddle backend, 64 px tiles, and the small conformance weights.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_WEIGHTS = ROOT / "tests" / "fixtures" / "conformance" / "small_official.pth"
TILE, OVERLAP = 64, 16

CLI_CHILD = r"""
import json, sys
import cmfnet_core.cli as cli
import cmfnet_core.imageio as imageio

def rss_kb(field="VmRSS:"):
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith(field)).split()[1])

log = [("start", rss_kb())]
real_write = imageio.write_image
def logged_write(*args, **kwargs):
    path = real_write(*args, **kwargs)
    log.append(("written", rss_kb()))
    return path
imageio.write_image = logged_write
code = cli.main(sys.argv[1:])
peak = rss_kb("VmHWM:")  # ru_maxrss would count the parent's RSS at fork time
print("RSS_LOG " + json.dumps({"log": log, "peak_kb": peak}), file=sys.stderr)
sys.exit(code)
"""


def rss_kb(field: str = "VmRSS:") -> int:
    """Resident set size now (VmRSS) or its peak (VmHWM) of this process, in KiB."""
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field)).split()[1])


def make_photos(folder: Path, count: int, seed: int, size: tuple[int, int] = (64, 80)) -> list[Path]:
    """Small, distinct photos: a smooth picture with its own noise and shift."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    paths = []
    for i in range(count):
        base = np.stack([128 + 90 * np.sin((xx + 3 * i) / 9), 128 + 90 * np.cos((yy + i) / 7),
                         128 + 60 * np.sin((xx + yy + i) / 13)], -1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo {i:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def expected_outputs(paths: list[Path], weights: Path, threads=None) -> dict[Path, np.ndarray]:
    from cmfnet_core.engine import Restorer
    from cmfnet_core.imageio import read_image

    restorer = Restorer("deblur", weights, tile=TILE, overlap=OVERLAP, backend="paddle", threads=threads)
    return {p: restorer.restore(read_image(p).pixels) for p in paths}


def check(outputs: list[Path], expected: dict[Path, np.ndarray]) -> int:
    """How many outputs are missing or differ from the photo restored on its own."""
    from cmfnet_core.imageio import read_image

    wrong = 0
    for source, want in expected.items():
        out = source.with_name(f"{source.stem}.deblur.png")
        if out not in outputs or not out.is_file() or not np.array_equal(read_image(out).pixels, want):
            wrong += 1
    return wrong


def run_cli(count: int, weights: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="cmfnet-batch-cli-") as tmp:
        paths = make_photos(Path(tmp), count, seed=1)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", CLI_CHILD, "restore", *map(str, paths), "--task", "deblur",
             "--weights", str(weights), "-q", "--backend", "paddle", "--tile", str(TILE),
             "--overlap", str(OVERLAP)],
            capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, CMFNET_DATA_DIR=tmp))
        seconds = time.monotonic() - started
        line = next(l for l in result.stderr.splitlines() if l.startswith("RSS_LOG "))
        data = json.loads(line[len("RSS_LOG "):])
        outputs = [Path(l) for l in result.stdout.splitlines()]
        wrong = check(outputs, expected_outputs(paths, weights))
        log = data["log"]
        return {"photos": count, "exit": result.returncode, "seconds": round(seconds, 1),
                "rss_start_mb": log[0][1] / 1024, "rss_after_first_mb": log[1][1] / 1024,
                "rss_end_mb": log[-1][1] / 1024, "peak_mb": data["peak_kb"] / 1024,
                "written": len(outputs), "wrong_or_missing": wrong}


def run_gui(count: int, weights: Path) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="cmfnet-batch-gui-") as tmp:
        tmp = Path(tmp)
        os.environ["CMFNET_DATA_DIR"] = str(tmp / "data")
        os.environ["CMFNET_CACHE_DIR"] = str(tmp / "cache")
        start_rss = rss_kb()
        from PyQt6.QtCore import QEventLoop, QSettings, QTimer
        from PyQt6.QtWidgets import QApplication

        from cmfnet_core.weights import import_weights
        from plugin.app.jobs import EngineOptions
        from plugin.app.settings import AppSettings
        from plugin.app.window import MainWindow

        app = QApplication.instance() or QApplication([])
        import_weights("deblur", weights)
        folder = tmp / "photos"
        folder.mkdir()
        paths = make_photos(folder, count, seed=2)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "qsettings"))
        settings = AppSettings(QSettings(str(tmp / "app.ini"), QSettings.Format.IniFormat))
        options = EngineOptions(tile=TILE, overlap=OVERLAP, backend="paddle", threads=None)
        settings.set_engine_options(options)
        settings.set_task("deblur")
        window = MainWindow(settings=settings, warm_up=False)
        window.show()
        log = [("start", start_rss), ("window", rss_kb())]
        window.batch.runner.succeeded.connect(lambda job, out: log.append(("written", rss_kb())))
        window.batch.add_files(paths)
        loop = QEventLoop()
        window.batch.finished.connect(loop.quit)
        started = time.monotonic()
        QTimer.singleShot(0, window.batch.run_button.click)
        loop.exec()
        seconds = time.monotonic() - started
        statuses = [entry.status for entry in window.batch.entries]
        outputs = [entry.output for entry in window.batch.entries if entry.output]
        window.shutdown()
        app.processEvents()
        wrong = check(outputs, expected_outputs(paths, weights))
        written = [kb for kind, kb in log if kind == "written"]
        return {"photos": count, "saved": statuses.count("Saved"), "seconds": round(seconds, 1),
                "rss_start_mb": start_rss / 1024, "rss_window_mb": log[1][1] / 1024,
                "rss_after_first_mb": written[0] / 1024, "rss_end_mb": written[-1] / 1024,
                "peak_mb": rss_kb("VmHWM:") / 1024,
                "wrong_or_missing": wrong}


def _rounded(figures: dict) -> dict:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", type=int, default=200, metavar="N", help="photos through the CLI")
    parser.add_argument("--gui", type=int, default=20, metavar="M", help="photos through the app's queue")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args()
    ok = True
    # the app first: its RSS at start is then that of a fresh process
    if args.gui:
        gui = run_gui(args.gui, args.weights)
        print("GUI:", json.dumps(_rounded(gui)))
        ok &= gui["saved"] == args.gui and gui["wrong_or_missing"] == 0
    if args.cli:
        cli = run_cli(args.cli, args.weights)
        print("CLI:", json.dumps(_rounded(cli)))
        ok &= cli["exit"] == 0 and cli["wrong_or_missing"] == 0 and cli["written"] == args.cli
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
