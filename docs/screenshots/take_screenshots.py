"""Take the desktop app's screenshots for the docs (run under X, e.g. Xvfb).

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/take_screenshots.py --weights deblur=FILE

Uses a temporary user folder and settings, so it never touches the real
ones; ``--weights TASK=FILE`` imports a weights file there first (otherwise
the installed defaults are used). Writes, beside this script:

* ``00-first-start.png``   what a new user sees first
* ``01-photo-and-preview.png``  a photo with its thumbnail preview, split at half
* ``02-before-after.png``  the full-resolution result at 200 %, split in the middle
* ``03-run-in-progress.png``  Apply running: progress bar, tiles, ETA, Cancel

With ``--language zh_CN`` it takes only ``zh_CN-01-photo-and-preview.png`` and
``zh_CN-02-weights.png`` (the Weights dialog): the app in that language (needs a CJK
font, e.g. Debian's ``fonts-noto-cjk``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLES = ROOT / "resources" / "samples"
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", default=[], metavar="TASK=FILE")
    parser.add_argument("--task", default="deblur", choices=("deblur", "dehaze", "deraindrop"))
    parser.add_argument("--photo", help="default: the task's first sample")
    parser.add_argument("--busy-photo", help="default: the task's second sample")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--language", help="only the photo-and-preview shot, in this language (zh_CN)")
    args = parser.parse_args()
    stem = {"deblur": "deblur_{}.png", "dehaze": "haze_{}.jpg", "deraindrop": "raindrop_{}.jpg"}[args.task]
    args.photo = args.photo or str(SAMPLES / stem.format(1))
    args.busy_photo = args.busy_photo or str(SAMPLES / stem.format(2))
    temp = Path(tempfile.mkdtemp(prefix="cmfnet-shots-"))
    os.environ["CMFNET_DATA_DIR"] = str(temp / "data")

    from PyQt6.QtCore import QEventLoop, QSettings, QTimer
    from PyQt6.QtWidgets import QApplication

    from cmfnet_core.weights import TASKS
    from plugin.app import jobs
    from plugin.app.jobs import EngineOptions
    from plugin.app.settings import AppSettings
    from plugin.app.window import ICON_PATH, MainWindow

    app = QApplication([sys.argv[0]])
    app.setApplicationDisplayName("CMFNet Restore")
    from plugin.app.translations import install_translations

    install_translations(app, args.language or "en")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(temp / "qsettings"))
    settings = AppSettings(QSettings(str(temp / "app.ini"), QSettings.Format.IniFormat))
    settings.set_engine_options(EngineOptions())
    settings.set_task(args.task)
    out = Path(args.out)

    def wait(signal, accept=lambda *a: True, timeout_ms=300_000):
        loop, got = QEventLoop(), []

        def on(*values):
            if accept(*values):
                got.append(values)
                loop.quit()
        signal.connect(on)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        signal.disconnect(on)
        if not got:
            raise SystemExit(f"timed out waiting for {signal}")
        return got[0]

    def settle(ms=300):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def shoot(window, name):
        settle()
        path = out / name
        image = window.grab().toImage()
        image.save(str(path), "PNG", 0)  # 0 = smallest file
        print(f"{path} ({path.stat().st_size // 1024} KiB)")

    window = MainWindow(settings=settings)
    if ICON_PATH.exists():
        from PyQt6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(ICON_PATH)))
    window.resize(1280, 800)
    window.show()
    if not args.language:
        shoot(window, "00-first-start.png")

    for spec in args.weights:
        task, _, file = spec.partition("=")
        window.task_combo.setCurrentIndex(window.task_combo.findData(task))
        window.prompts.weights_file = lambda _title, f=file: f
        window.import_weights()
        wait(window.engine.finished, lambda j: j.kind == jobs.IMPORT)
    window.task_combo.setCurrentIndex(window.task_combo.findData(args.task))  # Automatic is first

    window.open_paths([args.photo])
    wait(window.engine.finished, lambda j: j.kind == jobs.PREVIEW and j.context.get("final"))
    if args.language:
        shoot(window, f"{args.language}-01-photo-and-preview.png")
        dialog = window.show_weights()
        dialog.resize(820, dialog.sizeHint().height())
        shoot(dialog, f"{args.language}-02-weights.png")
        dialog.hide()
        window.shutdown()
        return 0
    shoot(window, "01-photo-and-preview.png")

    window.apply()
    wait(window.engine.finished, lambda j: j.kind == jobs.APPLY)
    window.view.actual_size()
    window.view.zoom_by(2.0)  # 200 %: the detail a photographer checks
    window.view.centerOn(window.view.item.image_rect().center())
    window.compare.split.setValue(500)
    shoot(window, "02-before-after.png")

    window.prompts.unsaved_result = lambda name: "discard"
    window.open_paths([args.busy_photo])
    wait(window.engine.finished, lambda j: j.kind == jobs.PREVIEW)
    window.options = EngineOptions(tile=128, overlap=32)
    window.apply()
    wait(window.engine.progress, lambda j, done, total: j.kind == jobs.APPLY and done >= max(3, total // 3))
    shoot(window, "03-run-in-progress.png")
    window.cancel_run()
    wait(window.engine.finished, lambda j: j.kind == jobs.APPLY)
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
