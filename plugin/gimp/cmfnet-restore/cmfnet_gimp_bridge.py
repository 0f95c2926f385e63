"""The GIMP-free half of the CMFNet Restore plug-in (standard library only).

GIMP's bundled Python cannot hold PaddlePaddle, so the plug-in hands the
layer's pixels to the project's own Python in a subprocess::

    <project python> -m cmfnet_core.cli restore IN.png --out-dir OUT --task T --progress-lines

and reads its ``PROGRESS <done> <total>`` lines and its one ``RESULT`` line
(written, skipped or failed; the task that ran; the file written; the error
kind): the format and its parser are ``cmfnet_results.py`` beside this file, a
byte-identical copy of ``cmfnet_core/results.py`` (tests/test_results.py keeps
them equal; the installer copies it too), so no human message is parsed here.
T may be ``auto``: the engine then finds out what the layer needs and says
which task it ran; it writes nothing when the layer looks fine. Everything here can be
tested without GIMP (tests/test_gimp.py does); ``cmfnet-restore.py`` holds the
``gi.repository.Gimp`` side.

The plug-in finds the project's Python in ``cmfnet-restore.json`` beside it,
written by ``install.py`` (``plugin.gimp.installer``)::

    {"python": "/path/to/.venv/bin/python", "project_dir": "/path/to/checkout",
     "weights": null}

``$CMFNET_PYTHON`` / ``$CMFNET_WEIGHTS`` override the file.
"""

from __future__ import annotations

import array
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:  # loaded by path (tests)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cmfnet_results as results  # noqa: E402

CONFIG_NAME = "cmfnet-restore.json"
# copies of cmfnet_core.tasks (TASKS, AUTO_TASK, CHOICE_TITLES): GIMP's own Python cannot
# import the package; tests/test_gimp.py keeps the copies equal
TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"
CHOICES = (AUTO_TASK,) + TASKS  # the plug-in's task choice, Automatic first


def N_(message: str) -> str:
    """Marks a message for the catalogue; the plug-in translates it where it shows it."""
    return message


_translate = str  # English until the plug-in hands over GIMP's catalogue (set_translator)


def set_translator(translate: Callable[[str], str]) -> None:
    global _translate
    _translate = translate


def _(message: str) -> str:
    return _translate(message)


TASK_LABELS = {AUTO_TASK: N_("Automatic"), "deblur": N_("Deblur"), "dehaze": N_("Dehaze"),
               "deraindrop": N_("Deraindrop")}
PROGRESS_PREFIX = "PROGRESS "
# the next step for each kind of failure (cmfnet_core.errors.KINDS), in the plug-in's words;
# tests/test_results.py checks every kind has them
NEXT_STEPS = {
    "image": N_("The engine could not read the layer's pixels; try Image ▸ Precision ▸ 8 bit "
                "integer, or Image ▸ Mode ▸ RGB, and run it again."),
    "weights": N_("Get the CMFNet authors' weights with 'cmfnet weights download' or the CMFNet "
                  "Restore app (Restore ▸ Weights…), or clear the Weights file field."),
    "detector": N_("Choose the task yourself instead of Automatic."),
    "settings": N_("Set the tile size and overlap to multiples of 8 (the overlap smaller than "
                   "the tile), or 0 and -1 for the engine's defaults."),
    "memory": N_("Lower the tile size in this dialog and try again."),
    "backend": N_("Try again; if it fails again, add \"extra_args\": [\"--backend\", \"paddle\"] "
                  "to cmfnet-restore.json beside the plug-in (the reference engine, slower)."),
    "file": N_("Check that the temporary folder has room and may be written."),
    "interrupted": "",
    "internal": N_("This is a bug in CMFNet Restore: please report it with the engine's output "
                   "(start GIMP from a terminal to see it)."),
}
# context restored around a selection: the network sees what is next to the selected
# pixels, so the selection's edge looks as it would in a run on the whole layer
CONTEXT_MARGIN = 32

