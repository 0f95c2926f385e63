"""Versions of this tool and of what it runs on, read from package metadata.

Nothing is imported to learn them, so ``cmfnet --version`` stays fast and the
OpenVINO cache key (``backends/cache.py``) costs no framework import.
"""
from __future__ import annotations

import sys
from importlib import metadata


def version_of(*dists: str, missing: str = "none") -> str:
    """The installed version of the first of ``dists`` that is installed."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return missing


def library_versions() -> dict[str, str]:
    """What an exported model depends on: a new version of any of these exports afresh."""
    return {
        "paddle": version_of("paddlepaddle", "paddlepaddle-gpu"),
        "paddle2onnx": version_of("paddle2onnx"),
        "openvino": version_of("openvino"),
    }


def version_text() -> str:
    """``cmfnet 0.1.0`` and the versions of what it runs on (``cmfnet --version``, the bench)."""
    libraries = ", ".join(f"{name} {version_of(name, missing='not installed')}"
                          for name in ("paddlepaddle", "openvino", "numpy", "opencv-python-headless"))
    return (f"cmfnet {version_of('cmfnet-restore', missing='not installed')}\n"
            f"{libraries}; python {sys.version.split()[0]}")
