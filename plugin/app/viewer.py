"""The photo view: zoom (fit, 100 %, wheel), pan, before/after split, region selection.

The "after" layer is whatever restoration is available: the thumbnail
preview (drawn scaled up over the whole photo, so a coarse first look and the
final preview take the same place on screen), region previews drawn at their
place on top (each at the resolution it was computed at: the screen's, or 1:1),
or the full-resolution result. Left of the split line shows the original, right
of it the restoration; the strength slider sets the after layer's opacity,
which is exactly the linear blend that is saved.

Before and After are always compared at the same resolution: wherever the
restoration on show is coarser than the screen shows the photo, the original is
drawn from a copy at that same coarser resolution, so a sharp Before never sits
beside a soft After (which would make the tool look as if it blurred the photo).
"""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap, QRegion
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from cmfnet_core.i18n import N_, _

from .qimage import to_qimage

MIN_SCALE, MAX_SCALE = 0.02, 32.0
SPLIT_GRAB_PX = 8
KEEP_PATCHES = 12  # region previews kept (newest on top); older ones are covered or out of view
SETTLE_MS = 250  # a zoom or pan is taken as finished after this long without another


class CompareItem(QGraphicsItem):
    """Original and restoration of one photo, painted side by side at the split."""

    def __init__(self):
        super().__init__()
        self._before = QPixmap()
        self._before_image = QImage()
        self._after: QPixmap | None = None
        self._after_before: QPixmap | None = None  # the original at the after layer's resolution
        # (rect, after, the original at the same resolution) per region preview
        self._patches: list[tuple[QRect, QPixmap, QPixmap]] = []
        # a 1:1 region still streaming in: (rect, after, original), both transparent where unfinished
        self._partial: tuple[QRect, QPixmap, QPixmap] | None = None
        self.split = 0.5        # fraction of the width showing the original
        self.strength = 1.0     # opacity of the restoration
        self.show_before = False

    # --- content ------------------------------------------------------------------
    def set_before(self, image: QImage) -> None:
        self.prepareGeometryChange()
        self._before = QPixmap.fromImage(image)
        self._before_image = image
        self._after = self._after_before = None
        self._patches.clear()
        self._partial = None
        self.update()

    def set_after(self, image: QImage | None) -> None:
        self._after = QPixmap.fromImage(image) if image is not None else None
        self._after_before = None if image is None else self._matched(self._before_image.rect(), image.size())
        self.update()

    def _matched(self, rect: QRect, size: QSize) -> QPixmap:
        """The original's ``rect`` at ``size`` (area-averaged, as the preview's input was)."""
        part = self._before_image.copy(rect)
        if part.size() == size:
            return QPixmap.fromImage(part)
        return QPixmap.fromImage(part.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))

    def add_patch(self, rect: QRect, image: QImage) -> None:
        """A restored region, ``image`` covering ``rect`` (photo pixels) at its own resolution."""
        self._patches.append((QRect(rect), QPixmap.fromImage(image), self._matched(rect, image.size())))
        del self._patches[:-KEEP_PATCHES]
        self.update()

    def after_scale(self, rect: QRect) -> float:
        """The resolution (restored pixels per photo pixel) the after layer has all over
        ``rect``: the finest that region previews cover it with together, else the
        whole-photo one's; 0 where nothing is restored."""
        best = 0.0 if self._after is None else self._after.width() / max(1, self._before.width())
        for scale in sorted({pixmap.width() / max(1, r.width()) for r, pixmap, _ in self._patches}, reverse=True):
            if scale <= best:
                break
            if self.missing(rect, scale).isEmpty():
                return scale
        return best

    def missing(self, rect: QRect, scale: float) -> QRect:
        """The bounding box of the part of ``rect`` no region preview of at least ``scale``
        covers (empty if they cover it all): what is left to restore, reusing what is done."""
        covered = QRegion()
        for patch_rect, pixmap, _ in self._patches:
            if pixmap.width() / max(1, patch_rect.width()) >= scale * 0.99:
                covered = covered.united(QRegion(patch_rect))
        return QRegion(rect).subtracted(covered).boundingRect()

    def clear_patches(self) -> None:
        self._patches.clear()
        self._partial = None
        self.update()

    def set_partial(self, rect: QRect, region, finished) -> None:
        """A 1:1 region being restored: ``region`` (photo pixels, h x w) where ``finished``
        (h x w booleans) says it is final. Drawn over what is on show, with the original at
        full resolution under exactly those pixels; elsewhere both halves stay as they were."""
        mask = QImage(np.ascontiguousarray(finished, np.uint8) * 255, finished.shape[1], finished.shape[0],
                      finished.shape[1], QImage.Format.Format_Grayscale8).copy()
        after = to_qimage(region).convertToFormat(QImage.Format.Format_ARGB32)
        before = self._before_image.copy(rect).convertToFormat(QImage.Format.Format_ARGB32)
        after.setAlphaChannel(mask)
        before.setAlphaChannel(mask)
        self._partial = (QRect(rect), QPixmap.fromImage(after), QPixmap.fromImage(before))
        self.update()

    def clear_partial(self) -> None:
        self._partial = None
        self.update()

    def has_after(self) -> bool:
        return self._after is not None or bool(self._patches)

    def image_rect(self) -> QRectF:
        return QRectF(0, 0, self._before.width(), self._before.height())

    # --- painting -----------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self.image_rect()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        full = self.image_rect()
        if self._before.isNull():
            return
        smooth = painter.worldTransform().m11() < 1.0  # zoomed in, photo pixels stay crisp
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        self._paint_original(painter, full, smooth)
        if self.show_before or not self.has_after():
            return
        split_x = full.width() * self.split
        painter.save()
        painter.setClipRect(QRectF(split_x, 0, full.width() - split_x, full.height()))
        painter.setOpacity(self.strength)
        if self._after is not None:
            # a thumbnail preview is drawn enlarged (a first look by 6x on a 1600 px photo):
            # unsmoothed, its pixels would show as blocks that the restoration did not make
            thumbnail = self._after.width() < self._before.width()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth or thumbnail)
            painter.drawPixmap(full, self._after, QRectF(self._after.rect()))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        for rect, pixmap, _ in self._patches:
            # a screen-resolution region is drawn enlarged when zoomed in: smoothed, as above
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                                  smooth or pixmap.width() < rect.width())
            painter.drawPixmap(QRectF(rect), pixmap, QRectF(pixmap.rect()))
        if self._partial is not None:
            rect, after, _ = self._partial
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.drawPixmap(QRectF(rect), after, QRectF(after.rect()))
        painter.restore()
        if 0.0 < self.split < 1.0:
            self._paint_divider(painter, split_x, full.height())

    def _paint_original(self, painter: QPainter, full: QRectF, smooth: bool) -> None:
        """The original, at the resolution of the restoration drawn over each part of it
        wherever that is not the photo's own (B held shows it as sharp as it is). Also at the
        screen's resolution: the same area-averaged copy, scaled the same way as the After
        beside it, so the halves differ by what the restoration did, not by how each was
        resampled (Qt's smooth scaling of the full photo keeps aliasing an area average has
        not: 78 % against 102 % of the detail kept, measured in tests/bench/preview_detail.py)."""
        def coarse(pixmap: QPixmap, width: float) -> bool:
            return pixmap.width() < width * 0.99

        if self.show_before or self._after is None or not coarse(self._after, full.width()):
            painter.drawPixmap(full, self._before, QRectF(self._before.rect()))
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(full, self._after_before, QRectF(self._after_before.rect()))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        if self.show_before:
            return
        for rect, pixmap, before in self._patches:
            matched = before if coarse(pixmap, rect.width()) else self._before
            source = QRectF(before.rect()) if matched is before else QRectF(rect)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth or matched is before)
            painter.drawPixmap(QRectF(rect), matched, source)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        if self._partial is not None:
            rect, _, before = self._partial
            painter.drawPixmap(QRectF(rect), before, QRectF(before.rect()))

    def _paint_divider(self, painter: QPainter, x: float, height: float) -> None:
        pen = QPen(QColor(255, 255, 255), 2)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawLine(QPointF(x, 0), QPointF(x, height))
        # labels drawn in device pixels so they stay readable at any zoom
        top = painter.worldTransform().map(QPointF(x, 0))
        top.setY(max(top.y(), 0.0))  # zoomed in: keep the labels at the top of the view
        painter.save()
        painter.resetTransform()
        font = QFont()
        font.setPointSize(9)
        font.setBold(True)
        painter.setFont(font)
        for text, dx, align in ((N_("Before"), -78, Qt.AlignmentFlag.AlignRight),
                                (N_("After"), 8, Qt.AlignmentFlag.AlignLeft)):
            box = QRectF(top.x() + dx, top.y() + 8, 70, 20)
            painter.fillRect(box, QColor(0, 0, 0, 120))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box.adjusted(4, 0, -4, 0), align | Qt.AlignmentFlag.AlignVCenter, _(text))
        painter.restore()


