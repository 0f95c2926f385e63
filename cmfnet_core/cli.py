"""The ``cmfnet`` command: restore photos, manage weights, benchmark, train, open the app.

Progress and messages go to stderr, results (the paths written) to stdout.
Exit codes: 0 all done; 1 some files failed (the others were still done);
2 bad usage; 3 no usable weights; 130 interrupted; 141 the reader of stdout
closed it early (as for a tool stopped by SIGPIPE).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path

from .versions import version_text
from .weights import TASKS

AUTO_TASK = "auto"  # detect.AUTO_TASK; kept here so --help needs no numpy or OpenCV

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WEIGHTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe

RESTORE_EXAMPLES = """\
examples:
  cmfnet restore photo.jpg
      looks at the photo, says on stderr what it found (blur, haze, raindrops),
      restores that and writes e.g. photo.dehaze.jpg; a photo that looks fine
      is skipped with a note
  cmfnet restore photo.jpg --task deblur
      writes photo.deblur.jpg beside photo.jpg (photo.deblur-2.jpg if taken)
  cmfnet restore *.png --task dehaze --out-dir restored/
  cmfnet restore scan.tif --task deraindrop -o clean.tif --tile 512
  cmfnet restore photo.jpg --task deblur --weights CMFNet_deblur.pth
      use a weights file directly (official .pth, .pdparams or this tool's format)

The original photo is never modified. Tiles keep memory bounded: a larger
--tile is faster but needs more memory; each tile sees real pixels beyond the
part it keeps, so tiled and whole-photo results agree.
"""

DETECT_EXAMPLES = """\
examples:
  cmfnet detect photo.jpg
      photo.jpg<TAB>dehaze<TAB>0.87
  cmfnet detect *.jpg | awk -F'\\t' '$2 == "deblur"'
      the photos that look blurry
"""

WEIGHTS_EXAMPLES = """\
examples:
  cmfnet weights list
  cmfnet weights import deblur ~/Downloads/deblur_GoPro_CMFNet.pth
      converts the authors' official checkpoint (no PyTorch needed) and makes
      it the default for deblurring
"""


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine")
    engine.add_argument("--tile", type=int, default=None, metavar="N",
                        help="largest tile side in pixels, a multiple of 8 (default: automatic, "
                             "the same choice as the app's: 768 for light weights, 640 for the "
                             "full-size official model); each tile also sees 48 px (light) or "
                             "64 px (full-size) of context on every side, so no seam shows")
    engine.add_argument("--overlap", type=int, default=16, metavar="N",
                        help="pixels of neighbouring tiles' kept parts blended, a multiple of 8 "
                             "(default: 16)")
    engine.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: OpenVINO on an Intel GPU (integrated or Arc) when it sees one, "
                             "else Paddle on an NVIDIA GPU (needs paddlepaddle-gpu); untested "
                             "(default: cpu)")
    engine.add_argument("--backend", choices=("auto", "paddle", "openvino"), default="auto",
                        help="paddle is the exact reference; openvino is much faster on CPUs "
                             "(default: auto)")
    engine.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="auto",
                        help="auto: int8 where it was measured clearly faster and faithful (so far: "
                             "VNNI CPUs without AMX, e.g. AMD Zen 4), else bf16 on CPUs with "
                             "AMX/AVX512-BF16, else fp32; int8 calibrates once per weights, up "
                             "to a minute (default: auto)")
    engine.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads to use (default: all cores)")
    engine.add_argument("--local-stats", action="store_true",
                        help="channel attention over a local window (the training patch) instead "
                             "of the whole photo; not needed for tiles to agree (each tile sees "
                             "real context), and no better on the dev pairs (dehaze -0.007 dB)")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmfnet",
        description="Make blurry, hazy or rain-spotted photos clear with CMFNet.",
        epilog="Run 'cmfnet COMMAND --help' for the options and examples of each command.")
    parser.add_argument("--version", action=_PrintVersion, nargs=0,
                        help="show the version of cmfnet and of the libraries it runs on")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    restore = commands.add_parser(
        "restore", help="restore photos and write NAME.TASK.EXT beside them",
        description="Restore photos with CMFNet. Each photo is written as NAME.TASK.EXT "
                    "beside the original (or where -o / --out-dir say).",
        epilog=RESTORE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    restore.add_argument("paths", nargs="+", metavar="PATH", help="photos to restore")
    restore.add_argument("--task", "-t", choices=TASKS + (AUTO_TASK,), default=AUTO_TASK,
                         help="what to remove (default: auto, detected per photo)")
    restore.add_argument("--weights", "-w", metavar="FILE",
                         help="weights file to use instead of the installed default (needs --task)")
    where = restore.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT", help="output file (one input only)")
    where.add_argument("--out-dir", metavar="DIR", help="folder for the outputs")
    restore.add_argument("--overwrite", action="store_true",
                         help="replace an existing output: NAME.TASK.EXT from an earlier run "
                              "(instead of moving on to NAME.TASK-2.EXT), or the -o file "
                              "(even the original)")
    restore.add_argument("--progress-lines", action="store_true",
                         help="print 'PROGRESS done total' lines to stderr instead of a bar "
                              "(for programs that drive cmfnet)")
    restore.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_engine_options(restore)
    restore.set_defaults(run=run_restore)

    weights = commands.add_parser("weights", help="list or import weights",
                                  epilog=WEIGHTS_EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    weights_commands = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    weights_commands.required = True
    listing = weights_commands.add_parser("list", help="show installed weights and the default per task")
    listing.set_defaults(run=run_weights_list)
    importing = weights_commands.add_parser(
        "import", help="convert a weights file (official .pth, .pdparams) into your weights folder")
    importing.add_argument("task", choices=TASKS)
    importing.add_argument("file", metavar="FILE")
    importing.add_argument("--name", help="name to store it under (default: the file's name)")
    importing.set_defaults(run=run_weights_import)

    detect = commands.add_parser(
        "detect", help="say what each photo needs: deblur, dehaze, deraindrop or none",
        description="Look at each photo and print PATH<TAB>TASK<TAB>CONFIDENCE: TASK is "
                    "deblur, dehaze, deraindrop or none (looks fine), CONFIDENCE 0-1. "
                    "This is the choice 'cmfnet restore' makes without --task.",
        epilog=DETECT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    detect.add_argument("paths", nargs="+", metavar="PATH", help="photos to look at")
    detect.add_argument("--json", action="store_true",
                        help="print one JSON list with every class's probability instead")
    detect.set_defaults(run=run_detect)

    bench = commands.add_parser("bench", help="measure restoration speed on this machine",
                                description="Benchmark the backends on this machine and print "
                                            "ms per tile, megapixels per minute and TFLOP/s.")
    _add_optional(bench, "cmfnet_core.bench", "bench", argv)

    train = commands.add_parser("train", help="train CMFNet weights on your photos (needs torch)",
                                description="Train CMFNet on clean photos with synthesised "
                                            "degradations (needs the 'train' extra: PyTorch).")
    _add_optional(train, "cmfnet_core.training.train", "train", argv)

    gui = commands.add_parser("gui", help="open the desktop app",
                              description="Open the CMFNet Restore desktop app.")
    gui.add_argument("files", nargs="*", metavar="FILE", help="photos to open")
    gui.add_argument("--task", "-t", choices=TASKS + (AUTO_TASK,),
                     help="task to select (auto: detected per photo)")
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
    _error(f"'{command}' is unavailable here: {exc}{hint}")
    return EXIT_USAGE


# --- restore --------------------------------------------------------------------

class _Progress:
    """A tqdm bar per photo on stderr, or plain PROGRESS lines for other programs."""

    def __init__(self, name: str, lines: bool, quiet: bool):
        self.name, self.lines, self.quiet, self.bar = name, lines, quiet, None

    def __call__(self, done: int, total: int) -> None:
        _handle_termination()  # paddle installs its own SIGTERM handler when it first runs
        if self.lines:
            print(f"PROGRESS {done} {total}", file=sys.stderr, flush=True)
            return
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="tile", file=sys.stderr, leave=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _error(message: str) -> None:
    print(f"cmfnet: error: {message}", file=sys.stderr)


def run_restore(args) -> int:
    from .detect import DetectorError, default_detector
    from .engine import Cancelled, Restorer
    from .imageio import ImageError, output_path, read_image, write_image
    from .weights import WeightsError

    automatic = args.task == AUTO_TASK
    if args.output and len(args.paths) > 1:
        _error("-o/--output takes one input; use --out-dir for several")
        return EXIT_USAGE
    if automatic and args.weights:
        _error("--weights needs --task: say which task the file restores")
        return EXIT_USAGE
    try:
        # every restorer up front (each only reads its weights): a missing file is exit 3
        # before the first photo, not a failure per photo
        restorers = {task: Restorer(task, args.weights, tile=args.tile, overlap=args.overlap,
                                    device=args.device, backend=args.backend, precision=args.precision,
                                    threads=args.threads, local_stats=args.local_stats)
                     for task in (TASKS if automatic else (args.task,))}
        detector = default_detector(_detector_backend(args.backend)) if automatic else None
    except (WeightsError, DetectorError) as exc:
        _error(str(exc))
        return EXIT_WEIGHTS
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for note in next(iter(restorers.values())).notes:
        print(f"cmfnet: note: {note}", file=sys.stderr)
    if args.out_dir:  # only once the weights are known good: a refused run leaves nothing behind
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "a file of that name is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            _error(f"--out-dir {args.out_dir}: cannot create the folder ({reason})")
            return EXIT_USAGE

    failures = 0
    for raw in args.paths:
        source = Path(raw)
        progress = _Progress(source.name, args.progress_lines, args.quiet)
        try:
            photo = read_image(source)
            for note in photo.info.notes:
                print(f"cmfnet: note: {source}: {note}", file=sys.stderr)
            task = _detected_task(source, photo.pixels, detector) if automatic else args.task
            if task is None:
                continue
            if restorers[task].calibration_pending:
                print(f"cmfnet: note: int8: calibrating the {task} weights for this CPU first "
                      "(once per weights file; up to a minute)", file=sys.stderr)
            dest = Path(args.output) if args.output else output_path(
                source, task, args.out_dir, reuse=args.overwrite)
            if _same_file(dest, source) and not args.overwrite:
                raise ImageError(f"{dest}: is the original photo; pass --overwrite to replace it")
            restored = restorers[task].restore(photo.pixels, progress=progress)
            _handle_termination()
            # a name chosen here may be taken by another run meanwhile: take the next counter
            dest = write_image(dest, restored, photo.info, overwrite=args.overwrite,
                               next_free=not args.output)
        except (ImageError, ValueError, TypeError) as exc:
            progress.close()
            _error(str(exc) if str(source) in str(exc) else f"{source}: {exc}")
            failures += 1
            continue
        except MemoryError:
            progress.close()
            _error(f"{source}: out of memory; try a smaller --tile")
            failures += 1
            continue
        except Cancelled:
            progress.close()
            return EXIT_INTERRUPTED
        progress.close()
        print(dest, flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def _detected_task(source: Path, pixels, detector) -> str | None:
    """The task ``--task auto`` runs on this photo, said on stderr; None (and why) to skip it."""
    from .detect import LOOKS, detect

    found = detect(pixels, detector)
    looks = f"looks {LOOKS[found.task]} ({round(100 * found.confidence)} %)"
    if found.restore_task:
        print(f"cmfnet: {source}: {looks}: {found.restore_task}", file=sys.stderr)
        return found.restore_task
    why = "" if found.task == "none" else ", too unsure to restore"
    print(f"cmfnet: {source}: {looks}{why}; skipped (to restore it anyway, pass "
          f"--task {' / '.join(TASKS)})", file=sys.stderr)
    return None


def _detector_backend(backend: str) -> str:
    """The detector follows --backend paddle; OpenVINO has no GPU build to follow."""
    return "paddle" if backend == "paddle" else "auto"


def run_detect(args) -> int:
    import json

    from .detect import DetectorError, default_detector, detect
    from .imageio import ImageError, read_image

    try:
        detector = default_detector()
    except DetectorError as exc:
        _error(str(exc))
        return EXIT_WEIGHTS
    failures, found = 0, []
    for raw in args.paths:
        try:
            result = detect(read_image(Path(raw)).pixels, detector)
        except (ImageError, ValueError) as exc:
            _error(str(exc) if raw in str(exc) else f"{raw}: {exc}")
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

def run_weights_list(args) -> int:
    from .weights import default_weights, installed_weights, user_weights_dir

    for task in TASKS:
        default = default_weights(task)
        entries = installed_weights(task)
        print(f"{task}:")
        if not entries:
            print(f"  (none) import with: cmfnet weights import {task} FILE")
        for entry in entries:
            mark = "*" if default and entry.path == default.path else " "
            config = entry.config
            width = f"n_feat={config.get('n_feat')}/{config.get('scale_unetfeats')}" if config else ""
            print(f" {mark} {entry.kind:<8} {width:<14} {entry.path}")
    print(f"(* = default; imported weights are stored in {user_weights_dir()})")
    return EXIT_OK


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
        _error("the desktop app is not installed (pip install 'cmfnet-restore[gui]')")
        return EXIT_USAGE
    try:
        gui_main = next(iter(found)).load()
    except ImportError as exc:
        _error(f"the desktop app needs PyQt6 (pip install 'cmfnet-restore[gui]'): {exc}")
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
    args = build_parser(argv).parse_args(argv)
    # paddle warns about a C++ compiler cache on import: noise between the one-line messages
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    _handle_termination()
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away shows here rather than in Python's exit
        return code
    except KeyboardInterrupt:
        print("cmfnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """stdout's reader closed early (``cmfnet weights list | head -1``): stop quietly, as Unix tools do."""
    # Python flushes stdout again at exit, which would raise once more: point it at /dev/null
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
