"""Runner behind the file-manager entries (right-click "Restore", "CMFNet Restore ▸ ...").

Every entry that ``plugin/desktop/integration.py`` installs (freedesktop
actions, Nautilus scripts, Nemo actions, the Dolphin service menu, Windows
verbs, macOS Quick Actions) runs::

    <project python> restore_here.py --task TASK --open [FILE...]   # open the app
    <project python> restore_here.py --task TASK --save [FILE...]   # NAME.TASK.EXT beside

TASK is deblur, dehaze, deraindrop or ``auto`` (the "Restore" entry; the
default with ``--save``): ``cmfnet restore`` then finds out per photo what it
needs, says so on stderr, and skips a photo that looks fine; one the detector
is unsure about is restored with the likely task (``--if-unsure likely``), and
the notification says so.

It is started by the project's own Python (the one ``install.py`` set up), so
``cmfnet_core`` is importable in the child processes it starts; the file
itself uses only the standard library and is run by path, so it works from a
desktop session without an activated venv.

File names come from the command line; when a file manager runs it as a
script with no usable arguments, from ``NAUTILUS_SCRIPT_SELECTED_FILE_PATHS``
or ``NEMO_SCRIPT_SELECTED_FILE_PATHS`` (newline-separated absolute paths).

``--save`` runs ``cmfnet restore FILE... --task TASK --progress-lines`` once for
all files (the model is loaded once), reads its ``RESULT`` line per photo
(``cmfnet_core/results.py``, loaded by path) and reports with ``notify-send``
when it is present (``osascript`` on macOS), otherwise on stderr: what was
written, and with ``auto`` what was found in each photo and which ones were
left as they are; a failure with the next step for its kind. A log of each run is kept in
the user state directory (``$XDG_STATE_HOME/cmfnet-restore/restore-here.log``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

APP_NAME = "CMFNet Restore"
# copies of cmfnet_core.tasks (TASKS, AUTO_TASK): this runner may be started
# by a Python without the package (--python names the one with it);
# tests/test_desktop_integration.py keeps them equal
TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"


PROJECT_DIR = Path(__file__).resolve().parents[2]


def load_core_file(name: str):
    """``cmfnet_core/<name>.py``, loaded by its path. The files loaded so need only the
    standard library; importing the package would pull in numpy, which the Python running
    this may not have."""
    spec = importlib.util.spec_from_file_location(f"cmfnet_core_{name}", PROJECT_DIR / "cmfnet_core" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def load_i18n():
    """cmfnet_core/i18n.py (the language and its catalogue); None if absent."""
    try:
        return load_core_file("i18n")
    except (OSError, ImportError, AttributeError):
        return None


def N_(message: str) -> str:
    return message


_i18n = load_i18n()
_ = _i18n._ if _i18n else str
TASK_VERBS = {"deblur": N_("Deblurred"), "dehaze": N_("Dehazed"), "deraindrop": N_("Deraindropped")}
INTERRUPTED = 130  # cmfnet's exit code when stopped (Ctrl+C, SIGTERM)
SELECTION_ENV_VARS = ("NAUTILUS_SCRIPT_SELECTED_FILE_PATHS", "NEMO_SCRIPT_SELECTED_FILE_PATHS")
# the next step for each kind of failure (cmfnet_core.errors.KINDS), in the words of a
# right-click entry; tests/test_results.py checks every kind has them
NEXT_STEPS = {
    "image": N_("Check that the file is a photo (JPEG, PNG, TIFF, WebP, BMP, GIF) and not damaged."),
    "weights": N_("Run 'cmfnet weights download' for the CMFNet authors' weights, or open CMFNet "
                  "Restore and choose Restore ▸ Weights…."),
    "detector": N_("Use CMFNet Restore ▸ Deblur, Dehaze or Deraindrop to choose the task yourself."),
    "settings": N_("Run install.py again, or restore the photo in the CMFNet Restore app."),
    "memory": N_("Open the photo in CMFNet Restore and lower the tile size in Preferences."),
    "backend": N_("Open the photo in CMFNet Restore and choose the paddle backend in Preferences."),
    "file": N_("Check that you may write in the photo's folder and the disk has room."),
    "interrupted": "",
    "internal": N_("This is a bug in CMFNet Restore: please report it with the log "
                   "(restore-here.log in the user state folder)."),
}


def state_dir() -> Path:
    """Per-user state directory for the log (XDG on Linux, the OS place elsewhere)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "cmfnet-restore"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "cmfnet-restore"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cmfnet-restore"


def _as_path(item: str) -> Path:
    if item.startswith("file://"):
        return Path(unquote(urlparse(item).path))
    return Path(item)


