"""The restoration tasks: their names, the automatic choice, and what people call them.

Standard library only (the titles come out in the user's language, :mod:`cmfnet_core.i18n`). Copies stand where this package cannot be imported (the GIMP
plug-in runs in GIMP's Python; the file-manager entries may be installed by a Python
without numpy); tests keep each copy equal to this.
"""
from __future__ import annotations

from .i18n import N_, Translated

TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"  # detect each photo's task (cmfnet_core.detect)
CHOICES = (AUTO_TASK,) + TASKS  # what a user may choose, the automatic choice first
# in the current language when read (the dicts themselves hold the English)
TASK_TITLES = Translated({"deblur": N_("Deblur"), "dehaze": N_("Dehaze"), "deraindrop": N_("Deraindrop")})
CHOICE_TITLES = Translated({AUTO_TASK: N_("Automatic"), "deblur": N_("Deblur"), "dehaze": N_("Dehaze"),
                            "deraindrop": N_("Deraindrop")})
