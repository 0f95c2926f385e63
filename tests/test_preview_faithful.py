"""The preview is faithful: After is computed at least at the resolution the view shows the
photo at (HiDPI included), Before is never sharper than After while the preview is still
coarse, and a refined region is exactly what Apply writes there.

The real window, offscreen, with the small checkpoint of ``test_app`` (its fixtures).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from plugin.app import jobs  # noqa: E402
from tests.test_app import (TIMEOUT, final_pass_held, final_preview_hold, is_final,  # noqa: E402,F401
                            large_photo, make_window, open_photo, settings, wait_job, weights, window)

DEVICE_PIXEL_RATIO = 2.0


@pytest.fixture
def hidpi_window(window, monkeypatch):
    """The window at a known size, its view on a screen of device pixel ratio 2."""
    from tests import test_app

    # screen-resolution passes of a 600 px photo: give a busy machine time (a hang guard only)
    monkeypatch.setattr(test_app, "TIMEOUT", 4 * TIMEOUT)
    monkeypatch.setattr(window.view, "devicePixelRatioF", lambda: DEVICE_PIXEL_RATIO)
    window.resize(700, 520)
    window.show()
    return window


def detail(image: np.ndarray) -> float:
    """Fine detail: mean absolute Laplacian of the gray image."""
    gray = np.asarray(image, np.float64).mean(axis=2)
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(np.abs(lap).mean())


def rendered(view) -> np.ndarray:
    """The view's viewport as the screen would show it (RGB), in device pixels."""
    from PyQt6.QtGui import QImage

    image = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    rows = np.frombuffer(bits, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_after_is_computed_at_least_at_the_displayed_resolution(qtbot, hidpi_window, large_photo):
    window = hidpi_window
    job, (outcome, final) = open_photo(qtbot, window, large_photo)
    assert outcome == "succeeded"
    shown = window.view.display_scale() * 600  # the photo's width in device pixels
    assert final.shape[1] >= min(600, shown) * 0.99
    assert window.view.after_scale() >= min(1.0, window.view.display_scale()) * 0.99
    assert "the screen's resolution" in window.statusBar().currentMessage()


def test_before_is_never_sharper_than_after_while_the_preview_is_coarse(
        qtbot, hidpi_window, large_photo, fake_backends, final_preview_hold):
    """Identity network: After is the photo at the first look's resolution. The Before half
    must not show more detail than that (old code: a sharp Before beside a soft After)."""
    window, view = hidpi_window, hidpi_window.view
    with qtbot.waitSignal(window.engine.progress, timeout=TIMEOUT, check_params_cb=final_pass_held):
        window.open_paths([large_photo])
    assert not window.document.preview_final  # only the first look (256 px) is in
    view.set_split(0.5)
    image = rendered(view)
    photo = view.mapFromScene(view.item.image_rect()).boundingRect()
    middle = (photo.left() + photo.right()) // 2
    before = image[photo.top() + 4:photo.bottom() - 4, photo.left() + 4:middle - 8]
    after = image[photo.top() + 4:photo.bottom() - 4, middle + 8:photo.right() - 4]
    assert detail(before) <= 1.15 * detail(after)
    assert "Before shown at the same resolution" in window.statusBar().currentMessage()


def test_a_refined_region_is_what_apply_writes_there(qtbot, hidpi_window, large_photo, monkeypatch):
    """Zoomed to 100 %, the view's region is restored 1:1, bit for bit as Apply does it."""
    window, view = hidpi_window, hidpi_window.view
    monkeypatch.setattr(view, "devicePixelRatioF", lambda: 1.0)
    window.resize(520, 420)  # the photo fit below 1:1
    _, (_, final) = open_photo(qtbot, window, large_photo)
    assert final.shape[1] < 600
    streamed = []
    set_partial = view.set_partial
    monkeypatch.setattr(view, "set_partial", lambda rect, region, finished: (
        streamed.append(finished.copy()), set_partial(rect, region, finished)))
    view.actual_size()
    job, (outcome, patch) = wait_job(qtbot, window.engine, jobs.REGION, lambda: None,
                                     match=lambda j: j.context.get("view") == "1:1")
    assert outcome == "succeeded"
    rect = job.context["rect"]
    assert patch.shape[:2] == (rect.height(), rect.width())
    # it streamed in, the tiles at the split line first
    assert streamed and all((later >= earlier).all() for earlier, later in zip(streamed, streamed[1:]))
    split = round(view.item.image_rect().width() * view.item.split) - rect.x()
    first = np.nonzero(streamed[0].any(axis=0))[0]
    assert first.min() <= split <= first.max() + 64
    assert view.after_scale() >= 1.0  # 1:1 all over the visible part
    # a pan restores only what came into view: what is done is reused
    bar = view.horizontalScrollBar()
    assert bar.maximum() >= bar.value() + 40  # the 600 px photo is wider than the view at 100 %
    moved, _ = wait_job(qtbot, window.engine, jobs.REGION, lambda: bar.setValue(bar.value() + 40),
                        match=lambda j: j.context.get("view") == "1:1")
    assert moved.context["rect"].width() <= 48 and view.after_scale() >= 1.0
    job, (outcome, result) = wait_job(qtbot, window.engine, jobs.APPLY, window.apply)
    assert outcome == "succeeded"
    region = result[rect.y():rect.y() + rect.height(), rect.x():rect.x() + rect.width()]
    assert np.array_equal(patch, region)
