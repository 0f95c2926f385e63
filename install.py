#!/usr/bin/env python3
"""Set up CMFNet Restore on this machine: one command, safe to run again.

    python3 install.py            # the app and the command line, in ./.venv
    python3 install.py --dev      # plus test tools and the training extra (PyTorch)
    python3 install.py --uninstall  # remove the file-manager and GIMP entries it added

It creates ``.venv`` beside this file, installs the project into it, checks
that PaddlePaddle imports and the bundled weights load, adds the right-click
"Restore" entries and the GIMP plug-in for this user, and says what to run next.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

MIN_PYTHON = (3, 10)
ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command, **kwargs) -> None:
    subprocess.run([str(c) for c in command], check=True, **kwargs)


def ensure_venv() -> None:
    if venv_python().exists():
        step(f"using the existing environment {VENV}")
        return
    step(f"creating the environment {VENV}")
    import venv

    venv.EnvBuilder(with_pip=True).create(VENV)


def install_project(dev: bool) -> None:
    extras = "gui,dev,train" if dev else "gui"
    step(f"installing cmfnet-restore[{extras}] (first time: a few minutes)")
    run(venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q",
        "-e", f"{ROOT}[{extras}]")


def install_system_test_tools() -> None:
    """desktop-file-validate checks the .desktop entries in the tests (Debian package)."""
    if shutil.which("desktop-file-validate"):
        return
    if not _as_root_with_apt():
        print("    note: desktop-file-validate is missing (package desktop-file-utils); "
              "the test that uses it will be skipped")
        return
    step("installing desktop-file-utils (for the .desktop validation test)")
    apt_install(["desktop-file-utils"])


def _as_root_with_apt() -> bool:
    return os.name == "posix" and os.geteuid() == 0 and bool(shutil.which("apt-get"))


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, check=False)


def install_qt_system_libraries() -> None:
    """PyQt6's wheel lacks the X11 libraries Qt's xcb plugin needs (libxcb-cursor0 ...):
    install them as root with apt, else print the one line that does."""
    if not sys.platform.startswith("linux"):
        return
    found = subprocess.run([str(venv_python()), str(ROOT / "plugin" / "app" / "qt_platform.py")],
                           capture_output=True, text=True, cwd=ROOT)
    packages = found.stdout.split()
    if not packages:
        return
    if _as_root_with_apt():
        step(f"installing the X11 libraries the desktop app needs: {' '.join(packages)}")
        apt_install(packages)
        return
    print(f"    note: the desktop app needs system libraries to open a window; "
          f"install them with: sudo apt install {' '.join(packages)}")


def install_cjk_fonts() -> None:
    """The app speaks Chinese where the system does (cmfnet_core/i18n.py); without a CJK font
    Qt shows boxes. Debian's fonts-noto-cjk as root with apt, else the line that installs it."""
    if not sys.platform.startswith("linux"):
        return
    wanted = next((os.environ[v] for v in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
                   if os.environ.get(v)), "")
    if not any(tag.startswith("zh") for tag in wanted.split(":")) or not shutil.which("fc-list"):
        return
    if subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout.strip():
        return  # a Chinese font is there already
    if _as_root_with_apt():
        step("installing a Chinese font for the app (fonts-noto-cjk)")
        apt_install(["fonts-noto-cjk"])
        return
    print("    note: no Chinese font found; the app's Chinese text needs one: "
          "sudo apt install fonts-noto-cjk")


CHECK = """
import warnings
warnings.filterwarnings("ignore", message="No ccache found")
import paddle
from cmfnet_core.weights import TASKS, default_weights, read_weights
for task in TASKS:
    entry = default_weights(task)
    if entry is None:
        print(f"    {task}: no weights installed")
        continue
    weights = read_weights(entry.path)
    print(f"    {task}: {entry.kind} weights, n_feat={weights.config.n_feat}, loaded OK")
print(f"    paddle {paddle.__version__} OK")
"""


def check_install() -> None:
    step("checking that PaddlePaddle imports and the bundled weights load")
    run(venv_python(), "-c", CHECK, cwd=ROOT)


def integrations(uninstall: bool) -> None:
    """Right-click entries and the GIMP plug-in (plugin/desktop needs only the standard library)."""
    call = ("uninstall_integrations()" if uninstall
            else f"install_integrations({str(venv_python())!r}, {str(ROOT)!r})")
    code = ("from plugin.desktop.integration import install_integrations, uninstall_integrations\n"
            f"report = {call}\n"
            "print('\\n'.join('    ' + line for line in report.lines()))")
    python = venv_python() if venv_python().exists() else Path(sys.executable)
    step(("removing" if uninstall else "adding") + " the file-manager entries and the GIMP plug-in")
    result = subprocess.run([str(python), "-c", code], cwd=ROOT)
    if result.returncode:
        print("    warning: the desktop integration step failed (the app and CLI still work)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install test tools and PyTorch for training")
    parser.add_argument("--no-integrations", action="store_true",
                        help="skip the file-manager entries and the GIMP plug-in")
    parser.add_argument("--uninstall", action="store_true",
                        help="remove the file-manager entries and the GIMP plug-in")
    args = parser.parse_args()
    if sys.version_info < MIN_PYTHON:
        print(f"CMFNet Restore needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; "
              f"this is {sys.version.split()[0]}. Run install.py with a newer python3.", file=sys.stderr)
        return 1
    if args.uninstall:
        integrations(uninstall=True)
        return 0
    try:
        ensure_venv()
        install_project(args.dev)
        if args.dev:
            install_system_test_tools()
        check_install()
        install_qt_system_libraries()
        install_cjk_fonts()
        if not args.no_integrations:
            integrations(uninstall=False)
    except subprocess.CalledProcessError as exc:
        print(f"install failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        return 1
    cmfnet = VENV / "bin" / "cmfnet"
    print(f"""
Done. Next:
  {cmfnet} restore resources/samples/haze_1.jpg --task dehaze   # writes haze_1.dehaze.jpg
  {cmfnet} gui                                                  # the desktop app
  {cmfnet} --help
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
