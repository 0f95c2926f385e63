"""What the window is working on, as plain Python (no Qt): the open photo, the user's
choice, the task in effect and which preview is current.

The choice is Automatic or a task (what the user picked); the task is the one in
effect. With Automatic it becomes the photo's likely task once the photo has been
looked at (``detect.py``); a photo that looks fine is left alone. A task picked by
hand is for that photo: the next photo opened starts from Automatic again. A job's
outcome counts only while it is *current*: made for the open photo with the task
still in effect. The window shows this state; it decides nothing of it itself.
"""
from __future__ import annotations

from typing import Any

from cmfnet_core.tasks import AUTO_TASK, TASKS

from .document import Document


class Session:
    def __init__(self, choice: str):
        self.choice = choice  # Automatic or a task: what the user picked
        self.task = choice if choice in TASKS else TASKS[0]  # the task in effect
        self.document: Document | None = None
        self.photos_opened = 0  # from the second on, each photo starts from Automatic

    # --- the photo -------------------------------------------------------------------
    def open(self, document: Document) -> bool:
        """``document`` is now the open photo. True if a task picked by hand for the
        previous photo gave way to Automatic (the caller remembers that choice)."""
        self.photos_opened += 1
        reset = self.photos_opened > 1 and self.choice != AUTO_TASK
        if reset:
            self.choice = AUTO_TASK
        self.document = document
        return reset

    @property
    def detection(self) -> Any:
        return self.document.detection if self.document is not None else None

    @property
    def automatic(self) -> bool:
        return self.choice == AUTO_TASK

    @property
    def unsaved(self) -> bool:
        """A full-resolution result not saved (or saved at another strength)."""
        return self.document is not None and self.document.has_unsaved_result

    # --- the task --------------------------------------------------------------------
    def task_for(self, choice: str) -> str:
        """The task ``choice`` means for the open photo: Automatic's is what the photo
        needs, or the task in effect when it needs nothing or is not looked at yet."""
        if choice != AUTO_TASK:
            return choice
        detection = self.detection
        found = detection.likely_task if detection is not None else None
        return found or self.task

    def leaves_alone(self) -> bool:
        """Automatic, and the open photo looks fine: nothing runs (as with ``cmfnet restore``)."""
        detection = self.detection
        return self.automatic and detection is not None and detection.looks_fine

    def automatic_chose(self) -> bool:
        """Automatic, and the task in effect is the one the photo was found to need."""
        detection = self.detection
        return self.automatic and detection is not None and detection.likely_task == self.task

    def set_task(self, task: str) -> None:
        """Make ``task`` the task in effect: what was made with the old one is dropped."""
        self.task = task
        doc = self.document
        if doc is not None:
            doc.discard_result()
            doc.preview = doc.preview_task = None
            doc.preview_final = False

    # --- what is current -------------------------------------------------------------
    def is_current(self, document: Document | None, task: str) -> bool:
        """An outcome made for ``document`` with ``task`` still belongs on screen."""
        return document is not None and document is self.document and task == self.task

    def set_preview(self, preview, final: bool) -> None:
        doc = self.document
        doc.preview, doc.preview_task, doc.preview_final = preview, self.task, final

    def has_preview(self) -> bool:
        """A preview of the open photo with the task in effect (a first look or final)."""
        doc = self.document
        return doc is not None and doc.preview is not None and doc.preview_task == self.task

    def needs_preview(self) -> bool:
        return self.document is not None and self.document.preview is None

    def can_refine(self) -> bool:
        """The final preview is on show and no full result yet: the view may be refined."""
        doc = self.document
        return self.has_preview() and doc.preview_final and doc.result is None

    def stopped_at_first_look(self) -> bool:
        """The open photo's preview is a first look only (its final pass stopped or to come)."""
        doc = self.document
        return doc is not None and doc.preview is not None and not doc.preview_final