# environment a GIMP bundle sets for its own Python; the project's Python must not see it
_PYTHON_ENV_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE",
                    "PYTHONSAFEPATH", "__PYVENV_LAUNCHER__")


class BridgeError(Exception):
    """A failure with a message meant for the user (shown by GIMP); ``kind``: the engine's
    error kind, when the engine said it."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class Cancelled(BridgeError):
    pass


# --------------------------------------------------------------------------- config

@dataclass
class Config:
    python: str
    project_dir: str | None = None
    weights: str | None = None
    extra_args: list[str] = field(default_factory=list)


def load_config(plugin_dir: str | os.PathLike, environ=os.environ) -> Config:
    """Read ``cmfnet-restore.json`` beside the plug-in; environment variables win."""
    path = Path(plugin_dir) / CONFIG_NAME
    data: dict = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BridgeError(_("{path} is not valid JSON: {error}").format(path=path, error=exc)) from exc
    python = environ.get("CMFNET_PYTHON") or data.get("python")
    if not python:
        raise BridgeError(
            _("CMFNet Restore does not know the project's Python: {path} is missing. "
              "Run install.py from the CMFNet Restore checkout again.").format(path=path))
    if not os.path.exists(python):
        raise BridgeError(_("The project's Python {python} does not exist (moved or deleted?). "
                            "Run install.py again.").format(python=python))
    return Config(python=python,
                  project_dir=data.get("project_dir"),
                  weights=environ.get("CMFNET_WEIGHTS") or data.get("weights") or None,
                  extra_args=list(data.get("extra_args") or []))


# --------------------------------------------------------------------------- PNG

_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (G, GA, RGB, RGBA)


def png_bytes(width: int, height: int, channels: int, bit_depth: int, pixels: bytes,
              *, native_u16: bool = True) -> bytes:
    """Encode raw interleaved pixels (8 or 16 bit) as a PNG with no ancillary chunks.

    ``pixels`` for 16 bit is in native byte order when ``native_u16`` (what a
    GEGL "u16" buffer gives); PNG stores big-endian. Rows are written with
    filter 0, so this is fast in pure Python (zlib does the work).
    """
    if channels not in _COLOR_TYPES or bit_depth not in (8, 16):
        raise ValueError(f"unsupported PNG layout: {channels} channels, {bit_depth} bit")
    row = width * channels * bit_depth // 8
    if len(pixels) != row * height:
        raise ValueError(f"expected {row * height} bytes, got {len(pixels)}")
    if bit_depth == 16 and native_u16 and sys.byteorder == "little":
        a = array.array("H")
        a.frombytes(pixels)
        a.byteswap()
        pixels = a.tobytes()
    raw = bytearray()
    mv = memoryview(pixels)
    for y in range(height):
        raw += b"\x00"
        raw += mv[y * row:(y + 1) * row]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOR_TYPES[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 1)) + chunk(b"IEND", b""))


def write_png(path: str | os.PathLike, width: int, height: int, channels: int,
              bit_depth: int, pixels: bytes) -> None:
    Path(path).write_bytes(png_bytes(width, height, channels, bit_depth, pixels))


# --------------------------------------------------------------------------- region

@dataclass(frozen=True)
class Box:
    """A rectangle in layer pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


def context_box(selection: Box, layer_width: int, layer_height: int,
                margin: int = CONTEXT_MARGIN) -> Box:
    """What to send to the engine for a selection: its bounding box (``selection``, in
    layer pixels, as ``Gimp.Drawable.mask_intersect`` gives it) grown by ``margin`` on
    every side and clipped to the layer. Only the selected pixels are changed in the
    end; the margin is context, so they are restored as they would be in the whole."""
    if selection.width <= 0 or selection.height <= 0:
        raise BridgeError(_("the selection does not touch the layer"))
    x0 = max(0, selection.x - margin)
    y0 = max(0, selection.y - margin)
    x1 = min(layer_width, selection.x + selection.width + margin)
    y1 = min(layer_height, selection.y + selection.height + margin)
    if x1 <= x0 or y1 <= y0:
        raise BridgeError(_("the selection does not touch the layer"))
    return Box(x0, y0, x1 - x0, y1 - y0)


