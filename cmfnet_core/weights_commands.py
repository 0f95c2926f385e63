"""``cmfnet weights list | download | use | remove``: which weights each task uses, in words.

Kept apart from ``cli.py`` (which only declares the options) so the weights
commands read as one piece. Exit codes as the CLI's: 3 when weights could
not be fetched, checked or found, 130 when interrupted (a partial download
is kept and resumed by the next run).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_WEIGHTS
from .i18n import N_, _
from .results import progress_line
from .weights import TASKS, WeightsError

DOWNLOAD_EXAMPLES = N_("""\
examples:
  cmfnet weights download
      the authors' weights for all three tasks (about 200 MB each), checked,
      converted and made the default; an interrupted download resumes
  cmfnet weights download deblur
  CMFNET_WEIGHTS_MIRROR=https://mirror.example.org/cmfnet/ cmfnet weights download
      the same file names from a mirror (behind a firewall, or where GitHub is slow)
  cmfnet weights download dehaze --url https://example.org/dehaze_I_OHaze_CMFNet.pth

Proxies and certificates come from HTTPS_PROXY / NO_PROXY and SSL_CERT_FILE
(or REQUESTS_CA_BUNDLE). Without internet: download the .pth files by hand
from https://github.com/FanChiMao/CMFNet/releases and run
'cmfnet weights import TASK FILE'.
""")
# what download_weights is doing after the transfer (its status phases), as said on stderr
PHASES = {"checking": N_("{task}: checking the file"), "installing": N_("{task}: installing the file")}


def _say(message: str) -> None:
    print(f"cmfnet: {message}", file=sys.stderr, flush=True)  # "cmfnet: " in every language


def _error(message: str) -> None:
    print(f"cmfnet: error: {message}", file=sys.stderr, flush=True)


# --- list ----------------------------------------------------------------------------

def run_list(args) -> int:
    from .weights import default_weights, installed_weights, user_weights_dir

    for task in TASKS:
        default = default_weights(task)
        entries = installed_weights(task)
        print(f"{task}:")
        if not entries:
            print("    " + _("(none installed) get the authors': cmfnet weights download {task}").format(task=task))
        for entry in entries:
            mark = "*" if default and entry.path == default.path else " "
            print(f"  {mark} {entry.description}")
            print(f"      {entry.path}")
        if entries and not any(e.full_size and e.kind == "official" for e in entries):
            print("    " + _("(the authors' full-size weights: cmfnet weights download {task})").format(task=task))
    print(_("(* = used by default; change with 'cmfnet weights use TASK bundled|official|FILE'; "
            "yours are kept in {folder})").format(folder=user_weights_dir()))
    return EXIT_OK


def runs_light_weights(task: str) -> bool:
    """True where ``task`` runs on the light bundled weights and they do little (blur,
    raindrops; the light dehaze weights hold their own): the CLI's note and the app's info
    bar offer the authors' weights then."""
    from .weights import default_weights

    if task not in ("deblur", "deraindrop"):
        return False
    try:
        entry = default_weights(task)
    except (OSError, ValueError):  # WeightsError is a ValueError
        return False
    return entry is not None and entry.bundled and not entry.full_size


def light_weights_note(task: str) -> str | None:
    """What ``restore`` says after running ``task`` on the light bundled weights where they
    do little (blur, raindrops); None otherwise."""
    if not runs_light_weights(task):
        return None
    if task == "deblur":
        note = _("{task} ran on the light weights that come with this tool, which change blur "
                 "only a little; the authors' full-size weights restore visibly: "
                 "cmfnet weights download {task}")
    else:
        note = _("{task} ran on the light weights that come with this tool, which change raindrops "
                 "only a little; the authors' full-size weights restore visibly: "
                 "cmfnet weights download {task}")
    return note.format(task=task)


# --- download --------------------------------------------------------------------------

