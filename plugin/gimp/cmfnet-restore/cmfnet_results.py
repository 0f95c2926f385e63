"""The lines ``cmfnet restore --progress-lines`` prints for programs: written and read here.

Standard library only, and importing nothing of this package: the GIMP plug-in
carries a byte-identical copy (``plugin/gimp/cmfnet-restore/cmfnet_results.py``,
kept equal by tests/test_results.py) and the right-click runner loads this file
by its path, both from Pythons that have no numpy.

On stderr, among the human messages, two kinds of line start with a keyword::

    PROGRESS DONE TOTAL
    RESULT<TAB>STATUS<TAB>TASK<TAB>CONFIDENCE<TAB>ERROR<TAB>SOURCE<TAB>OUTPUT<TAB>MESSAGE<TAB>UNSURE

One ``RESULT`` line per photo, in the order given, when that photo is done with:

=========== ==================================================================
STATUS      ``written``, ``skipped`` (automatic: looks fine, or too unsure) or ``failed``
TASK        the task that ran or that the detector saw (deblur, dehaze, deraindrop),
            ``none`` (looks fine), ``-`` (not known: failed before)
CONFIDENCE  the detector's confidence, 0.00-1.00, with ``--task auto``; ``-`` otherwise
ERROR       the error kind when failed (``cmfnet_core.errors.KINDS``: image, weights,
            detector, settings, memory, backend, file, interrupted, internal); ``-``
SOURCE      the photo as given; ``-`` on the one line of a run that failed as a whole
            (bad settings, no weights) before any photo
OUTPUT      the file written; ``-``
MESSAGE     one line for people: why it failed or was skipped (may be empty); the one
            field whose words may change between versions, and in the user's language:
            programs show it, never parse it
UNSURE      ``unsure``: with ``--task auto`` the detector was unsure (TASK is the likely
            task: restored with ``--if-unsure likely``, else skipped); ``-`` otherwise
            (sure, looks fine, a task given). Lines of versions before it lack it: unknown,
            read as not unsure
=========== ==================================================================

Paths are percent-encoded (:func:`quote_path`: ``%``, control characters, bytes
outside ASCII and a lone ``-``), so any file name survives a tab-separated line;
:func:`unquote_path` gives it back. The format only grows: later fields are
added at the end, and a reader ignores fields it does not know.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

PROGRESS, RESULT = "PROGRESS", "RESULT"
WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"
STATUSES = (WRITTEN, SKIPPED, FAILED)
UNSURE = "unsure"
NONE = "-"  # a field with no value
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")  # printable ASCII but %


@dataclass(frozen=True)
class Result:
    """One ``RESULT`` line: what became of one photo (or, with no source, of the run)."""

    status: str
    task: str | None = None
    confidence: float | None = None
    error: str | None = None
    source: str | None = None
    output: str | None = None
    message: str = ""
    unsure: bool = False  # the detector was unsure: a program reads this, never MESSAGE's words

    def line(self) -> str:
        """The line as printed (without its newline)."""
        fields = (RESULT, self.status, self.task or NONE,
                  NONE if self.confidence is None else f"{self.confidence:.2f}",
                  self.error or NONE, _path_field(self.source), _path_field(self.output),
                  " ".join(self.message.split()),  # one line, no tabs
                  UNSURE if self.unsure else NONE)
        return "\t".join(fields)


def quote_path(path: str | os.PathLike) -> str:
    """``path`` as a field: percent-encoded, never empty, never a lone ``-``."""
    text = quote(os.fsencode(path), safe=_SAFE)
    return "%2D" if text == NONE else text


def unquote_path(field: str) -> str:
    """The path :func:`quote_path` encoded."""
    return os.fsdecode(unquote_to_bytes(field))


def parse_result(line: str) -> Result | None:
    """A ``RESULT`` line as a :class:`Result`; None for any other line."""
    fields = line.rstrip("\r\n").split("\t")
    if fields[0] != RESULT or len(fields) < 8 or fields[1] not in STATUSES:
        return None
    _, status, task, confidence, error, source, output, message = fields[:8]
    try:
        level = None if confidence == NONE else float(confidence)
    except ValueError:
        return None
    unsure = len(fields) > 8 and fields[8] == UNSURE  # absent (an older line): not known unsure
    return Result(status, _value(task), level, _value(error), _path(source), _path(output),
                  message, unsure)


def parse_progress(line: str) -> tuple[int, int] | None:
    """``"PROGRESS 3 12"`` -> ``(3, 12)``; anything else -> None."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != PROGRESS:
        return None
    try:
        done, total = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    return (done, total) if total > 0 and 0 <= done <= total else None


def progress_line(done: int, total: int) -> str:
    return f"{PROGRESS} {done} {total}"


def results_in(text: str) -> list[Result]:
    """Every ``RESULT`` line in a program's output, in order."""
    found = (parse_result(line) for line in text.splitlines())
    return [result for result in found if result is not None]


def _path_field(path) -> str:
    return NONE if path is None else quote_path(path)


def _value(field: str) -> str | None:
    return None if field == NONE else field


def _path(field: str) -> str | None:
    return None if field == NONE else unquote_path(field)
