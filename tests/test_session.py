"""The window's session (plugin/app/session.py) as plain Python: which task runs, what
is current, what is unsaved. No Qt here."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from cmfnet_core.detect import Detection
from cmfnet_core.imageio import ImageInfo
from plugin.app.document import Document
from plugin.app.session import Session

HAZY = Detection({"deblur": 0.05, "dehaze": 0.87, "deraindrop": 0.03, "none": 0.05})
UNSURE_BLURRY = Detection({"deblur": 0.45, "dehaze": 0.30, "deraindrop": 0.05, "none": 0.20})
FINE = Detection({"deblur": 0.05, "dehaze": 0.05, "deraindrop": 0.05, "none": 0.85})


def photo(name="a.png") -> Document:
    return Document(path=Path(name), pixels=np.zeros((8, 12, 3), np.uint8),
                    info=ImageInfo())


def test_the_task_in_effect_starts_as_the_choice_or_the_first_task_for_automatic():
    assert Session("dehaze").task == "dehaze"
    automatic = Session("auto")
    assert automatic.automatic and automatic.task == "deblur"


def test_automatic_means_the_photos_likely_task_sure_or_not():
    session = Session("auto")
    session.open(photo())
    assert session.task_for("auto") == "deblur"  # not looked at yet: the task in effect
    session.document.detection = HAZY
    assert session.task_for("auto") == "dehaze" and session.task_for("deraindrop") == "deraindrop"
    session.document.detection = UNSURE_BLURRY
    assert session.task_for("auto") == "deblur"
    session.set_task("dehaze")
    session.document.detection = FINE
    assert session.task_for("auto") == "dehaze"  # needs nothing: the task in effect stays


def test_a_photo_that_looks_fine_is_left_alone_only_by_automatic():
    session = Session("auto")
    session.open(photo())
    assert not session.leaves_alone()  # not looked at yet
    session.document.detection = FINE
    assert session.leaves_alone() and not session.automatic_chose()
    session.choice = "deblur"
    assert not session.leaves_alone()


def test_automatic_chose_says_whether_the_task_in_effect_came_from_the_detection():
    session = Session("auto")
    session.open(photo())
    session.document.detection = HAZY
    assert not session.automatic_chose()  # still deblur
    session.set_task("dehaze")
    assert session.automatic_chose()
    session.choice = "dehaze"  # picked by hand: not Automatic's choice
    assert not session.automatic_chose()


def test_a_task_picked_by_hand_is_for_one_photo():
    session = Session("dehaze")
    assert not session.open(photo("first.png"))  # the first photo keeps the remembered choice
    assert session.choice == "dehaze"
    assert session.open(photo("second.png"))  # the next one starts from Automatic
    assert session.choice == "auto" and session.document.path.name == "second.png"
    assert not session.open(photo("third.png"))  # already Automatic: nothing to give way


def test_a_new_task_drops_what_the_old_one_made():
    session = Session("deblur")
    session.open(photo())
    doc = session.document
    session.set_preview(np.ones((4, 6, 3), np.float32), final=True)
    doc.set_result(np.ones((8, 12, 3), np.float32), "deblur")
    assert session.has_preview() and session.unsaved
    session.set_task("dehaze")
    assert session.task == "dehaze" and doc.result is None and doc.preview is None
    assert not doc.preview_final and not session.unsaved and session.needs_preview()


def test_an_outcome_is_current_only_for_the_open_photo_and_the_task_in_effect():
    session = Session("deblur")
    first = photo("first.png")
    session.open(first)
    assert session.is_current(first, "deblur")
    assert not session.is_current(first, "dehaze")
    assert not session.is_current(None, "deblur")
    session.open(photo("second.png"))
    assert not session.is_current(first, "deblur")  # a photo since replaced


def test_the_view_is_refined_only_over_a_final_preview_without_a_result():
    session = Session("deblur")
    assert not session.can_refine() and not session.needs_preview()  # no photo
    session.open(photo())
    assert session.needs_preview() and not session.can_refine()
    session.set_preview(np.ones((4, 6, 3), np.float32), final=False)
    assert session.has_preview() and session.stopped_at_first_look() and not session.can_refine()
    session.set_preview(np.ones((4, 6, 3), np.float32), final=True)
    assert session.can_refine() and not session.stopped_at_first_look()
    session.document.set_result(np.ones((8, 12, 3), np.float32), "deblur")
    assert not session.can_refine()  # the result is the real thing


def test_unsaved_follows_the_result_and_its_strength():
    session = Session("deblur")
    assert not session.unsaved
    session.open(photo())
    session.document.set_result(np.ones((8, 12, 3), np.float32), "deblur")
    assert session.unsaved
    session.document.mark_saved(Path("a.deblur.png"))
    assert not session.unsaved
    session.document.strength = 0.5
    assert session.unsaved


def test_the_session_needs_no_qt():
    """Importing it in a fresh interpreter brings no Qt module along."""
    code = ("import sys, plugin.app.session; "
            "sys.exit(any(name.startswith('PyQt') for name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0
