"""What an installer writes: a file's path, its bytes, and whether it is executable.

``plugin.desktop.integration`` (the file-manager entries) and
``plugin.gimp.installer`` (the GIMP plug-in) both describe their files as
:class:`PlannedFile`, and the integration writes them all under one manifest.
The type lives here, beside both, so that the integration depends on the GIMP
installer and never the other way round.

Standard library only: ``install.py`` may import this with a Python that has
no numpy (so no ``cmfnet_core``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: bytes
    executable: bool = False

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644

    def write(self) -> None:
        """Write the file (its folder must exist); see :func:`replace_file`."""
        replace_file(self.path, self.content, self.mode)


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` as ``path`` through a temporary file beside it: never half a file.

    The engine's writer (``cmfnet_core.files.write_atomic``) cannot be used: this
    module must import with the standard library alone, and menu entries need no
    claim-the-name or fsync.
    """
    tmp = path.with_name(path.name + ".cmfnet-tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
