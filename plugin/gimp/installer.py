"""Install the GIMP 3 plug-in into a user's GIMP profile.

The plug-in goes to ``<profile>/plug-ins/cmfnet-restore/`` (GIMP 3 wants the
folder named like the executable ``cmfnet-restore.py``), with its helper
modules and ``cmfnet-restore.json``, which names the project's Python so the
plug-in can start the engine without an activated venv.

Profile: ``$GIMP3_DIRECTORY`` when set (created if needed), else the first of
the usual places that exists (``$XDG_CONFIG_HOME/GIMP/3.0``, the Flatpak's
``~/.var/app/org.gimp.GIMP/config/GIMP/3.0``, ``%APPDATA%\\GIMP\\3.0``,
``~/Library/Application Support/GIMP/3.0``). A profile that does not exist yet
is not created: GIMP would then skip its first-run setup (importing 2.10
settings).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from plugin.install_plan import PlannedFile

PLUGIN_NAME = "cmfnet-restore"
SOURCE_DIR = Path(__file__).resolve().parent / PLUGIN_NAME
# cmfnet_results.py: the copy of cmfnet_core/results.py the bridge reads the engine's
# RESULT lines with (GIMP's Python cannot import cmfnet_core)
FILES = (f"{PLUGIN_NAME}.py", "cmfnet_gimp_bridge.py", "cmfnet_results.py")
CONFIG_NAME = "cmfnet-restore.json"


def candidate_profile_dirs(platform: str | None = None) -> list[Path]:
    platform = platform or sys.platform
    home = Path.home()
    if platform == "win32":
        appdata = os.environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        return [Path(appdata) / "GIMP" / "3.0"]
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP" / "3.0"]
    cfg = os.environ.get("XDG_CONFIG_HOME", "")
    cfg_home = Path(cfg) if os.path.isabs(cfg) else home / ".config"
    return [cfg_home / "GIMP" / "3.0",
            home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"]


def gimp_profile_dir(platform: str | None = None) -> Path | None:
    explicit = os.environ.get("GIMP3_DIRECTORY")
    if explicit:
        return Path(explicit)
    for d in candidate_profile_dirs(platform):
        if d.is_dir():
            return d
    return None


def plugin_config(python_exe: str, project_dir: str, weights: str | None = None) -> bytes:
    data = {"python": python_exe, "project_dir": project_dir, "weights": weights}
    return (json.dumps(data, indent=2) + "\n").encode()


def plugin_files(python_exe: str, project_dir: str, profile: str | os.PathLike,
                 weights: str | None = None) -> list[PlannedFile]:
    """The files to write; ``plugin.desktop.integration`` writes them under its manifest."""
    dest = Path(profile) / "plug-ins" / PLUGIN_NAME
    files = [PlannedFile(dest / name, (SOURCE_DIR / name).read_bytes(),
                         executable=name == f"{PLUGIN_NAME}.py")
             for name in FILES]
    files.append(PlannedFile(dest / CONFIG_NAME, plugin_config(python_exe, project_dir, weights)))
    return files


def install_plugin(python_exe: str, project_dir: str, profile: str | os.PathLike,
                   weights: str | None = None) -> list[str]:
    """Write the plug-in into ``profile`` (no manifest; tests and the GIMP test use this)."""
    out = []
    for f in plugin_files(python_exe, project_dir, profile, weights):
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.write()
        out.append(str(f.path))
    return out
