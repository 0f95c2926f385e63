"""The open photo and what has been made of it (no Qt)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .jobs import blend


@dataclass(eq=False)
class Document:
    path: Path
    pixels: np.ndarray           # the original, as read (never modified)
    info: Any                    # cmfnet_core.imageio.ImageInfo
    preview: np.ndarray | None = None   # restored thumbnail
    preview_task: str | None = None
    preview_final: bool = False         # False: a first look, its final pass still to come or stopped
    result: np.ndarray | None = None    # restored full resolution
    result_task: str | None = None
    strength: float = 1.0
    saved_to: Path | None = None        # where the current result was last saved
    saved_strength: float | None = None
    detection: Any = None               # what the photo needs (cmfnet_core.detect.Detection)

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.pixels.shape[:2]
        return width, height

    @property
    def has_unsaved_result(self) -> bool:
        return self.result is not None and (self.saved_to is None or self.saved_strength != self.strength)

    def set_result(self, result: np.ndarray, task: str) -> None:
        self.result, self.result_task = result, task
        self.saved_to, self.saved_strength = None, None

    def discard_result(self) -> None:
        self.result, self.result_task = None, None
        self.saved_to, self.saved_strength = None, None

    def output(self) -> np.ndarray:
        """The result blended with the original at the chosen strength."""
        if self.result is None:
            raise ValueError("nothing to save yet: apply a restoration first")
        return blend(self.pixels, self.result, self.strength)

    def mark_saved(self, path: Path) -> None:
        self.saved_to, self.saved_strength = Path(path), self.strength