class PhotoView(QGraphicsView):
    """A zoomable, pannable view of one :class:`CompareItem`."""

    zoom_changed = pyqtSignal(float)
    split_changed = pyqtSignal(float)
    region_selected = pyqtSignal(QRect)
    #: the view came to rest after a zoom, pan or resize (:data:`SETTLE_MS`): time to
    #: refine what it shows, at the resolution it shows it (:meth:`display_scale`)
    view_settled = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = CompareItem()
        self.scene().addItem(self.item)
        self._band = QGraphicsRectItem()
        band_pen = QPen(QColor(80, 170, 255), 2, Qt.PenStyle.DashLine)
        band_pen.setCosmetic(True)
        self._band.setPen(band_pen)
        self._band.setBrush(QColor(80, 170, 255, 40))
        self._band.setZValue(1)
        self._band.hide()
        self.scene().addItem(self._band)
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        # the divider's labels stay at the top of the view while panning: repaint it whole
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setAcceptDrops(False)  # drops go to the window
        self.viewport().setAcceptDrops(False)
        self._fit_mode = True
        self._region_mode = False
        self._region_start: QPointF | None = None
        self._dragging_split = False
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.view_settled)
        self.zoom_changed.connect(self._settle.start)
        self.horizontalScrollBar().valueChanged.connect(self._settle.start)
        self.verticalScrollBar().valueChanged.connect(self._settle.start)

    # --- content ------------------------------------------------------------------
    def set_photo(self, image: QImage) -> None:
        self.item.set_before(image)
        self.scene().setSceneRect(self.item.image_rect())
        self.fit()

    def set_after(self, image: QImage | None) -> None:
        self.item.set_after(image)

    def add_patch(self, rect: QRect, image: QImage) -> None:
        self.item.add_patch(rect, image)

    def clear_patches(self) -> None:
        self.item.clear_patches()

    def set_partial(self, rect: QRect, region, finished) -> None:
        self.item.set_partial(rect, region, finished)

    def clear_partial(self) -> None:
        self.item.clear_partial()

    def set_split(self, fraction: float) -> None:
        self.item.split = min(1.0, max(0.0, fraction))
        self.item.update()

    def set_strength(self, strength: float) -> None:
        self.item.strength = min(1.0, max(0.0, strength))
        self.item.update()

    def set_show_before(self, on: bool) -> None:
        self.item.show_before = on
        self.item.update()

    # --- zoom ---------------------------------------------------------------------
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fit_mode = True
        rect = self.item.image_rect()
        if not rect.isEmpty():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.scale_factor())

    def actual_size(self) -> None:
        self._fit_mode = False
        self.resetTransform()
        self.zoom_changed.emit(1.0)

    def zoom_by(self, factor: float) -> None:
        target = min(MAX_SCALE, max(MIN_SCALE, self.scale_factor() * factor))
        factor = target / self.scale_factor()
        if abs(factor - 1.0) > 1e-6:
            self._fit_mode = False
            self.scale(factor, factor)
            self.zoom_changed.emit(self.scale_factor())

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps)
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()
        self._settle.start()

    def display_scale(self) -> float:
        """Device pixels (HiDPI included) per photo pixel at the current zoom."""
        return self.scale_factor() * self.devicePixelRatioF()

    def after_scale(self) -> float:
        """Restored pixels per photo pixel over the whole visible part (0: none yet)."""
        return self.item.after_scale(self.visible_image_rect())

    def missing_rect(self, scale: float) -> QRect:
        """The part of the view still to restore at ``scale`` (bounding box; may be empty)."""
        return self.item.missing(self.visible_image_rect(), scale)

    def visible_image_rect(self) -> QRect:
        """The part of the photo in view, in image pixels."""
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        return visible.intersected(self.item.image_rect()).toAlignedRect().intersected(
            self.item.image_rect().toRect())

    # --- region selection and split dragging ----------------------------------------
    def set_region_mode(self, on: bool) -> None:
        self._region_mode = on
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)

    def _near_split(self, pos) -> bool:
        if not self.item.has_after() or not 0.0 < self.item.split < 1.0 or self.item.show_before:
            return False
        split_x = self.item.image_rect().width() * self.item.split
        line_x = self.mapFromScene(QPointF(split_x, 0)).x()
        return abs(pos.x() - line_x) <= SPLIT_GRAB_PX

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            if self._region_mode:
                self._region_start = self._clamped_scene_pos(event.position())
                self._band.setRect(QRectF(self._region_start, self._region_start))
                self._band.show()
                event.accept()
                return
            if self._near_split(event.position()):
                self._dragging_split = True
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._region_start is not None:
            end = self._clamped_scene_pos(event.position())
            self._band.setRect(QRectF(self._region_start, end).normalized())
            event.accept()
            return
        if self._dragging_split:
            width = self.item.image_rect().width() or 1.0
            fraction = self.mapToScene(event.position().toPoint()).x() / width
            self.set_split(fraction)
            self.split_changed.emit(self.item.split)
            event.accept()
            return
        if not self._region_mode:
            shape = (Qt.CursorShape.SplitHCursor if self._near_split(event.position())
                     else Qt.CursorShape.OpenHandCursor)
            if event.buttons() == Qt.MouseButton.NoButton:
                self.viewport().setCursor(shape)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._region_start is not None and event.button() == Qt.MouseButton.LeftButton:
            rect = self._band.rect().toAlignedRect().intersected(self.item.image_rect().toRect())
            self._region_start = None
            if rect.width() >= 8 and rect.height() >= 8:
                self.region_selected.emit(rect)
            else:
                self._band.hide()
            event.accept()
            return
        if self._dragging_split:
            self._dragging_split = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def hide_band(self) -> None:
        self._band.hide()

    def _clamped_scene_pos(self, pos) -> QPointF:
        point = self.mapToScene(pos.toPoint())
        rect = self.item.image_rect()
        return QPointF(min(max(point.x(), rect.left()), rect.right()),
                       min(max(point.y(), rect.top()), rect.bottom()))
