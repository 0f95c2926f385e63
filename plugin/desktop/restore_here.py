"""Runner behind the file-manager entries (right-click "Restore", "CMFNet Restore ▸ ...").

Every entry that ``plugin/desktop/integration.py`` installs (freedesktop
actions, Nautilus scripts, Nemo actions, the Dolphin service menu, Windows
verbs, macOS Quick Actions) runs::

    <project python> restore_here.py --task TASK --open [FILE...]   # open the app
    <project python> restore_here.py --task TASK --save [FILE...]   # NAME.TASK.EXT beside

TASK is deblur, dehaze, deraindrop or ``auto`` (the "Restore" entry; the
default with ``--save``): ``cmfnet restore`` then finds out per photo what it
needs, says so on stderr, and skips a photo that looks fine.

It is started by the project's own Python (the one ``install.py`` set up), so
``cmfnet_core`` is importable in the child processes it starts; the file
itself uses only the standard library and is run by path, so it works from a
desktop session without an activated venv.

File names come from the command line; when a file manager runs it as a
script with no usable arguments, from ``NAUTILUS_SCRIPT_SELECTED_FILE_PATHS``
or ``NEMO_SCRIPT_SELECTED_FILE_PATHS`` (newline-separated absolute paths).

``--save`` runs ``cmfnet restore FILE... --task TASK`` once for all files (the
model is loaded once), and reports with ``notify-send`` when it is present
(``osascript`` on macOS), otherwise on stderr: what was written, and with
``auto`` what was found in each photo and which ones were left as they are. A log of each run is kept in
the user state directory (``$XDG_STATE_HOME/cmfnet-restore/restore-here.log``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

APP_NAME = "CMFNet Restore"
# copies of cmfnet_core.TASKS and cmfnet_core.detect.AUTO_TASK: this runner may be started
# by a Python without the package (--python names the one with it);
# tests/test_desktop_integration.py keeps them equal
TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"
TASK_VERBS = {"deblur": "Deblurred", "dehaze": "Dehazed", "deraindrop": "Deraindropped"}
SELECTION_ENV_VARS = ("NAUTILUS_SCRIPT_SELECTED_FILE_PATHS", "NEMO_SCRIPT_SELECTED_FILE_PATHS")


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


PROJECT_DIR = Path(__file__).resolve().parents[2]


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
    # adding NAME.TASK-2.EXT (never the original, whose name has no .TASK)
    cmd = cli_command(python, "restore", *map(str, files), "--task", task, "--overwrite")
    if weights:
        cmd += ["--weights", weights]
    n = len(files)
    what = files[0].name if n == 1 else f"{n} photos"
    if task == AUTO_TASK:
        notify(f"Restore: looking at {what}…",
               "Whatever it finds (blur, haze, raindrops) is restored and saved beside the original.")
    else:
        notify(f"{task.capitalize()}: working on {what}…", "The result is saved beside the original.")
    started = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=child_environment())
    seconds = time.monotonic() - started
    _log(["save: " + " ".join(cmd), f"rc={proc.returncode} in {seconds:.1f}s",
          proc.stdout, proc.stderr])
    if task == AUTO_TASK:
        summary, body, error = automatic_outcome(files, proc.returncode, proc.stdout or "",
                                                 proc.stderr or "")
        notify(summary, body + ("" if error else light_weights_hint(proc.stderr or "")), error=error)
        return proc.returncode
    # the CLI prints each file it wrote; only it knows the name (GIF is written as PNG,
    # a name taken meanwhile moves on to a counter), so no name is guessed here
    outs = [Path(ln.strip()).name for ln in (proc.stdout or "").splitlines() if ln.strip()]
    if proc.returncode == 0:
        body = (", ".join(outs[:5]) + (" …" if len(outs) > 5 else "")) if outs else \
            "The result is saved beside the original."
        body += light_weights_hint(proc.stderr or "")
        notify(f"{TASK_VERBS[task]} {what}", body)
        return 0
    errors, reason = _errors(proc.stderr or "", proc.returncode)
    if outs:  # some photos were done: say so, and why the others were not
        failed = f"{len(errors)} could not be restored" if len(errors) != 1 else "1 could not be restored"
        notify(f"{TASK_VERBS[task]} {len(outs)} of {n} photos; {failed}", reason, error=True)
    else:
        notify(f"{APP_NAME}: {task} failed", reason, error=True)
    return proc.returncode or 1


WEIGHTS_HINT = ("; to get the CMFNet authors' weights: run 'cmfnet weights download', "
                "or open CMFNet Restore and choose Restore ▸ Weights…")


def light_weights_hint(stderr: str) -> str:
    """A line for the notification when the CLI said it ran on light weights that do little."""
    if "cmfnet: note:" in stderr and "the authors' full-size weights restore visibly" in stderr:
        return ("\nMade with the light weights that come with CMFNet Restore; for visibly better "
                "results, run 'cmfnet weights download' once.")
    return ""


def _errors(stderr: str, returncode: int) -> tuple[list[str], str]:
    """The CLI's error lines, and the one to show: the first error, else its last word;
    a problem with the restoring weights (exit 3) says how to get the authors'."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("PROGRESS ")]
    errors = [ln.removeprefix("cmfnet: error: ") for ln in lines if ln.startswith("cmfnet: error: ")]
    reason = (errors or lines or [f"exit status {returncode}"])[0 if errors else -1]
    if returncode == 3 and "weights" in reason and "detector" not in reason \
            and "cmfnet weights download" not in reason:
        reason += WEIGHTS_HINT
    return errors, reason