# --------------------------------------------------------------------------- engine

def engine_command(cfg: Config, src: str, out_dir: str, task: str, *,
                   tile: int = 0, overlap: int = -1, weights: str | None = None) -> list[str]:
    """``<python> -m cmfnet_core.cli restore SRC --out-dir OUT --task T --progress-lines [...]``.

    The configured weights (``cmfnet-restore.json``, ``$CMFNET_WEIGHTS``) are for the
    task the user picks; with Automatic each task uses its installed default. A
    weights file passed for this run with Automatic is refused: it says nothing
    about which task it restores."""
    if task not in CHOICES:
        raise BridgeError(_("unknown task {task}; choose one of {tasks}").format(task=repr(task), tasks=', '.join(CHOICES)))
    if task == AUTO_TASK and weights:
        raise BridgeError(_("a weights file restores one task: choose that task instead of "
                            "Automatic"))
    cmd = [cfg.python, "-m", "cmfnet_core.cli", "restore", src, "--out-dir", out_dir,
           "--task", task, "--progress-lines"]
    if task == AUTO_TASK:  # asked to restore: an unsure layer gets the likely task (said after)
        cmd += ["--if-unsure", "likely"]
    w = None if task == AUTO_TASK else weights or cfg.weights
    if w:
        cmd += ["--weights", w]
    if tile and tile > 0:
        cmd += ["--tile", str(tile)]
    if overlap is not None and overlap >= 0:
        cmd += ["--overlap", str(overlap)]
    return cmd + list(cfg.extra_args)


@dataclass(frozen=True)
class EngineResult:
    """What one engine run made of a layer: the file and the task, or why nothing."""

    path: str | None      # the restored PNG; None when the engine left the layer as it is
    task: str | None      # the task that ran (for Automatic: the one it chose)
    message: str = ""     # why nothing was written, or that Automatic was unsure, in the engine's words


def engine_result(lines: list[str], src: str) -> EngineResult:
    """The outcome of the run on ``src``, from its ``RESULT`` line among ``lines``
    (``run_engine``'s): the file written and the task that ran (for Automatic, the one
    it chose), or why nothing was written. A failure raises :class:`BridgeError`."""
    for line in lines:
        found = results.parse_result(line)
        if found is None or found.source != src:
            continue
        if found.status == results.WRITTEN:
            # unsure, restored with the likely task (--if-unsure likely): the plug-in says so
            return EngineResult(found.output, found.task, found.message if found.unsure else "")
        if found.status == results.SKIPPED:
            return EngineResult(None, None, found.message or _("it looks fine"))
        raise failure(found)
    raise BridgeError(_("CMFNet Restore said nothing about the layer: is the project older "
                        "than this plug-in? Run install.py again."))


def _starts_with_words(text: str | None, message: str) -> bool:
    """``text`` (the engine's words) begins as ``message`` does, in English or in the
    language the engine spoke (the plug-in's: the engine inherits GIMP's environment)."""
    heads = {message.split("{")[0].strip(), _(message).split("{")[0].strip()} - {""}
    return bool(text) and text.startswith(tuple(heads))


def failure(found: "results.Result") -> BridgeError:
    """The error GIMP shows for a failed ``RESULT``: the engine's line and the next step."""
    step = NEXT_STEPS.get(found.error or "", "")
    message = _("CMFNet Restore failed: {reason}").format(reason=found.message or found.error)
    return BridgeError(f"{message}\n{_(step)}" if step else message, found.error)


def parse_progress(line: str) -> tuple[int, int] | None:
    """``"PROGRESS 3 12"`` -> ``(3, 12)``; anything else -> None."""
    return results.parse_progress(line)