def selected_files(args: list[str], environ=os.environ) -> list[Path]:
    """The files to work on: arguments first, else a file manager's selection variable.

    Nautilus and Nemo also pass the selection as (relative) arguments when the
    folder is local; the environment variable is used only when there are none
    (remote folders pass no arguments).
    """
    items = [a for a in args if a]
    if not items:
        for var in SELECTION_ENV_VARS:
            value = environ.get(var, "")
            items = [line for line in value.split("\n") if line.strip()]
            if items:
                break
    return [_as_path(i).absolute() for i in items]


def notify(summary: str, body: str = "", *, error: bool = False) -> None:
    """Desktop notification where a notifier exists; always also on stderr."""
    print(f"{summary}{': ' + body if body else ''}", file=sys.stderr)
    try:
        if shutil.which("notify-send"):
            cmd = ["notify-send", "--app-name", APP_NAME,
                   "--icon", "dialog-error" if error else "image-x-generic"]
            if error:
                cmd += ["--urgency", "critical"]
            subprocess.run(cmd + [summary, body], timeout=10, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif sys.platform == "darwin" and shutil.which("osascript"):
            def q(s: str) -> str:
                return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
            subprocess.run(["osascript", "-e",
                            f"display notification {q(body)} with title {q(APP_NAME)} subtitle {q(summary)}"],
                           timeout=10, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass


def _log(lines: list[str]) -> None:
    try:
        d = state_dir()
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "restore-here.log", "a", encoding="utf-8") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            fh.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    except OSError:
        pass


results = load_core_file("results")  # the CLI's RESULT line format


def cli_command(python: str, *args: str) -> list[str]:
    return [python, "-m", "cmfnet_core.cli", *args]


def child_environment(environ=os.environ) -> dict[str, str]:
    """The checkout this runner belongs to comes first on ``PYTHONPATH``, so the
    entries run this project's code even when it is not pip-installed in the venv."""
    env = dict(environ)
    if (PROJECT_DIR / "cmfnet_core").is_dir():
        parts = [str(PROJECT_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def open_in_app(python: str, task: str | None, files: list[Path]) -> int:
    cmd = cli_command(python, "gui", *(["--task", task] if task else []), *map(str, files))
    _log(["open: " + " ".join(cmd)])
    env = child_environment()
    if os.name == "posix":
        os.execve(python, cmd, env)  # does not return
    return subprocess.call(cmd, env=env)


def save_beside(python: str, task: str, files: list[Path], weights: str | None) -> int:
    # --overwrite: running it again replaces the previous NAME.TASK.EXT instead of
    # adding NAME.TASK-2.EXT (never the original, whose name has no .TASK);
    # --progress-lines: the RESULT line per photo this runner reports from
    cmd = cli_command(python, "restore", *map(str, files), "--task", task, "--overwrite",
                      "--progress-lines")
    if task == AUTO_TASK:  # a right-click asks for a restore: an unsure photo gets the likely task
        cmd += ["--if-unsure", "likely"]
    if weights:
        cmd += ["--weights", weights]
    what = what_of(files)
    if task == AUTO_TASK:
        notify(_("Restore: looking at {what}…").format(what=what),
               _("Whatever it finds (blur, haze, raindrops) is restored and saved beside the original."))
    else:
        notify(_("{task}: working on {what}…").format(task=_(task.capitalize()), what=what), _("The result is saved beside the original."))
    started = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=child_environment())
    seconds = time.monotonic() - started
    _log(["save: " + " ".join(cmd), f"rc={proc.returncode} in {seconds:.1f}s",
          proc.stdout, proc.stderr])
    summary, body, error = outcome(files, task, proc.returncode,
                                   results.results_in(proc.stderr or ""), proc.stderr or "")
    notify(summary, body + ("" if error else light_weights_hint(proc.stderr or "")), error=error)
    return proc.returncode


def light_weights_hint(stderr: str) -> str:
    """A line for the notification when the CLI said it ran on light weights that do little
    (its note names the command, which is the same in every language)."""
    if any(line.startswith("cmfnet: note: ") and "cmfnet weights download" in line
           for line in stderr.splitlines()):
        return " — " + _("made with the light weights that come with CMFNet Restore; for visibly "
                         "better results, run 'cmfnet weights download' once.")
    return ""


def next_step(kind: str | None) -> str:
    """What to do about a failure of this kind (``cmfnet_core.errors.KINDS``), in the
    words of a right-click entry."""
    step = NEXT_STEPS.get(kind or "", "")
    return _(step) if step else ""


def outcome(files: list[Path], task: str, returncode: int, said: list,
            stderr: str = "") -> tuple[str, str, bool]:
    """(summary, body, is an error) of a ``cmfnet restore`` run, for the notification.

    ``said``: the run's ``RESULT`` lines (``cmfnet_core.results``), one per photo,
    written, skipped (Automatic: it looks fine, or what it needs is unclear) or
    failed; or one for the whole run when it failed before any photo. Nothing of
    the CLI's human wording is parsed: the messages are only shown."""
    if returncode == INTERRUPTED:
        return (_("{app}: stopped").format(app=APP_NAME), _("The restore was interrupted; the "
                "photos not done yet are left as they are."), True)
    by_source = {r.source: r for r in said if r.source is not None}
    whole = next((r for r in said if r.source is None), None)
    if whole is not None or (not by_source and returncode != 0):
        reason = whole.message if whole else _last_line(stderr, returncode)
        step = next_step(whole.error if whole else "internal" if returncode == 70 else None)
        return _("{app}: restore failed").format(app=APP_NAME), _with_step(reason, step), True
    found = [(f, by_source.get(str(f))) for f in files]
    written = [(f, r) for f, r in found if r is not None and r.status == results.WRITTEN]
    failed = [(f, r) for f, r in found if r is not None and r.status == results.FAILED]
    left = [f for f, r in found if r is None or r.status == results.SKIPPED]
    n = len(files)
    if failed:
        first = failed[0][1]
        body = _with_step(first.message, next_step(first.error))
        if n == 1:
            return _("{app}: could not restore {name}").format(app=APP_NAME, name=files[0].name), body, True
        verb = _("Restored") if task == AUTO_TASK else _(TASK_VERBS[task])
        could_not = _("1 could not be restored") if len(failed) == 1 else \
            _("{n} could not be restored").format(n=len(failed))
        return _("{verb} {done} of {n} photos; {failed}").format(
            verb=verb, done=len(written), n=n, failed=could_not), body, True
    if task != AUTO_TASK:
        names = [Path(r.output).name for _source, r in written]
        body = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        return (_("{verb} {what}").format(verb=_(TASK_VERBS[task]), what=what_of(files)),
                body or _("The result is saved beside the original."), False)
    if n == 1:
        source = files[0]
        if written:
            r = written[0][1]
            name = Path(r.output).name
            verb = _(TASK_VERBS.get(r.task or "", N_("Restored")))
            if r.unsure:  # the detector was unsure: restored with the likelier task
                return (_("{verb} {what}").format(verb=verb, what=source.name),
                        _("Not sure, took the likelier: {found}: saved {name}").format(
                            found=r.message, name=name), False)
            return (_("{verb} {what}").format(verb=verb, what=source.name),
                    _("{found}: saved {name}").format(found=r.message, name=name) if r.message
                    else _("Saved {name}").format(name=name), False)
        r = found[0][1]
        return (_("Left {name} as it is").format(name=source.name),
                _("{found}; no copy was written").format(
                    found=r.message if r and r.message else _("Looks fine")), False)
    if not written:
        return (_("Left {n} photos as they are").format(n=n),
                _("They look fine, or what they need is unclear; no copies were written."), False)
    summary = (_("Restored {done} of {n} photos").format(done=len(written), n=n) if left
               else _("Restored {n} photos").format(n=n))
    parts = [Path(r.output).name for _source, r in written] + [
        _("{name} left as it is").format(name=s.name) for s in left]
    body = ", ".join(parts[:5]) + (" …" if len(parts) > 5 else "")
    return summary, body, False


def what_of(files: list[Path]) -> str:
    return files[0].name if len(files) == 1 else _("{n} photos").format(n=len(files))


def _with_step(message: str, step: str) -> str:
    return f"{message}\n{step}" if step else message


def _last_line(stderr: str, returncode: int) -> str:
    """A run that said no RESULT (e.g. bad usage, or a cmfnet older than this runner):
    its last line on stderr, as it is."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("PROGRESS ")]
    return lines[-1].removeprefix("cmfnet: error: ") if lines else _("exit status {code}").format(code=returncode)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="restore_here", description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=TASKS + (AUTO_TASK,),
                   help=_("restoration task; auto: found per photo (the default with --save)"))
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--open", action="store_true", help=_("open the photos in the app"))
    mode.add_argument("--save", action="store_true", help=_("restore straight to NAME.TASK.EXT"))
    p.add_argument("--python", default=sys.executable,
                   help=_("interpreter that has cmfnet_core (default: this one)"))
    p.add_argument("--weights", help=_("weights file passed to `cmfnet restore`"))
    p.add_argument("files", nargs="*", help=_("photos (default: the file manager's selection)"))
    a = p.parse_args(argv)

    files = selected_files(a.files)
    if a.save:
        missing = [f for f in files if not f.is_file()]
        files = [f for f in files if f.is_file()]
        if missing:
            _log([f"skipped (not a file): {m}" for m in missing])
        if not files:
            notify(_("{app}: nothing to restore").format(app=APP_NAME), _("Select one or more photos."), error=True)
            return 2
        return save_beside(a.python, a.task or AUTO_TASK, files, a.weights)
    return open_in_app(a.python, a.task, files)


if __name__ == "__main__":
    sys.exit(main())
