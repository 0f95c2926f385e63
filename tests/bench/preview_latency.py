"""Benchmark (not a test): how soon the app shows a photo's preview, this checkout against another.

    .venv/bin/python tests/bench/preview_latency.py [--code /path/to/older/checkout] [--rounds 3]
    .venv/bin/python tests/bench/preview_latency.py --views [--model light,full]

The real window (offscreen), the default weights and backend, task Dehaze, a
1600 x 1064 photo (the bundled haze sample, resized). Two moments:

* "opened after warm-up": the app has started and finished its warm-up (the user
  took a while to pick the file); timed from opening the photo.
* "cmfnet gui PHOTO": the photo is opened as the app starts, as ``main.py`` does
  it; timed from the start of ``main``.

Each run is a fresh child process started in the checkout's folder (so it imports
that checkout's code); OpenVINO's exported and compiled models are on disk already
(a first, untimed round puts them there), as for a returning user. Reported: the
median seconds to the first preview on screen ("first") and to the final one
("final"); before progressive previews the two are the same. The machine's other
load slows both checkouts alike only roughly: rounds alternate between them.

``--views``: what each of the view's passes costs through the engine, as the app
runs them (``jobs.preview_work`` / ``jobs.view_work``), for the bundled light
weights and a full-size network (random weights: the same work as the authors'):
the first look (256 px), the screen-resolution preview of the photo fit in a
1400 x 900 view, and the 1:1 region that view shows at 100 %. Each pass is run
once untimed (compiling its models), then timed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZE = (1600, 1064)  # width, height

CHILD = r"""
import json, sys, time
from PyQt6.QtCore import QEventLoop, QSettings, QTimer
from PyQt6.QtWidgets import QApplication

scenario, photo, folder = sys.argv[1:4]
app = QApplication.instance() or QApplication(["bench"])
from plugin.app import main as app_main
from plugin.app.settings import AppSettings
from plugin.app.window import MainWindow

shown, done = [], {}

def watch(window, start):
    # every "after" layer the view is given, timed; done once no preview is left to run
    set_after = window.view.set_after
    def record(image):
        if image is not None:
            shown.append(time.perf_counter() - start)
        set_after(image)
    window.view.set_after = record
    loop = QEventLoop()
    def finished(job):
        if job.kind == "preview" and not any(j.kind == "preview" for j in window.engine.jobs()):
            loop.quit()
    window.engine.finished.connect(finished)
    QTimer.singleShot(300_000, loop.quit)  # a hang guard for a benchmark, not a measurement
    loop.exec()

if scenario == "after-warm-up":
    settings = AppSettings(QSettings(folder + "/app.ini", QSettings.Format.IniFormat))
    settings.set_task("dehaze")
    window = MainWindow(settings=settings, warm_up=True)
    warmed = QEventLoop()
    window.engine.finished.connect(lambda job: job.kind == "warmup" and warmed.quit())
    warmed.exec()
    start = time.perf_counter()
    window.open_paths([photo])
    watch(window, start)
    window.shutdown()
else:  # as `cmfnet gui PHOTO --task dehaze` starts, with the checkout's own main()
    def run_instead_of_exec():
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        watch(window, start)
        window.shutdown()
        return 0
    QApplication.exec = staticmethod(run_instead_of_exec)
    start = time.perf_counter()
    app_main.main([photo, "--task", "dehaze"])
