"""The test material in the repository is what it says it is, and a skip must say why."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

from tests.conftest import CONFORMANCE, ROOT, SHARP_PHOTO, registered_markers, skip_is_expected


def test_the_conformance_copies_are_the_files_their_readme_lists():
    """Byte for byte (sha256 from the README written beside the originals): a truncated
    copy, or a Git LFS pointer in its place, fails here rather than as a wrong output."""
    listed = dict(re.findall(r"^\| `([^`]+)` \| \d+ \| `([0-9a-f]{64})` \|$",
                             (CONFORMANCE / "README.md").read_text(), re.M))
    present = sorted(p.name for p in CONFORMANCE.iterdir() if p.name != "README.md")
    assert present and set(present) <= set(listed)
    for name in present:
        assert hashlib.sha256((CONFORMANCE / name).read_bytes()).hexdigest() == listed[name], name


def test_the_sharp_photo_is_the_size_its_readme_gives():
    import cv2

    assert cv2.imread(str(SHARP_PHOTO)).shape == (240, 426, 3)
    assert "426 x 240" in (ROOT / "tests" / "fixtures" / "README.md").read_text()


def test_a_skip_names_a_registered_marker_or_an_optional_dependency(pytestconfig):
    markers = registered_markers(pytestconfig)
    for reason in ("Skipped: could not import 'torch': No module named 'torch'",
                   "Skipped: optional dependency gio not installed (Debian: libglib2.0-bin)",
                   "Skipped: platform: PR_SET_PDEATHSIG is Linux-only",
                   "Skipped: marker data: needs the development photos at ../shared/data",
                   "marker gimp: needs root"):
        assert skip_is_expected(reason, markers), reason
    for reason in ("Skipped: conformance material not found at ../shared/conformance",
                   "Skipped: marker nosuch: a marker nobody registered",
                   "Skipped: dev inputs not found"):
        assert not skip_is_expected(reason, markers), reason


def test_an_unexplained_skip_fails_the_run(tmp_path):
    (tmp_path / "test_material.py").write_text(
        "import pytest\n"
        "def test_explained():\n"
        "    pytest.skip('optional dependency frobnicator not installed')\n"
        "def test_unexplained():\n"
        "    pytest.skip('material not found')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
                          "test_material.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "2 skipped" in run.stdout and "test_unexplained: Skipped: material not found" in run.stdout
    assert "test_explained:" not in run.stdout
