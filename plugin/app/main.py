"""Entry point of the desktop app: ``cmfnet gui [FILE...] [--task T]`` and ``cmfnet-gui``."""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from cmfnet_core.detect import AUTO_TASK
from cmfnet_core.i18n import _, translate_argparse, wide_text_formatter
from cmfnet_core.weights import TASKS


def parse_args(argv: list[str] | None):
    translate_argparse()
    parser = argparse.ArgumentParser(prog="cmfnet-gui", description=_("Open the CMFNet Restore desktop app."),
                                     formatter_class=wide_text_formatter(argparse.HelpFormatter))
    parser.add_argument("files", nargs="*", metavar="FILE", help=_("photos to open (several make a batch)"))
    parser.add_argument("--task", "-t", choices=TASKS + (AUTO_TASK,),
                        help=_("task for the photos opened with it (auto: found per photo); "
                               "a photo opened later starts from auto"))
    # Qt's own options (e.g. -platform) are passed through untouched
    return parser.parse_known_args(argv)


def install_excepthook(window) -> None:
    """PyQt aborts the process on an exception that escapes a slot; log it and show it instead."""
    log = logging.getLogger("cmfnet-gui")

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.error("unexpected error", exc_info=(kind, value, tb))
        try:
            window.errors.show(_("Unexpected error"), f"{kind.__name__}: {value}\n\n" + _("Details are in the terminal log."))
        except Exception:  # the window may be gone
            pass

    sys.excepthook = hook


def main(argv: list[str] | None = None) -> int:
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .qt_platform import xcb_problem

    problem = xcb_problem(qt_args)  # Qt would abort the process with a message few can act on
    if problem:
        print(_("cmfnet-gui: error: {message}").format(message=problem), file=sys.stderr)
        return 2

    from PyQt6.QtGui import QIcon
    from PyQt6.QtWidgets import QApplication

    from .settings import APPLICATION, DISPLAY_NAME, ORGANIZATION
    from .window import ICON_PATH, MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(DISPLAY_NAME)
    app.setDesktopFileName("cmfnet-restore")
    from .settings import AppSettings
    from .translations import install_translations

    install_translations(app, AppSettings().language())
    if ICON_PATH.exists():
        app.setWindowIcon(QIcon(str(ICON_PATH)))
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal quits

    window = MainWindow(warm_up=False)  # what to warm follows from the task and the photo
    install_excepthook(window)
    if args.task:
        window.choose(args.task)
        window.batch.set_choice(args.task)  # several files make a batch: told, it runs this task
    window.show()
    if args.files:
        window.open_paths(args.files)  # its size, read first, warms exactly its first look
    else:
        window.warm_up()
    try:
        return app.exec()
    finally:
        window.shutdown()
        sys.excepthook = sys.__excepthook__


if __name__ == "__main__":
    sys.exit(main())
