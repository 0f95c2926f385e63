"""Where the files that ship with the tool are: bundled weights, sample photos, icons.

In the repository they sit in ``resources/`` beside ``cmfnet_core/``; an install
(``pip install .``, a wheel, ``pipx``) carries that folder as the package
``cmfnet_resources`` (``pyproject.toml`` maps it), found through
``importlib.resources``. Code run from a checkout uses the checkout's own folder,
even where another checkout is installed in editable mode. The files are read by path
(Paddle, OpenCV and Qt take file names), so the package must be unpacked on disk,
as pip always installs it.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "cmfnet_resources"


def _root() -> Path:
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "resources" / "weights").is_dir():
        return checkout / "resources"
    try:
        return Path(str(resources.files(PACKAGE))).resolve()
    except ModuleNotFoundError:  # neither a checkout nor installed with its package data
        return checkout / "resources"


RESOURCES = _root()
WEIGHTS = RESOURCES / "weights"
SAMPLES = RESOURCES / "samples"
ICONS = RESOURCES / "icons"
APP_ICON = ICONS / "cmfnet-restore.png"
MODEL_CARD = WEIGHTS / "MODEL_CARD.md"
