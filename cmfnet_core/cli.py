"""The ``cmfnet`` command: restore photos, manage weights, benchmark, train, open the app.

Progress and messages go to stderr, results (the paths written) to stdout.
Exit codes: 0 all done; 1 some files failed (the others were still done);
2 bad usage or settings that cannot run here; 3 no usable weights; 70 a bug in
cmfnet (with its traceback); 130 interrupted; 141 the reader of stdout closed it
early (as for a tool stopped by SIGPIPE). ``cmfnet_core.errors`` sorts failures
into these; ``--progress-lines`` adds a ``RESULT`` line per photo for programs
(``cmfnet_core.results``).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_WEIGHTS
from .i18n import N_, _, set_language, translate_argparse, wide_text_formatter
from .results import progress_line
from . import weights_commands as weights_commands_module
from .versions import version_text
from .backends import BACKENDS, DEVICES, PRECISIONS  # light: no framework is imported
from .engine import DEFAULT_OVERLAP
from .tasks import AUTO_TASK, TASKS

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe

RESTORE_EXAMPLES = N_("""\
examples:
  cmfnet restore photo.jpg
      looks at the photo, says on stderr what it found (blur, haze, raindrops),
      restores that and writes e.g. photo.dehaze.jpg; a photo that looks fine
      is skipped with a note, and so is one it is unsure about, with what it
      would pick (--if-unsure likely restores that instead)
  cmfnet restore photo.jpg --task deblur
      writes photo.deblur.jpg beside photo.jpg (photo.deblur-2.jpg if taken)
  cmfnet restore *.png --task dehaze --out-dir restored/
  cmfnet restore scan.tif --task deraindrop -o clean.tif --tile 512
  cmfnet restore photo.jpg --task deblur --weights CMFNet_deblur.pth
      use a weights file directly (official .pth, .pdparams or this tool's format)

The original photo is never modified. Tiles keep memory bounded: a larger
--tile is faster but needs more memory; each tile sees real pixels beyond the
part it keeps, so tiled and whole-photo results agree.
""")

DETECT_EXAMPLES = N_("""\
examples:
  cmfnet detect photo.jpg
      photo.jpg<TAB>dehaze<TAB>0.87
  cmfnet detect *.jpg | awk -F'\\t' '$2 == "deblur"'
      the photos that look blurry
""")

WEIGHTS_EXAMPLES = N_("""\
examples:
  cmfnet weights download
      the authors' full-size weights for all three tasks (about 200 MB each),
      checked, converted and made the default
  cmfnet weights list
  cmfnet weights use deblur bundled
      back to the light bundled weights ('official' to the authors' again)
  cmfnet weights import deblur ~/Downloads/deblur_GoPro_CMFNet.pth
      converts a checkpoint downloaded by hand (no PyTorch needed) and makes
      it the default for deblurring
""")


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group(_("engine"))
    engine.add_argument("--tile", type=int, default=None, metavar="N",
                        help=_("largest tile side in pixels, a multiple of 8 (default: automatic, "
                               "the same choice as the app's: 768 for light weights, 640 for the "
                               "full-size official model); each tile also sees 48 px (light) or "
                               "64 px (full-size) of context on every side, so no seam shows"))
    engine.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, metavar="N",
                        help=_("pixels of neighbouring tiles' kept parts blended, a multiple of 8 "
                               "(default: %(default)s)"))
    engine.add_argument("--device", choices=DEVICES, default="cpu",
                        help=_("gpu: OpenVINO on an Intel GPU (integrated or Arc) when it sees one, "
                               "else Paddle on an NVIDIA GPU (needs paddlepaddle-gpu); untested "
                               "(default: cpu)"))
    engine.add_argument("--backend", choices=BACKENDS, default="auto",
                        help=_("paddle is the exact reference; openvino is much faster on CPUs "
                               "(default: auto)"))
    engine.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help=_("auto: int8 on the kinds of x86 CPU where it was measured clearly "
                               "faster and faithful (AVX2-only and VNNI without AMX, e.g. AMD Zen 1 "
                               "and Zen 4; AMX too for full-size weights), if weights other than the "
                               "bundled ones also pass their own check; else bf16 on CPUs with "
                               "AMX/AVX512-BF16, else fp32 (as on CPUs nobody measured: ARM, or where "
                               "the flags cannot be read). int8 calibrates once per weights file: up "
                               "to a minute, several for full-size weights (default: auto)"))
    engine.add_argument("--threads", type=int, default=None, metavar="N",
                        help=_("CPU threads to use (default: all cores)"))
    engine.add_argument("--local-stats", action="store_true",
                        help=_("channel attention over a local window (the training patch) instead "
                               "of the whole photo; not needed for tiles to agree (each tile sees "
                               "real context), and no better on the dev pairs (dehaze -0.007 dB)"))


class _Parser(argparse.ArgumentParser):
    """Wraps translated help by display width; the subcommands' parsers are of this class too."""

    def __init__(self, *args, formatter_class=argparse.HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=wide_text_formatter(formatter_class), **kwargs)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cmfnet",
        description=_("Make blurry, hazy or rain-spotted photos clear with CMFNet."),
        epilog=_("Run 'cmfnet COMMAND --help' for the options and examples of each command."))
    parser.add_argument("--version", action=_PrintVersion, nargs=0,
                        help=_("show the version of cmfnet and of the libraries it runs on"))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    restore = commands.add_parser(
        "restore", help=_("restore photos and write NAME.TASK.EXT beside them"),
        description=_("Restore photos with CMFNet. Each photo is written as NAME.TASK.EXT "
                    "beside the original (or where -o / --out-dir say)."),
        epilog=_(RESTORE_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    restore.add_argument("paths", nargs="+", metavar="PATH", help=_("photos to restore"))
    restore.add_argument("--task", "-t", choices=TASKS + (AUTO_TASK,), default=AUTO_TASK,
                         help=_("what to remove (default: auto, detected per photo)"))
    restore.add_argument("--if-unsure", choices=("skip", "likely"), default="skip",
                         help=_("with --task auto, a photo the detector is unsure about: skip it and "
                                "say what it would pick (default), or restore it with that"))
    restore.add_argument("--weights", "-w", metavar="FILE",
                         help=_("weights file to use instead of the installed default (needs --task)"))
    where = restore.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT", help=_("output file (one input only)"))
    where.add_argument("--out-dir", metavar="DIR", help=_("folder for the outputs"))
    restore.add_argument("--overwrite", action="store_true",
                         help=_("replace an existing output: NAME.TASK.EXT from an earlier run "
                              "(instead of moving on to NAME.TASK-2.EXT), or the -o file "
                              "(even the original)"))
    restore.add_argument("--progress-lines", action="store_true",
                         help=_("for programs that drive cmfnet: 'PROGRESS done total' lines "
                                "instead of a bar, and a tab-separated 'RESULT' line per photo "
                                "(status, task, confidence, error kind, source, output, message; "
                                "see docs/ARCHITECTURE.md), both on stderr"))
    restore.add_argument("--quiet", "-q", action="store_true", help=_("no progress bar"))
    _add_engine_options(restore)
    restore.set_defaults(run=run_restore)

    weights = commands.add_parser("weights", help=_("download, list, choose or import weights"),
                                  epilog=_(WEIGHTS_EXAMPLES),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    weights_commands = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    weights_commands.required = True
    listing = weights_commands.add_parser("list", help=_("show installed weights and the default per task"))
    listing.set_defaults(run=weights_commands_module.run_list)
    _add_weights_commands(weights_commands)
    importing = weights_commands.add_parser(
        "import", help=_("convert a weights file (official .pth, .pdparams) into your weights folder"))
    importing.add_argument("task", choices=TASKS)
    importing.add_argument("file", metavar="FILE")
    importing.add_argument("--name", help=_("name to store it under (default: the file's name)"))
    importing.set_defaults(run=run_weights_import)

    detect = commands.add_parser(
        "detect", help=_("say what each photo needs: deblur, dehaze, deraindrop or none"),
        description=_("Look at each photo and print PATH<TAB>TASK<TAB>CONFIDENCE: TASK is "
                    "deblur, dehaze, deraindrop or none (looks fine), CONFIDENCE 0-1. "
                    "This is the choice 'cmfnet restore' makes without --task."),
        epilog=_(DETECT_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    detect.add_argument("paths", nargs="+", metavar="PATH", help=_("photos to look at"))
    detect.add_argument("--json", action="store_true",
                        help=_("print one JSON list with every class's probability instead"))
    detect.set_defaults(run=run_detect)

    bench = commands.add_parser("bench", help=_("measure restoration speed on this machine"),
                                description=_("Benchmark the backends on this machine and print "
                                            "ms per tile, megapixels per minute and TFLOP/s."))
    _add_optional(bench, "cmfnet_core.bench", "bench", argv)

    train = commands.add_parser("train", help=_("train CMFNet weights on your photos (needs torch)"),
                                description=_("Train CMFNet on clean photos with synthesised "
                                            "degradations (needs the 'train' extra: PyTorch)."))
    _add_optional(train, "cmfnet_core.training.train", "train", argv)

    gui = commands.add_parser("gui", help=_("open the desktop app"),
                              description=_("Open the CMFNet Restore desktop app."))
    gui.add_argument("files", nargs="*", metavar="FILE", help=_("photos to open"))
    gui.add_argument("--task", "-t", choices=TASKS + (AUTO_TASK,),
                     help=_("task to select (auto: detected per photo)"))
    gui.set_defaults(run=run_gui)
    return parser


class _PrintVersion(argparse.Action):
    """``--version`` as written (argparse's own action re-wraps the lines)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _add_optional(parser: argparse.ArgumentParser, module_name: str, command: str,
                  argv: list[str]) -> None:
    """Options of a heavier module (bench, training), imported only when that command runs."""
    import importlib

    def run(args):
        return importlib.import_module(module_name).run(args)

    parser.set_defaults(run=run)
    if argv[:1] == [command]:
        try:
            importlib.import_module(module_name).add_arguments(parser)
        except ImportError as exc:
            parser.set_defaults(run=lambda args: _unavailable(command, exc))


def _unavailable(command: str, exc: ImportError) -> int:
    hint = " (pip install 'cmfnet-restore[train]')" if command == "train" else ""
    _error(_("'{command}' is unavailable here: {error}").format(command=command, error=exc) + hint)
    return EXIT_USAGE


# --- restore --------------------------------------------------------------------

class _Progress:
    """A tqdm bar per photo on stderr, or plain PROGRESS lines for other programs."""

    def __init__(self, name: str, lines: bool, quiet: bool):
        self.name, self.lines, self.quiet, self.bar = name, lines, quiet, None

    def __call__(self, done: int, total: int) -> None:
        _handle_termination()  # paddle installs its own SIGTERM handler when it first runs
        if self.lines:
            print(progress_line(done, total), file=sys.stderr, flush=True)
            return
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit=_("tile"), file=sys.stderr, leave=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _error(message: str) -> None:
    # the prefixes "cmfnet: error: " / "cmfnet: note: " stay as they are in every language:
    # the file-manager runner and other programs find the lines by them
    print(f"cmfnet: error: {message}", file=sys.stderr)


def run_restore(args) -> int:
    from .cli_report import Report
    from .detect import default_detector
    from .engine import Restorer
    from .errors import INTERRUPTED, classify
    from .imageio import ImageError, output_path, read_image, write_image

    automatic = args.task == AUTO_TASK
    report = Report(machine=args.progress_lines)
    if args.output and len(args.paths) > 1:
        _error(_("-o/--output takes one input; use --out-dir for several"))
        return EXIT_USAGE
    if automatic and args.weights:
        _error(_("--weights needs --task: say which task the file restores"))
        return EXIT_USAGE
    try:
        # every restorer up front (each only reads its weights): a missing file is exit 3
        # before the first photo, not a failure per photo
        restorers = {task: Restorer(task, args.weights, tile=args.tile, overlap=args.overlap,
                                    device=args.device, backend=args.backend, precision=args.precision,
                                    threads=args.threads, local_stats=args.local_stats)
                     for task in (TASKS if automatic else (args.task,))}
        detector = default_detector(_detector_backend(args.backend)) if automatic else None
    except Exception as exc:  # noqa: BLE001 - classified: settings 2, weights 3, a bug 70
        problem = classify(exc)
        report.problem(problem)
        return problem.exit_code
    for note in next(iter(restorers.values())).notes:
        print(f"cmfnet: note: {note}", file=sys.stderr)
    if args.out_dir:  # only once the weights are known good: a refused run leaves nothing behind
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = _("a file of that name is in the way") if isinstance(exc, FileExistsError) else exc.strerror
            _error(_("--out-dir {folder}: cannot create the folder ({reason})").format(folder=args.out_dir, reason=reason))
            return EXIT_USAGE

    failures, noted = 0, set()  # noted: tasks told about light weights (once per run)
    settled: set[str] = set()  # tasks whose precision is decided (int8: calibrated, checked)
    for raw in args.paths:
        source = Path(raw)
        progress = _Progress(source.name, args.progress_lines, args.quiet)
        task, found = (None, None) if automatic else (args.task, None)
        try:
            photo = read_image(source)
            for note in photo.info.notes:
                print(f"cmfnet: note: {source}: {note}", file=sys.stderr)
            if automatic:
                found = _detected_task(source, photo.pixels, detector, args.if_unsure)
                task = found.likely_task if args.if_unsure == "likely" else found.restore_task
                if task is None:
                    report.skipped(raw, found.task, found.confidence, found.summary(), found.unsure)
                    continue
            if task not in settled:  # int8's calibration and check, before the progress bar
                if restorers[task].calibration_pending:
                    print("cmfnet: note: int8: " + _("calibrating the {task} weights for this CPU "
                          "first (once per weights file; up to a minute, several for full-size "
                          "weights)").format(task=task), file=sys.stderr, flush=True)
                for note in restorers[task].prepare_precision():
                    print(f"cmfnet: note: {note}", file=sys.stderr)
                settled.add(task)
            dest = Path(args.output) if args.output else output_path(
                source, task, args.out_dir, reuse=args.overwrite)
            if _same_file(dest, source) and not args.overwrite:
                raise ImageError(_("{path}: is the original photo; pass --overwrite to replace it").format(path=dest))
            restored = restorers[task].restore(photo.pixels, progress=progress)
            _handle_termination()
            # a name chosen here may be taken by another run meanwhile: take the next counter
            dest = write_image(dest, restored, photo.info, overwrite=args.overwrite,
                               next_free=not args.output)
        except Exception as exc:  # noqa: BLE001 - one line for this photo, the batch goes on
            progress.close()
            problem = classify(exc)
            report.problem(problem, raw, (found.task if found else task),
                           found.confidence if found else None, bool(found and found.unsure))
            if not problem.expected or problem.kind == INTERRUPTED:
                raise _Reported(problem.exit_code) from exc  # a bug (its traceback said), or stopped
            failures += 1
            continue
        progress.close()
        report.written(raw, dest, task, *((found.confidence, found.summary(), found.unsure)
                                          if found else ()))
        if args.weights is None and task not in noted:  # once per task and run
            noted.add(task)
            if note := weights_commands_module.light_weights_note(task):
                print(f"cmfnet: note: {note}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


class _Reported(Exception):
    """A failure already said on stderr; ``main`` exits with its code."""

    def __init__(self, exit_code: int):
        super().__init__(exit_code)
        self.exit_code = exit_code


def _detected_task(source: Path, pixels, detector, if_unsure: str = "skip"):
    """What ``--task auto`` found in this photo (its Detection), said on stderr with what is
    done about it: restored with its task, with the likely task when unsure and told
    ``--if-unsure likely``, or skipped and why. (``detect.py`` says what each front end does.)"""
    from .detect import AUTO_THRESHOLD, LOOKS, detect

    found = detect(pixels, detector)
    looks = _("looks {what} ({percent} %)").format(what=_(LOOKS[found.task]), percent=round(100 * found.confidence))
    if found.restore_task:
        print(f"cmfnet: {source}: {looks}: {found.restore_task}", file=sys.stderr)
        return found
    second = f"{_(LOOKS[found.runner_up])} ({round(100 * found.probabilities[found.runner_up])} %)"
    if found.unsure:
        maybe = _("maybe {what} ({percent} %), or {other}").format(
            what=_(LOOKS[found.task]), percent=round(100 * found.confidence), other=second)
        if if_unsure == "likely":
            print(f"cmfnet: {source}: " + _("{maybe}; unsure, restoring with the likely task: "
                  "{task}").format(maybe=maybe, task=found.task), file=sys.stderr)
            return found
        print(f"cmfnet: {source}: " + _("{maybe}; unsure, skipped: it would pick {task} (to "
              "restore it so, pass --task {task}, or --if-unsure likely)").format(
                  maybe=maybe, task=found.task), file=sys.stderr)
        return found
    unsure = _(", or {other}").format(other=second) if found.confidence < AUTO_THRESHOLD else ""
    print(f"cmfnet: {source}: " + _("{looks}{unsure}; skipped (to restore it anyway, pass "
          "--task {tasks})").format(looks=looks, unsure=unsure, tasks=" / ".join(TASKS)),
          file=sys.stderr)
    return found


def _detector_backend(backend: str) -> str:
    """The detector follows --backend paddle; OpenVINO has no GPU build to follow."""
    return "paddle" if backend == "paddle" else "auto"


DETECT_WITHOUT_DETECTOR = N_("point CMFNET_DETECTOR at a detector weights file, or unset it to use "
                             "the bundled one")


def run_detect(args) -> int:
    import dataclasses
    import json

    from .cli_report import Report
    from .detect import default_detector, detect
    from .errors import DETECTOR, INTERRUPTED, classify
    from .imageio import read_image

    report = Report(machine=False)  # as restore says it: one line, the next step once, its exit code
    try:
        detector = default_detector()
    except Exception as exc:  # noqa: BLE001 - classified: the detector's weights 3, a bug 70
        problem = classify(exc)
        if problem.kind == DETECTOR:  # restore's hint (--task) is no way on for detect
            problem = dataclasses.replace(problem, cli_hint=_(DETECT_WITHOUT_DETECTOR))
        report.problem(problem)
        return problem.exit_code
    failures, found = 0, []
    for raw in args.paths:
        try:
            result = detect(read_image(Path(raw)).pixels, detector)
        except Exception as exc:  # noqa: BLE001 - one line for this photo, the others go on
            problem = classify(exc)
            report.problem(problem, raw)
            if not problem.expected or problem.kind == INTERRUPTED:
                raise _Reported(problem.exit_code) from exc  # a bug (its traceback said), or stopped
            failures += 1
            continue
        if args.json:
            found.append(dict(path=raw, **result.as_dict()))
        else:
            print(f"{raw}\t{result.task}\t{result.confidence:.2f}", flush=True)
    if args.json:
        print(json.dumps(found, indent=2))
    return EXIT_FAILED if failures else EXIT_OK


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and a.resolve() == b.resolve()
    except OSError:
        return False


# --- weights ---------------------------------------------------------------------

def _add_weights_commands(actions) -> None:
    """download / use / remove (their code: weights_commands.py)."""
    weights_commands = weights_commands_module
    download = actions.add_parser(
        "download", help=_("download the authors' full-size weights and use them by default"),
        description=_("Download the CMFNet authors' weights (about 200 MB each), check that the\n"
                      "file is exactly their network, convert it (the optimizer state is dropped)\n"
                      "and make it the task's default. An interrupted download resumes."),
        epilog=_(weights_commands.DOWNLOAD_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    download.add_argument("tasks", nargs="*", metavar="TASK",
                          help=_("{tasks} (default: all three)").format(tasks=", ".join(TASKS)))
    download.add_argument("--url", help=_("download from this address instead (one task)"))
    download.add_argument("--force", action="store_true",
                          help=_("download again even if these weights are already installed"))
    download.add_argument("--keep", action="store_true",
                          help=_("keep the downloaded .pth beside the converted weights"))
    download.add_argument("--progress-lines", action="store_true",
                          help=_("print 'PROGRESS bytes total' lines to stderr instead of a bar"))
    download.add_argument("--quiet", "-q", action="store_true", help=_("no progress bar or notes"))
    download.set_defaults(run=weights_commands.run_download)

    use = actions.add_parser(
        "use", help=_("choose which weights a task uses by default"),
        description=_("Make bundled (the light weights that come with the app), official (the "
                      "authors' weights, once downloaded or imported) or a weights FILE the "
                      "default for TASK."))
    use.add_argument("task", choices=TASKS)
    use.add_argument("choice", metavar="bundled|official|FILE")
    use.set_defaults(run=weights_commands.run_use)

    remove = actions.add_parser("remove", help=_("delete downloaded weights (the bundled ones stay)"))
    remove.add_argument("tasks", nargs="+", metavar="TASK", choices=TASKS)
    remove.set_defaults(run=weights_commands.run_remove)


def run_weights_import(args) -> int:
    from .weights import WeightsError, import_weights

    try:
        path = import_weights(args.task, args.file, name=args.name)
    except WeightsError as exc:
        _error(str(exc))
        return EXIT_WEIGHTS
    print(path)
    return EXIT_OK


# --- gui ---------------------------------------------------------------------------

def run_gui(args) -> int:
    # The app lives in plugin/, which depends on this package, never the reverse:
    # find it through its installed entry point instead of importing it by name.
    from importlib.metadata import entry_points

    found = entry_points(group="gui_scripts", name="cmfnet-gui")
    if not found:
        _error(_("the desktop app is not installed (pip install 'cmfnet-restore[gui]')"))
        return EXIT_USAGE
    try:
        gui_main = next(iter(found)).load()
    except ImportError as exc:
        _error(_("the desktop app needs PyQt6 (pip install 'cmfnet-restore[gui]'): {error}").format(error=exc))
        return EXIT_USAGE
    argv = list(args.files)
    if args.task:
        argv += ["--task", args.task]
    return gui_main(argv)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _handle_termination() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so pending writes remove their temporary files.

    Called again after each tile: paddle installs its own handler in C when it first
    runs, which ``signal.getsignal`` cannot see (it still reports ours), so the only
    way to be sure ours is in place is to set it again; that is one cheap system call."""
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    set_language()  # the system's language, read again: a test or a caller may have changed it
    translate_argparse()
    args = build_parser(argv).parse_args(argv)
    # paddle warns about a C++ compiler cache on import: noise between the one-line messages
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    _handle_termination()
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away shows here rather than in Python's exit
        return code
    except KeyboardInterrupt:
        print(_("cmfnet: interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Reported as reported:
        return reported.exit_code
    except BrokenPipeError:
        return _reader_went_away()
    except Exception as exc:  # noqa: BLE001 - what no command handled: classified and said
        # (a bug with its traceback, exit 70)
        from .cli_report import Report
        from .errors import classify

        problem = classify(exc)
        Report(machine=False).problem(problem)
        return problem.exit_code


def _reader_went_away() -> int:
    """stdout's reader closed early (``cmfnet weights list | head -1``): stop quietly, as Unix tools do."""
    # Python flushes stdout again at exit, which would raise once more: point it at /dev/null
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
