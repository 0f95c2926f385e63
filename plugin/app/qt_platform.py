"""Can Qt open a window on X11 here? The system libraries its xcb plugin needs.

PyQt6's wheel brings Qt but not the X11 libraries Qt's xcb platform plugin
links against (since Qt 6.5 ``libxcb-cursor0`` among them). Without them Qt
prints "could not load the Qt platform plugin xcb" and aborts the process, so
this is checked before a QApplication exists: ``ldd`` on the plugin names the
missing libraries, and a table turns them into the Debian/Ubuntu packages.

Standard library only: ``install.py`` runs it as a script with the venv's
python (``python plugin/app/qt_platform.py`` prints one package a line).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: library soname -> the Debian/Ubuntu package that ships it
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def xcb_plugin() -> Path | None:
    """PyQt6's ``libqxcb.so``, or None where PyQt6 or the plugin is absent."""
    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        plugin = Path(folder) / "Qt6" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.exists():
            return plugin
    return None


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as 'not found', each once, in order."""
    missing = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def packages_for(libraries: list[str]) -> list[str]:
    """Debian packages for these sonames; an unknown soname is listed as itself."""
    return list(dict.fromkeys(DEBIAN_PACKAGES.get(lib, lib) for lib in libraries))


def missing_packages(plugin: Path | None = None) -> list[str]:
    """What to ``apt install`` so Qt's xcb plugin loads ([] if nothing, or it cannot be told)."""
    plugin = plugin or xcb_plugin()
    if plugin is None or not shutil.which("ldd"):
        return []
    try:
        result = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return packages_for(missing_libraries(result.stdout))


def apt_hint(packages: list[str]) -> str:
    return "sudo apt install " + " ".join(packages)


def uses_xcb(qt_args: list[str], environ=os.environ) -> bool:
    """Will Qt pick its X11 plugin? (Linux, an X display, no other platform asked for.)"""
    if not sys.platform.startswith("linux") or "-platform" in qt_args:
        return False
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def xcb_problem(qt_args: list[str], environ=os.environ) -> str | None:
    """The one-line fix when the app would fail to open its window, else None."""
    if not uses_xcb(qt_args, environ):
        return None
    packages = missing_packages()
    if not packages:
        return None
    from cmfnet_core.i18n import _  # here: install.py runs this file by path, before the venv has it

    return _("the desktop app cannot open a window: Qt's X11 plugin needs system libraries "
             "that are missing. Install them with: {command}").format(command=apt_hint(packages))


if __name__ == "__main__":
    print("\n".join(missing_packages()))
