"""Write a file atomically: a reader sees the old state or the whole new file, never a part.

One home for it: photos (:mod:`cmfnet_core.imageio`), weights and their
sidecars (:mod:`cmfnet_core.weights`) and training checkpoints all write
here. The data goes to a temporary file in the destination folder
(``.NAME.*.part``), is flushed to disk, and is then given its name; an
interrupted or failed write leaves no temporary file behind.

Errors are :class:`OSError` (:class:`FileExistsError` for a name that is
taken); callers say in their own words what failed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False,
                 next_name: Callable[[Path], Path] | None = None) -> Path:
    """Write ``data`` as ``path``; returns the path written.

    ``overwrite``: replace whatever has the name. Otherwise the name is claimed
    only if free, atomically, so two writers racing for it cannot both get it;
    with ``next_name`` a taken name moves on to ``next_name(path)`` (and so on),
    without it :class:`FileExistsError` is raised.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
        os.chmod(tmp, new_file_mode(path if overwrite else None))  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
            return path
        while not _claim(tmp, path):
            if next_name is None:
                raise FileExistsError(f"{path}: already exists")
            path = next_name(path)
        return path
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _claim(tmp: str, path: Path) -> bool:
    """Give the finished temporary file the name ``path`` unless it is taken (then False)."""
    try:  # a hard link fails if the name exists, even one a racing writer just took
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # file systems without hard links: reserve the name, then move onto it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        os.replace(tmp, path)
        return True


def new_file_mode(replacing: Path | None = None) -> int:
    """Permissions for a new file: those of the file it replaces, else 0666 less the umask."""
    if replacing is not None:
        try:
            return replacing.stat().st_mode & 0o7777
        except OSError:
            pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = 0o022
    return 0o666 & ~umask
