"""The package as pip builds it: every package folder listed, the bundled files carried,
and (slow) a non-editable install of a copy of the checkout that works on its own."""
from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; 3.10 reads the same file with tomli

SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
DATA_PACKAGE = "cmfnet_resources"


def package_folders() -> set[str]:
    """Every folder of the checkout's code that Python imports as a package."""
    found = set()
    for top in ("cmfnet_core", "plugin"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_folder_is_listed_for_the_install():
    """The list is written out (resources/ installs under another name), so a new
    subpackage missing from it would be missing from every wheel."""
    assert set(SETUPTOOLS["packages"]) == package_folders() | {DATA_PACKAGE}
    assert SETUPTOOLS["package-dir"] == {DATA_PACKAGE: "resources"}


def test_every_bundled_file_is_package_data():
    """Weights, samples and icons all travel with the package; the icon's render script,
    and restored copies of the samples (photo.TASK.jpg), do not."""
    patterns = SETUPTOOLS["package-data"][DATA_PACKAGE]
    excluded = SETUPTOOLS["exclude-package-data"][DATA_PACKAGE]
    resources = ROOT / "resources"
    tracked = subprocess.run(["git", "ls-files", "resources"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode or not tracked.stdout:
        pytest.skip("optional dependency git: lists the files of a git checkout (git ls-files)")
    for name in tracked.stdout.split():
        relative = Path(name).relative_to("resources").as_posix()
        carried = (any(fnmatch.fnmatch(relative, p) for p in patterns)
                   and not any(fnmatch.fnmatch(relative, p) for p in excluded))
        assert carried == (not relative.endswith(".py")), relative
    assert all(any(resources.glob(p)) for p in patterns), "a pattern that matches nothing"
    assert fnmatch.fnmatch("samples/haze_1.dehaze.jpg", excluded[0])


def test_a_checkout_reads_its_own_bundled_files():
    """Even where another checkout is installed in editable mode (the package
    cmfnet_resources then points there), code run from this one uses its own folder."""
    from cmfnet_core import bundled, detect, weights
    from cmfnet_core.backends import calibration

    assert bundled.RESOURCES == ROOT / "resources"
    assert weights.BUNDLED_DIR == bundled.WEIGHTS and (bundled.WEIGHTS / "dehaze.pdparams").is_file()
    assert calibration.SAMPLES == bundled.SAMPLES and detect.DETECTOR_WEIGHTS.is_file()
    assert bundled.APP_ICON.is_file() and bundled.MODEL_CARD.is_file()


# --- a real install -------------------------------------------------------------------

def _copy_of_the_checkout(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist",
                                    ".pytest_cache", "runs", "cache", "*.*.jpg", "*.*.png")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _venv_using_these_dependencies(dest: Path) -> Path:
    """A fresh venv whose own site-packages comes first, with this interpreter's installed
    packages (Paddle, OpenCV, PyQt6, setuptools) after it: the install is checked, not
    the dependencies downloaded again."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    theirs = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(own, "dependencies.pth").write_text("\n".join(theirs) + "\n")
    return python


@pytest.mark.slow
def test_pip_install_of_a_copy_gives_a_working_cli_and_app(tmp_path):
    """``pip install .`` (not editable) of a copy of the checkout, the copy then deleted:
    the installed ``cmfnet`` lists the bundled weights from inside the install and restores
    a photo with them, and the app starts with its icon and quits."""
    copy = _copy_of_the_checkout(tmp_path / "checkout")
    python = _venv_using_these_dependencies(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", str(copy)],
                   check=True, env=env, cwd=tmp_path, timeout=600)
    shutil.rmtree(copy)
    bin_dir = python.parent
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    installed = Path(site, DATA_PACKAGE)

    listed = subprocess.run([bin_dir / "cmfnet", "weights", "list"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)
    assert listed.returncode == 0, listed.stderr
    for task in ("deblur", "dehaze", "deraindrop"):  # the light ones, read from the install
        assert f"{task}:\n  * light, bundled" in listed.stdout
        assert f"{installed / 'weights' / task}.pdparams" in listed.stdout

    import cv2

    photo = tmp_path / "hazy.jpg"  # a crop of the installed sample: one tile, a quick restore
    cv2.imwrite(str(photo), cv2.imread(str(installed / "samples" / "haze_1.jpg"))[200:392, 300:556])
    restored = subprocess.run([bin_dir / "cmfnet", "restore", photo, "--task", "dehaze", "--backend",
                               "paddle", "-q"], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == str(tmp_path / "hazy.dehaze.jpg")
    assert cv2.imread(restored.stdout.strip()).shape == (192, 256, 3)

    start_and_quit = (
        "import sys\n"
        "from PyQt6.QtCore import QTimer\n"
        "from PyQt6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "QTimer.singleShot(2000, app.quit)\n"
        "from plugin.app import main, window\n"
        "code = main.main([])\n"
        "print(code, window.ICON_PATH, app.windowIcon().isNull())\n")
    app = subprocess.run([python, "-c", start_and_quit], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(env, QT_QPA_PLATFORM="offscreen"), timeout=300)
    assert app.returncode == 0, app.stderr
    assert app.stdout.split() == ["0", str(installed / "icons" / "cmfnet-restore.png"), "False"]
    # Help's pages, and the RESULT parser the right-click runner loads by path, from the install
    pages = subprocess.run(
        [python, "-c", "from plugin.app import help_pages as h\n"
                       "from plugin.desktop import restore_here as r\n"
                       "print(h.usage_markdown().splitlines()[0], h.model_card_markdown()[:1],"
                       " h.model_card_path(), r.results.__file__, sep='|')"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert pages.returncode == 0, pages.stderr
    assert pages.stdout.strip().split("|") == [
        "## Using it", "#", str(installed / "weights" / "MODEL_CARD.md"),
        str(Path(site, "cmfnet_core", "results.py"))]
    assert (bin_dir / "cmfnet-gui").is_file()