class _Bar:
    """Bytes on stderr: a tqdm bar (MB done/total, speed, time left) or PROGRESS lines."""

    def __init__(self, task: str, lines: bool, quiet: bool):
        from .download import Throttle

        self.task, self.lines, self.quiet = task, lines, quiet
        self.bar = None
        self._line = Throttle(lambda done, total: print(progress_line(done, total or 0),
                                                        file=sys.stderr, flush=True), 0.25)

    def __call__(self, done: int, total: int | None) -> None:
        if self.lines:
            self._line(done, total)
            return
        if self.quiet:
            return
        if self.bar is None or (total and self.bar.total != total) or done < self.bar.n:
            self.close()
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=self.task, unit="B", unit_scale=True,
                            unit_divisor=1000, file=sys.stderr, leave=False, miniters=1)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_download(args) -> int:
    from .download import DownloadError, download_path, download_weights, manual_route, part_path
    from .engine import Cancelled, CancelToken

    tasks = list(dict.fromkeys(args.tasks or TASKS))
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        _error(_("unknown task {task}; choose from {tasks}").format(task=repr(unknown[0]), tasks=", ".join(TASKS)))
        return EXIT_USAGE
    if args.url and len(tasks) != 1:
        _error(_("--url takes one task: say which task the file restores"))
        return EXIT_USAGE
    failed = 0
    for task in tasks:
        bar = _Bar(task, args.progress_lines, args.quiet)

        def status(phase: str, task=task, bar=bar) -> None:
            bar.close()
            if not args.quiet:
                _say(_(PHASES[phase]).format(task=task) if phase in PHASES else f"{task}: {phase}")

        try:
            result = download_weights(task, url=args.url, keep=args.keep, force=args.force, progress=bar,
                                      cancel=CancelToken(), status=status)
        except DownloadError as exc:
            bar.close()
            route = "" if exc.reason in ("content", "disk", "busy") else _("; or {route}").format(
                route=manual_route(task))
            _error(f"{task}: {exc}{route}")
            failed += 1
            continue
        except WeightsError as exc:
            bar.close()
            _error(f"{task}: {exc}")
            failed += 1
            continue
        except (KeyboardInterrupt, Cancelled):
            bar.close()
            part = part_path(download_path(task))
            _say(_("interrupted; the partial download is kept ({part}): run the same command to resume")
                 .format(part=part) if part.exists() else
                 _("interrupted; the partial download is kept: run the same command to resume"))
            return EXIT_INTERRUPTED
        bar.close()
        if not result.fresh:
            if not args.quiet:
                _say(_("{task}: the authors' weights are already installed, and now used by "
                       "default (--force downloads them again)").format(task=task))
        elif not args.quiet:
            _say(_("{task}: the authors' weights installed and used by default "
                   "({size} MB from {url}, sha256 {sha256})").format(
                task=task, size=f"{result.size / 1e6:.0f}", url=result.url, sha256=result.sha256))
            if result.kept:
                _say(_("{task}: the downloaded file is kept as {path}").format(task=task, path=result.kept))
        print(result.path, flush=True)
    return EXIT_WEIGHTS if failed else EXIT_OK


# --- use / remove ------------------------------------------------------------------------

def run_use(args) -> int:
    from .weights import default_weights, import_weights, installed_weights, set_default

    task, choice = args.task, args.choice
    entries = installed_weights(args.task)
    try:
        if choice == "bundled":
            if not any(e.bundled for e in entries):
                _error(_("no bundled weights for {task} in this installation").format(task=task))
                return EXIT_WEIGHTS
            set_default(task, "bundled")
        elif choice == "official":
            if not any(e.kind == "official" and e.full_size for e in entries):
                _error(_("the authors' weights for {task} are not installed: "
                         "cmfnet weights download {task}").format(task=task))
                return EXIT_WEIGHTS
            set_default(task, "official")
        else:
            path = Path(choice)
            known = [e for e in entries if path.exists() and e.path.resolve() == path.resolve()]
            set_default(task, known[0].path if known else import_weights(task, path))
    except WeightsError as exc:
        _error(str(exc))
        return EXIT_WEIGHTS
    entry = default_weights(task)
    _say(_("{task} now uses: {weights}").format(task=task, weights=entry.description))
    print(entry.path)
    return EXIT_OK


def run_remove(args) -> int:
    from .download import download_path, part_path
    from .weights import chosen_default, installed_weights, set_default

    for task in dict.fromkeys(args.tasks):
        removed = []
        for entry in installed_weights(task):
            if entry.bundled or not entry.downloaded:
                continue
            if chosen_default(task) == str(entry.path.resolve()):
                set_default(task, "official")  # the rule without a choice: what is left
            for path in (entry.path, entry.path.with_suffix(".json")):
                path.unlink(missing_ok=True)
            removed.append(entry.path)
        for path in (part_path(download_path(task)), download_path(task)):
            if path.exists():
                path.unlink()
                removed.append(path)
        if not removed:
            _say(_("{task}: no downloaded weights to remove").format(task=task))
        for path in removed:
            print(path)
    return EXIT_OK
