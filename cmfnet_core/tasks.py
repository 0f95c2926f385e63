"""The restoration tasks: their names, the automatic choice, and what people call them.

Standard library only. Copies stand where this package cannot be imported (the GIMP
plug-in runs in GIMP's Python; the file-manager entries may be installed by a Python
without numpy); tests keep each copy equal to this.
"""
from __future__ import annotations

TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"  # detect each photo's task (cmfnet_core.detect)
CHOICES = (AUTO_TASK,) + TASKS  # what a user may choose, the automatic choice first
TASK_TITLES = {"deblur": "Deblur", "dehaze": "Dehaze", "deraindrop": "Deraindrop"}
CHOICE_TITLES = {AUTO_TASK: "Automatic", **TASK_TITLES}