print(json.dumps({"first": shown[0], "final": shown[-1], "passes": len(shown)}), flush=True)
"""

SCENARIOS = {"after-warm-up": "opened after warm-up", "gui-photo": "cmfnet gui PHOTO"}


def child(code: Path, scenario: str, photo: Path, cache: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="preview-bench-") as folder:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CMFNET_CACHE_DIR=str(cache),
                   XDG_CONFIG_HOME=folder)  # main() uses the default settings: not the user's
        out = subprocess.run([sys.executable, "-c", CHILD, scenario, str(photo), folder], cwd=code, env=env,
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


VIEW = (1400, 900)  # width, height of the view, device pixels


def view_passes(models: list[str]) -> None:
    import time

    import cv2

    from cmfnet_core.bench import _random_weights
    from cmfnet_core.engine import PREVIEW_COARSE_LONG_SIDE, CancelToken
    from cmfnet_core.weights import save_weights
    from plugin.app import jobs

    image = cv2.cvtColor(cv2.resize(cv2.imread(str(ROOT / "resources" / "samples" / "haze_1.jpg")), SIZE,
                                    interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    fit = min(VIEW[0] / SIZE[0], VIEW[1] / SIZE[1])
    screen_side = round(max(SIZE) * fit)
    x, y = (SIZE[0] - VIEW[0]) // 2, (SIZE[1] - VIEW[1]) // 2
    region = (max(0, x), max(0, y), min(VIEW[0], SIZE[0]), min(VIEW[1], SIZE[1]))
    print(f"{SIZE[0]} x {SIZE[1]} photo in a {VIEW[0]} x {VIEW[1]} view, Dehaze, default backend; "
          f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="preview-views-") as folder:
        for model in models:
            weights = None
            if model == "full":
                weights = save_weights(_random_weights("full"), Path(folder) / "full.pdparams", task="dehaze",
                                       provenance={"kind": "benchmark", "weights": "random"})
            cache = jobs.RestorerCache()
            options = jobs.EngineOptions()
            passes = {
                f"first look ({PREVIEW_COARSE_LONG_SIDE} px)":
                    jobs.preview_work(cache, "dehaze", options, image, weights, long_side=PREVIEW_COARSE_LONG_SIDE),
                f"screen resolution ({screen_side} px)":
                    jobs.preview_work(cache, "dehaze", options, image, weights, long_side=screen_side),
                f"1:1 region ({region[2]} x {region[3]})":
                    jobs.view_work(cache, "dehaze", options, image, region, 1.0, weights),
            }
            for name, work in passes.items():
                work(lambda done, total: None, CancelToken())  # compiles, not timed
                start = time.perf_counter()
                work(lambda done, total: None, CancelToken())
                print(f"{model:>5} | {name:<28} | {time.perf_counter() - start:6.2f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", action="store_true", help="time the view's passes (see above)")
    parser.add_argument("--model", default="light,full", help="with --views: light, full or both")
    parser.add_argument("--code", type=Path, help="another checkout to compare with (e.g. an older main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cmfnet-preview-bench",
                        help="CMFNET_CACHE_DIR for the children (kept between runs)")
    args = parser.parse_args()
    if args.views:
        view_passes(args.model.split(","))
        return 0
    import cv2

    checkouts = {"this": ROOT, **({"other": args.code.resolve()} if args.code else {})}
    with tempfile.TemporaryDirectory(prefix="preview-photo-") as folder:
        photo = Path(folder) / "harbour.jpg"
        cv2.imwrite(str(photo), cv2.resize(cv2.imread(str(ROOT / "resources" / "samples" / "haze_1.jpg")),
                                           SIZE, interpolation=cv2.INTER_AREA))
        for code in checkouts.values():  # exports and compiles, not timed
            child(code, "after-warm-up", photo, args.cache)
        times = {}
        for round_ in range(args.rounds):
            order = list(checkouts) if round_ % 2 == 0 else list(checkouts)[::-1]
            for scenario in SCENARIOS:
                for label in order:
                    times.setdefault((label, scenario), []).append(child(checkouts[label], scenario, photo,
                                                                         args.cache))
    print(f"{SIZE[0]} x {SIZE[1]} photo, Dehaze, default weights and backend; median of {args.rounds}; "
          f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} CPU(s) for this process")
    for scenario, title in SCENARIOS.items():
        for label in checkouts:
            runs = times[label, scenario]
            first = statistics.median(r["first"] for r in runs)
            final = statistics.median(r["final"] for r in runs)
            print(f"{title:>22} | {label:5} | first {first:5.2f} s | final {final:5.2f} s | "
                  f"{runs[0]['passes']} pass(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