def child_environment(environ=os.environ) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in _PYTHON_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGTERM the engine when the plug-in dies (GIMP kills the plug-in
    process when the user cancels its progress bar)."""
    try:
        import ctypes  # noqa: PLC0415
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort
        pass


def run_engine(cmd: list[str], on_progress: Callable[[int, int], bool | None] | None = None,
               *, cwd: str | None = None, environ=os.environ) -> list[str]:
    """Run the engine, feeding ``PROGRESS`` lines to ``on_progress(done, total)``.

    ``on_progress`` returning ``False`` cancels: the engine is terminated and
    :class:`Cancelled` raised. Returns the other output lines; raises
    :class:`BridgeError` with the engine's last message when it fails.
    """
    kwargs: dict = {}
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with_parent
    elif os.name == "nt":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    if cwd and not os.path.isdir(cwd):
        cwd = None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, env=child_environment(environ),
                                text=True, encoding="utf-8", errors="replace", bufsize=1,
                                **kwargs)
    except OSError as exc:
        raise BridgeError(_("cannot start the project's Python ({python}): {error}").format(python=cmd[0], error=exc)) from exc
    other: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            prog = parse_progress(line)
            if prog is None:
                if line.strip():
                    other.append(line)
                continue
            if on_progress is not None and on_progress(*prog) is False:
                raise Cancelled("Cancelled")
        rc = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    if rc != 0:
        said = [r for r in map(results.parse_result, other) if r and r.status == results.FAILED]
        if said:
            raise failure(said[-1])
        last = next((ln for ln in reversed(other) if ln.strip()), f"exit status {rc}")
        if rc == 3 and "detector" not in last and "cmfnet weights download" not in last:
            last += "\n" + _(WEIGHTS_HINT)  # the weights could not be used: say how to get good ones
        raise BridgeError(_("CMFNet Restore failed: {reason}").format(reason=last))
    return other


WEIGHTS_HINT = N_("To get the CMFNet authors' weights, run 'cmfnet weights download' "
                  "(or use Restore ▸ Weights… in the CMFNet Restore app).")


def parse_weights_list(text: str) -> dict[str, str]:
    """task -> the words ``cmfnet weights list`` uses for the weights it runs (marked ``*``)."""
    used, task = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            task = line.strip()[:-1]
        elif task and line.lstrip().startswith("* "):
            used[task] = line.strip()[2:]
    return used


def weights_note(cfg: Config, task: str, listing: dict[str, str]) -> str:
    """A line or two for the plug-in's dialog: which weights a run of ``task`` uses, and
    how to get the authors' when any task still runs on the light bundled ones."""
    if cfg.weights and task != AUTO_TASK:
        uses = _("Weights: {name} (set in {config} or $CMFNET_WEIGHTS).").format(
            name=os.path.basename(cfg.weights), config=CONFIG_NAME)
    else:
        tasks = TASKS if task == AUTO_TASK else (task,)
        # TRANSLATORS: between the tasks in "Weights: Deblur: light, bundled; Dehaze: ..."
        separator = _("; ")
        uses = _("Weights: {list}.").format(list=separator.join(
            _("{task}: {weights}").format(task=_(TASK_LABELS.get(t, t)),
                                          weights=listing.get(t) or _("none installed"))
            for t in tasks))
    if any(not _starts_with_words(listing.get(t, ""), N_("the authors' ({size})")) for t in TASKS):
        uses += "\n" + _("The CMFNet authors' full-size weights restore blur and raindrops better: run "
                         "'cmfnet weights download' once (about 200 MB each), or use Restore ▸ Weights… "
                         "in the CMFNet Restore app.")
    return uses


def installed_weights(cfg: Config, timeout: float = 20.0) -> dict[str, str]:
    """What ``cmfnet weights list`` says each task uses; {} when it cannot be asked."""
    try:
        done = subprocess.run([cfg.python, "-m", "cmfnet_core.cli", "weights", "list"],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=cfg.project_dir if cfg.project_dir and os.path.isdir(cfg.project_dir)
                              else None, env=child_environment(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_weights_list(done.stdout) if done.returncode == 0 else {}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
