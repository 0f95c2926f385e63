"""What ``cmfnet restore`` says about each photo: a line for people, a line for programs.

For people, on stderr: ``cmfnet: error: MESSAGE`` for each failure, and the next step
once per kind of problem (``cmfnet: hint: ...``, from :mod:`cmfnet_core.errors`).
For programs, with ``--progress-lines``: one ``RESULT`` line per photo, on stderr
beside the ``PROGRESS`` lines (format: :mod:`cmfnet_core.results`).

The prefixes ``cmfnet: error: `` and ``cmfnet: hint: `` and the RESULT line's keywords
stay as they are in every language (programs find the lines by them); the words after
them are in the user's.
"""
from __future__ import annotations

import sys
import traceback

from .errors import INTERNAL, Problem
from .i18n import _
from .results import FAILED, SKIPPED, WRITTEN, Result


class Report:
    def __init__(self, machine: bool):
        self.machine = machine
        self._hinted: set[tuple[str, str]] = set()

    def error(self, message: str) -> None:
        print(f"cmfnet: error: {message}", file=sys.stderr, flush=True)

    def problem(self, problem: Problem, source: str | None = None, task: str | None = None,
                confidence: float | None = None, unsure: bool = False) -> str:
        """Say ``problem`` (about ``source``, or the whole run) and return its one line."""
        message = problem.message
        if source is not None and source not in message:
            message = f"{source}: {message}"
        if problem.kind == INTERNAL:  # a bug: what a report needs, and only then
            traceback.print_exc(file=sys.stderr)
            message = _("internal error: {message}").format(message=message)
        self.error(message)
        if problem.cli_hint and (problem.kind, problem.cli_hint) not in self._hinted:
            self._hinted.add((problem.kind, problem.cli_hint))
            print(f"cmfnet: hint: {problem.cli_hint}", file=sys.stderr, flush=True)
        self._result(Result(FAILED, task, confidence, problem.kind, source, None, message, unsure))
        return message

    def written(self, source: str, output, task: str, confidence: float | None = None,
                found: str = "", unsure: bool = False) -> None:
        """``found``: what the detector saw, for people ("Looks hazy · 87 %"); ``unsure``:
        the detector was unsure and ``task`` is its likely one, for programs."""
        print(output, flush=True)  # the result for people and shells: stdout, one path a line
        self._result(Result(WRITTEN, task, confidence, None, source, str(output), found, unsure))

    def skipped(self, source: str, task: str, confidence: float, why: str,
                unsure: bool = False) -> None:
        self._result(Result(SKIPPED, task, confidence, None, source, None, why, unsure))

    def _result(self, result: Result) -> None:
        if self.machine:
            print(result.line(), file=sys.stderr, flush=True)