def task_in_name(output: Path, source: Path) -> str | None:
    """The task in the name the CLI wrote, NAME.TASK.EXT or NAME.TASK-2.EXT; None if none."""
    if not output.name.startswith(source.stem + "."):
        return None
    part = output.name[len(source.stem) + 1:].split(".")[0]
    part = re.sub(r"-\d+$", "", part)
    return part if part in TASKS else None


def finding(stderr: str, source: Path) -> str | None:
    """What ``--task auto`` said it found in ``source``, e.g. "Looks hazy (87 %)".

    The CLI says it on stderr as ``cmfnet: PATH: looks hazy (87 %): dehaze`` or
    ``cmfnet: PATH: looks fine (91 %); skipped (...)``: the part before the task
    or the ``;`` is what a person needs to hear."""
    prefix = f"cmfnet: {source}: "
    for line in stderr.splitlines():
        if line.startswith(prefix):
            text = line[len(prefix):].split(";")[0].strip()
            text = re.sub(r":\s*(" + "|".join(TASKS) + r")$", "", text)
            return text[:1].upper() + text[1:] if text else None
    return None


def automatic_outcome(files: list[Path], returncode: int, stdout: str,
                      stderr: str) -> tuple[str, str, bool]:
    """(summary, body, is an error) of a ``cmfnet restore --task auto`` run, for the notification.

    Each photo was written (the CLI prints the file, its name says the task it
    chose), failed (an error line names it) or left as it is because it looked
    fine or the detector was unsure (neither). The CLI takes the photos in order
    and prints the files in that order, so they are matched one by one."""
    outs = [Path(ln.strip()) for ln in stdout.splitlines() if ln.strip()]
    errors, reason = _errors(stderr, returncode)
    written: list[tuple[Path, Path]] = []
    failed: list[Path] = []
    left: list[Path] = []
    pending = iter(outs)
    following = next(pending, None)
    for source in files:
        if any(str(source) in e for e in errors):
            failed.append(source)
        elif following is not None and following.name.startswith(source.stem + "."):
            written.append((source, following))
            following = next(pending, None)
        else:
            left.append(source)
    n = len(files)
    if returncode not in (0, 1) or (returncode == 1 and not failed):
        return f"{APP_NAME}: restore failed", reason, True  # weights, usage, interrupted
    if failed:
        if n == 1:
            return f"{APP_NAME}: could not restore {files[0].name}", reason, True
        return (f"Restored {len(written)} of {n} photos; {len(failed)} could not be restored",
                reason, True)

    def said(source: Path, out: Path | None) -> str:
        found = finding(stderr, source)
        if out is not None:
            return f"{found}: saved {out.name}" if found else f"Saved {out.name}"
        return f"{found or 'Looks fine'}; no copy was written"

    if n == 1:
        source = files[0]
        if written:
            task = task_in_name(written[0][1], source)
            verb = TASK_VERBS.get(task, "Restored")
            return f"{verb} {source.name}", said(source, written[0][1]), False
        return f"Left {source.name} as it is", said(source, None), False
    if not written:
        return (f"Left {n} photos as they are",
                "They look fine, or what they need is unclear; no copies were written.", False)
    summary = f"Restored {len(written)} of {n} photos" if left else f"Restored {n} photos"
    parts = [out.name for _, out in written] + [f"{s.name} left as it is" for s in left]
    body = ", ".join(parts[:5]) + (" …" if len(parts) > 5 else "")
    return summary, body, False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="restore_here", description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=TASKS + (AUTO_TASK,),
                   help="restoration task; auto: found per photo (the default with --save)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--open", action="store_true", help="open the photos in the app")
    mode.add_argument("--save", action="store_true", help="restore straight to NAME.TASK.EXT")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter that has cmfnet_core (default: this one)")
    p.add_argument("--weights", help="weights file passed to `cmfnet restore`")
    p.add_argument("files", nargs="*", help="photos (default: the file manager's selection)")
    a = p.parse_args(argv)

    files = selected_files(a.files)
    if a.save:
        missing = [f for f in files if not f.is_file()]
        files = [f for f in files if f.is_file()]
        if missing:
            _log([f"skipped (not a file): {m}" for m in missing])
        if not files:
            notify(f"{APP_NAME}: nothing to restore", "Select one or more photos.", error=True)
            return 2
        return save_beside(a.python, a.task or AUTO_TASK, files, a.weights)
    return open_in_app(a.python, a.task, files)


if __name__ == "__main__":
    sys.exit(main())
