"""One error path for every front end: what went wrong, in one line, and what to do next.

:func:`classify` turns anything a restore can raise into a :class:`Problem`: its
``kind`` (one of :data:`KINDS`), a one-line ``message`` in words that suit every
front end, a short ``title``, the next step in the words of the command line
(``cli_hint``) and of the app (``gui_hint``), and the ``exit_code`` of ``cmfnet``.
The CLI prints the message and its hint and exits with the code; the app shows
the title, message and its hint in a dialog; the GIMP plug-in and the right-click
runner read the kind from the CLI's ``RESULT`` line (:mod:`cmfnet_core.results`)
and say the next step in their own words.

The kinds are a contract with those front ends (they are written in ``RESULT``
lines): add one, never rename one. ``internal`` is a bug in this tool, the only
kind worth a traceback.

The table of kinds is built at import, before the language is known: its words are
marked with ``N_`` and come out in the current language where a :class:`Problem`
gives them (``title``, the hints from :func:`classify`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from .i18n import N_, _

# cmfnet's exit codes (cmfnet_core.cli documents them)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WEIGHTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug, not the user's input

IMAGE, WEIGHTS, DETECTOR, SETTINGS, MEMORY, BACKEND, FILE, INTERRUPTED, INTERNAL = (
    "image", "weights", "detector", "settings", "memory", "backend", "file", "interrupted",
    "internal")


class SettingsError(ValueError):
    """A combination of settings that cannot run here, found before any photo.

    The message says what is wrong without naming a front end's controls; ``cli`` and
    ``gui`` say how to change it there (default: the kind's general advice)."""

    def __init__(self, message: str, *, cli: str = "", gui: str = ""):
        super().__init__(message)
        self.cli_hint, self.gui_hint = cli, gui


@dataclass(frozen=True)
class Kind:
    """What every problem of one kind shares: a title and the next step per front end."""

    title: str
    exit_code: int
    cli_hint: str
    gui_hint: str


KINDS: dict[str, Kind] = {
    IMAGE: Kind(N_("Cannot use this photo"), EXIT_FAILED,
                N_("check that the file is a photo (JPEG, PNG, TIFF, WebP, BMP, GIF) and not damaged"),
                N_("Check that the file is a photo (JPEG, PNG, TIFF, WebP, BMP, GIF) and not damaged.")),
    WEIGHTS: Kind(N_("Weights problem"), EXIT_WEIGHTS,
                  N_("get the authors' weights with 'cmfnet weights download TASK', or import a file you "
                     "have with 'cmfnet weights import TASK FILE' ('cmfnet weights list' shows what is installed)"),
                  N_("Use Restore ▸ Weights… to download the authors' weights for this task, "
                     "or to import a file.")),
    DETECTOR: Kind(N_("Automatic is not available"), EXIT_WEIGHTS,
                   N_("choose the task yourself: --task deblur, dehaze or deraindrop"),
                   N_("Choose the task yourself.")),
    SETTINGS: Kind(N_("These settings cannot run here"), EXIT_USAGE,
                   N_("see 'cmfnet restore --help' for --device, --backend, --precision, --tile"),
                   N_("Change them in Preferences.")),
    MEMORY: Kind(N_("Out of memory"), EXIT_FAILED,
                 N_("try a smaller --tile"),
                 N_("Lower the tile size in Preferences and try again.")),
    BACKEND: Kind(N_("The engine failed"), EXIT_FAILED,
                  N_("try again; if it fails again, use --backend paddle (the reference, slower)"),
                  N_("Try again; if it fails again, choose the paddle backend (the reference, "
                     "slower) in Preferences.")),
    FILE: Kind(N_("File error"), EXIT_FAILED,
               N_("check that the folder exists, you may write there and the disk has room"),
               N_("Check that the folder exists, you may write there and the disk has room.")),
    INTERRUPTED: Kind(N_("Cancelled"), EXIT_INTERRUPTED, "", ""),
    INTERNAL: Kind(N_("Unexpected error"), EXIT_INTERNAL,
                   N_("this is a bug in cmfnet: please report it with the traceback above"),
                   N_("This is a bug in CMFNet Restore: please report it with the details "
                      "from the terminal.")),
}


@dataclass(frozen=True)
class Problem:
    """One failure, classified: see the module's docstring."""

    kind: str
    message: str
    cli_hint: str
    gui_hint: str

    @property
    def title(self) -> str:
        """The kind's title, in the current language."""
        return _(KINDS[self.kind].title)

    @property
    def exit_code(self) -> int:
        return KINDS[self.kind].exit_code

    @property
    def expected(self) -> bool:
        """A problem of the input, the settings or the machine (no traceback), not a bug."""
        return self.kind != INTERNAL

    def dialog_text(self) -> str:
        """The message and the next step, for a dialog."""
        return f"{self.message}\n\n{self.gui_hint}" if self.gui_hint else self.message


def classify(exc: BaseException) -> Problem:
    """The :class:`Problem` for anything a restore, a read, a write or an import raised."""
    kind = _kind_of(exc)
    message = _one_line(exc)
    if kind == MEMORY and not isinstance(exc, MemoryError):
        message = _("not enough memory ({reason})").format(reason=message)
    elif kind == MEMORY:
        message = message or _("not enough memory to restore this photo")
    elif kind == INTERNAL:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    elif kind == INTERRUPTED:
        message = message or _("interrupted")
    # the kind's general advice, in the language of now (the table holds the English)
    cli_hint = getattr(exc, "cli_hint", "") or _(KINDS[kind].cli_hint)
    gui_hint = getattr(exc, "gui_hint", "") or _(KINDS[kind].gui_hint)
    return Problem(kind, message, cli_hint, gui_hint)


def is_out_of_memory(exc: BaseException) -> bool:
    """A MemoryError, or a framework's way of saying the same (Paddle, OpenVINO)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "resourceexhausted" in text or "cannot allocate" in text


def _kind_of(exc: BaseException) -> str:
    # the checks by class name of modules already loaded keep this import-free: an
    # exception of a module nobody imported cannot have been raised
    if _is(exc, "cmfnet_core.engine", "Cancelled") or isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if _is(exc, "cmfnet_core.detect", "DetectorError"):
        return DETECTOR
    if _is(exc, "cmfnet_core.weights", "WeightsError") or _is(exc, "cmfnet_core.checkpoint",
                                                                "CheckpointError"):
        return WEIGHTS
    if isinstance(exc, SettingsError):
        return SETTINGS
    if is_out_of_memory(exc) and not _is(exc, "cmfnet_core.imageio", "ImageError"):
        return MEMORY  # before image: a TIFF too large to decode is memory; an ImageError stays the photo's
    if _is(exc, "cmfnet_core.imageio", "ImageError") or _is(exc, "cmfnet_core.tiff", "Unsupported"):
        return IMAGE
    if _from_framework(exc) or (isinstance(exc, RuntimeError)
                                and not isinstance(exc, (NotImplementedError, RecursionError))):
        return BACKEND  # OpenVINO and Paddle report their failures as RuntimeError
    if isinstance(exc, OSError):
        return FILE
    return INTERNAL


def _is(exc: BaseException, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def _from_framework(exc: BaseException) -> bool:
    root = type(exc).__module__.split(".")[0]
    return root in ("paddle", "openvino", "nncf", "paddle2onnx", "onnx")


def _one_line(exc: BaseException) -> str:
    """The exception's text on one line: frameworks write pages (C++ stack traces)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip(" -=")]
    if "Error Message Summary:" in lines[:-1]:  # Paddle: C++ frames first, the reason after
        lines = lines[lines.index("Error Message Summary:") + 1:]
    lines = [line for line in lines if not line.startswith("C++ Traceback")]
    openvino = bool(lines) and lines[0].startswith("Exception from ")
    # OpenVINO: "Exception from src/...cpp:84:" frames, the reason last
    lines = [line for line in lines if not line.startswith(("Exception from ", "Check '"))]
    if not lines:
        return ""
    text = lines[-1] if openvino else lines[0]
    return text if len(text) <= 300 else text[:297] + "…"
