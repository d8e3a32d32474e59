"""The inference canvas: an image with the model's predictions drawn over it; files dropped here.

Built on the dataset viewer (zoom with wheel/+/-/0, pan by dragging, dark-outlined shapes), plus:
labels with confidence, semi-transparent masks, keypoints, a message drawn on the canvas for bad
input or a missing model, and drag and drop of images and folders. The predictions of an image are
one layer item (:class:`PredictionLayer`); re-filtering (sliders) only changes what it shows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QLabel, QStyleOptionGraphicsItem, QWidget

from app.look import ERROR_COLOUR, WARNING_COLOUR, class_colour
from app.models.predictions import OverlayShape, sourced_shapes
from app.widgets.image_viewer import ImageViewer

MASK_ALPHA = 90
CLASS_MASK_ALPHA = 130  # the semantic-segmentation overlay: the picture stays readable under it


def class_mask_image(mask: dict[str, Any]) -> QImage:
    """A :class:`core.contracts.ClassMask` as an image: each class id in its class colour (the same
    colours as the legend and the boxes), background (0) transparent."""
    import base64

    grey = QImage.fromData(base64.b64decode(mask["png_base64"])).convertToFormat(QImage.Format.Format_Grayscale8)
    indexed = QImage(grey.constBits(), grey.width(), grey.height(), grey.bytesPerLine(),
                     QImage.Format.Format_Indexed8).copy()
    table = [0]  # background: fully transparent
    for class_id in range(1, 256):
        colour = QColor(class_colour(class_id))
        colour.setAlpha(CLASS_MASK_ALPHA)
        table.append(colour.rgba())
    indexed.setColorTable(table)
    return indexed.convertToFormat(QImage.Format.Format_ARGB32)


def legend_lines(mask: dict[str, Any]) -> list[str]:
    """One line per class present (background included): name and share of the image."""
    return [f"{area['label']}: {area['fraction'] * 100:.1f} %" for area in mask.get("areas") or []]
DROP_HINT = "Drop images or a folder here, or paste an image (Ctrl+V)"


@functools.cache
def _label_font() -> QFont:
    """The application font in bold (made on first use: a QFont needs the QApplication)."""
    font = QFont()
    font.setBold(True)
    return font


@dataclass(frozen=True)
class DrawnShape:
    """One prediction the overlay layer can draw (what ``box_items()`` and ``overlay_labels()`` report)."""

    shape_type: str  # rectangle | polygon | point
    label: str
    class_id: int
    confidence: float
    text: str  # "circle 87 %" drawn above boxes


class PredictionLayer(QGraphicsItem):
    """All predictions of one image in a single scene item.

    A slider move changes which predictions are visible. With one item per box (and one per label)
    every repaint crossed into Python hundreds of times (≈36 ms for 300 boxes here); this layer paints
    the visible set in one call: boxes as a few ``drawRects`` batches of one-pixel lines (a dark
    frame, then one batch per class colour), masks as filled polygons, and labels as tags rendered
    once per text and blitted at a fixed screen size.
    """

    def __init__(self, shapes: list[tuple[int, OverlayShape]], bounds: QRectF, ratio: float = 1.0) -> None:
        super().__init__()
        self._bounds = bounds
        # Everything a slider move needs is built here once: geometry, text, pens.
        self._shapes: list[tuple[int, DrawnShape, Any, QColor]] = []
        self._pens: dict[int, QPen] = {}
        for source_id, shape in shapes:
            colour = class_colour(shape.class_id)
            text = f"{shape.label} {shape.confidence * 100:.0f} %"
            drawn = DrawnShape(shape.shape_type, shape.label, shape.class_id, shape.confidence, text)
            geometry: Any
            if shape.shape_type == "rectangle":
                (x1, y1), (x2, y2) = shape.points[:2]
                geometry = QRectF(QPointF(min(x1, x2), min(y1, y2)), QPointF(max(x1, x2), max(y1, y2)))
                self._pens.setdefault(shape.class_id, QPen(colour, 0))
            elif shape.shape_type == "polygon":
                pen = QPen(colour, 2)
                pen.setCosmetic(True)
                fill = QColor(colour)
                fill.setAlpha(MASK_ALPHA)
                geometry = (QPolygonF([QPointF(x, y) for x, y in shape.points]), pen, QBrush(fill))
            else:
                geometry = QPointF(*shape.points[0])
            self._shapes.append((source_id, drawn, geometry, colour))
        self._outline = QPen(QColor(0, 0, 0, 200), 4)
        self._outline.setCosmetic(True)
        self._frame = QPen(QColor(0, 0, 0), 0)  # width 0: one device pixel at any zoom
        self._label_cache: dict[tuple[str, int], QPixmap] = {}
        for _source, drawn, _geometry, colour in self._shapes:
            if drawn.shape_type == "rectangle":  # rendered now, so the first slider move is as fast as the rest
                self._label_pixmap(drawn.text, colour, ratio)
        self.visible: list[DrawnShape] = []
        self._rects: list[QRectF] = []
        self._rects_by_colour: list[tuple[QPen, list[QRectF]]] = []
        self._polygons: list[tuple[QPolygonF, QPen, QBrush]] = []
        self._labels: list[tuple[QPointF, str, QColor]] = []
        self._points: list[tuple[QPointF, QColor]] = []

    def boundingRect(self) -> QRectF:
        return self._bounds

    def show_only(self, kept: set[int]) -> None:
        """Show the shapes whose source prediction dict (by id) is in ``kept``; one repaint."""
        self.visible = []
        self._rects, self._polygons, self._labels, self._points = [], [], [], []
        by_class: dict[int, list[QRectF]] = {}
        for source_id, drawn, geometry, colour in self._shapes:
            if source_id not in kept:
                continue
            self.visible.append(drawn)
            if drawn.shape_type == "rectangle":
                self._rects.append(geometry)
                by_class.setdefault(drawn.class_id, []).append(geometry)
                self._labels.append((geometry.topLeft(), drawn.text, colour))
            elif drawn.shape_type == "polygon":
                self._polygons.append(geometry)
            else:
                self._points.append((geometry, colour))
        self._rects_by_colour = [(self._pens[class_id], rects) for class_id, rects in by_class.items()]
        self.update()

    def _label_pixmap(self, text: str, colour: QColor, ratio: float) -> QPixmap:
        key = (text, colour.rgba())
        pixmap = self._label_cache.get(key)
        if pixmap is None:
            font = _label_font()
            metrics = QFontMetricsF(font)
            width, height = metrics.horizontalAdvance(text) + 6, metrics.height() + 3
            # Opaque (no alpha channel): blitting hundreds of tags is then a plain copy, not a blend.
            image = QImage(int(width * ratio) + 1, int(height * ratio) + 1, QImage.Format.Format_RGB32)
            image.setDevicePixelRatio(ratio)
            image.fill(colour)
            painter = QPainter(image)
            painter.setFont(font)
            # A tag in the class colour with white or black text (whichever reads better), as
            # detectors usually draw them: one glyph-cached drawText per label.
            light = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue() > 150
            painter.setPen(QColor(0, 0, 0) if light else QColor(255, 255, 255))
            painter.drawText(QPointF(3, 2 + metrics.ascent()), text)
            painter.end()
            pixmap = QPixmap.fromImage(image)
            self._label_cache[key] = pixmap
        return pixmap

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for polygon, pen, brush in self._polygons:
            painter.setPen(pen)
            painter.setBrush(brush)
            painter.drawPolygon(polygon)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._rects:
            # Outlines as 1-pixel cosmetic lines (the raster engine's fast path; wide pens are stroked
            # as paths, ≈15 ms for 300 boxes): a dark line outside a 2 px class-coloured frame, made of
            # rectangles offset by whole screen pixels (readable on light and dark images alike).
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            pixel = 1.0 / max(painter.worldTransform().m11(), 1e-6)
            painter.setPen(self._frame)
            painter.drawRects([rect.adjusted(-pixel, -pixel, pixel, pixel) for rect in self._rects])
            for pen, rects in self._rects_by_colour:
                painter.setPen(pen)
                painter.drawRects(rects)
                painter.drawRects([rect.adjusted(pixel, pixel, -pixel, -pixel) for rect in rects])
        if not (self._labels or self._points):
            return
        # Labels and keypoints keep their screen size at any zoom: drawn in device coordinates.
        transform = painter.worldTransform()
        ratio = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        painter.save()
        painter.resetTransform()
        for anchor, text, colour in self._labels:
            pixmap = self._label_pixmap(text, colour, ratio)
            corner = transform.map(anchor)
            painter.drawPixmap(QPointF(corner.x() - 1, corner.y() - pixmap.height() / ratio - 1), pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(self._outline)
        for point, colour in self._points:
            painter.setBrush(colour)
            painter.drawEllipse(transform.map(point), 4.0, 4.0)
        painter.restore()


class InferenceCanvas(ImageViewer):
    files_dropped = Signal(list)  # list[str]: local paths (images or folders)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.layer: PredictionLayer | None = None
        self.mask_item: QGraphicsPixmapItem | None = None
        self._built_for: dict[str, Any] | None = None
        self.legend = QLabel(self.viewport())
        self.legend.setStyleSheet("QLabel { background: rgba(20, 22, 26, 200); color: white; border-radius: 4px;"
                                  " padding: 6px; }")
        self.legend.hide()
        self.image_size: tuple[int, int] | None = None
        self.message = QLabel(self.viewport())
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_message(DROP_HINT, level="hint")

    # -- image and overlay ------------------------------------------------------------------------
    def set_image(self, image: QImage) -> None:
        scene = self.scene()
        scene.clear()
        self.layer = None
        self.mask_item = None
        self.legend.hide()
        self._built_for = None
        self._pixmap_item = scene.addPixmap(QPixmap.fromImage(image))
        # The smoothly scaled picture is cached at screen resolution: overlay changes do not rescale it.
        self._pixmap_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.image_size = (image.width(), image.height())
        scene.setSceneRect(QRectF(image.rect()).adjusted(-20, -20, 20, 20))
        self._fit = True
        self.fit()
        if self.message_text() == DROP_HINT:  # the invitation is for an empty canvas: never over a picture
            self.clear_message()

    def clear_image(self) -> None:
        super().clear_image()
        self.layer = None
        self.mask_item = None
        self.legend.hide()
        self._built_for = None
        self.image_size = None

    def set_predictions(self, result: dict[str, Any] | None, raw: dict[str, Any] | None = None) -> None:
        """Show ``result``'s shapes (``raw`` filtered by the sliders).

        The layer for ``raw`` is built once per result; a slider move only changes which of its
        predictions are visible (``filter_predictions`` returns the same dicts it kept).
        """
        source = raw if raw is not None else result
        if source is not self._built_for:
            self._build_overlay(source)
        if result is None or self.layer is None:
            return
        self.layer.show_only({id(item) for key in ("boxes", "masks", "keypoints") for item in result.get(key) or []})

    def _build_overlay(self, result: dict[str, Any] | None) -> None:
        if self.layer is not None:
            self.scene().removeItem(self.layer)
            self.layer = None
        self._built_for = result
        self._show_class_mask(result.get("class_mask") if result else None)
        if result is None:
            return
        if result.get("class_mask"):  # the per-pixel overlay replaces the region polygons
            result = {**result, "masks": []}
        width, height = self.image_size or (result.get("image_size") or [0, 0])[:2]
        # Labels hang above their boxes at screen size; the margin covers them at any sensible zoom.
        margin = max(width, height, 64)
        bounds = QRectF(-margin, -margin, width + 2 * margin, height + 2 * margin)
        self.layer = PredictionLayer([(id(source), shape) for source, shape in sourced_shapes(result)], bounds,
                                     self.viewport().devicePixelRatioF())
        self.layer.setZValue(1.0)  # above the class-mask overlay
        self.scene().addItem(self.layer)

    def _show_class_mask(self, mask: dict[str, Any] | None) -> None:
        if self.mask_item is not None:
            self.scene().removeItem(self.mask_item)
            self.mask_item = None
        self.legend.hide()
        if not mask:
            return
        image = class_mask_image(mask)
        if self.image_size and (image.width(), image.height()) != self.image_size:
            image = image.scaled(*self.image_size)
        self.mask_item = self.scene().addPixmap(QPixmap.fromImage(image))
        self.mask_item.setZValue(0.5)  # over the picture, under boxes and labels
        self.legend.setText("<br>".join(
            f"<span style='color:{QColor(class_colour(area['class_id'])).name() if area['class_id'] else '#bbbbbb'}'>"
            f"■</span> {line}" for area, line in zip(mask.get("areas") or [], legend_lines(mask), strict=True)))
        self.legend.adjustSize()
        self.legend.move(8, 8)
        self.legend.show()

    def legend_text(self) -> list[str]:
        """The legend's lines as shown (class and share of the image), empty without a class mask."""
        return legend_lines(self._built_for.get("class_mask") or {}) if self._built_for and not self.legend.isHidden() \
            else []

    def box_items(self) -> list[DrawnShape]:
        """The boxes drawn now (the ones the sliders filtered out are not)."""
        return [shape for shape in self.prediction_items() if shape.shape_type == "rectangle"]

    def prediction_items(self) -> list[DrawnShape]:
        return list(self.layer.visible) if self.layer is not None else []

    def overlay_labels(self) -> list[str]:
        return [shape.text for shape in self.box_items()]

    def render_overlay(self) -> QImage:
        """The image with its predictions at the image's own resolution (for "Save overlay")."""
        if self.image_size is None:
            return QImage()
        width, height = self.image_size
        image = QImage(width, height, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.scene().render(painter, QRectF(0, 0, width, height), QRectF(0, 0, width, height))
        painter.end()
        return image

    # -- message on the canvas --------------------------------------------------------------------
    def show_message(self, text: str, *, level: str = "error") -> None:
        if text == DROP_HINT and self.image_size is not None:
            self.clear_message()  # "Drop images…" over an image shown would hide it and say the wrong thing
            return
        colour = {"error": ERROR_COLOUR, "warning": WARNING_COLOUR}.get(level)
        if colour:
            style = (f"QLabel {{ background: rgba(20, 22, 26, 215); color: white; border: 2px solid {colour};"
                     " border-radius: 6px; padding: 12px; font-size: 11pt; }")
        else:
            style = "QLabel { color: rgb(200, 204, 210); font-size: 13pt; padding: 12px; }"
        self.message.setStyleSheet(style)
        self.message.setText(text)
        self.message.show()
        self._place_message()

    def clear_message(self) -> None:
        self.message.hide()
        self.message.clear()

    def message_text(self) -> str:
        return self.message.text() if not self.message.isHidden() else ""

    def _place_message(self) -> None:
        area = self.viewport().rect()
        width = min(area.width() - 40, 560)
        self.message.setFixedWidth(max(200, width))
        self.message.adjustSize()
        # Over an image the message sits at the top, leaving the picture visible; alone it is centred.
        top = 16 if self.image_size is not None else (area.height() - self.message.height()) // 2
        self.message.move((area.width() - self.message.width()) // 2, max(8, top))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_message()

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if (mime.hasUrls() and any(url.isLocalFile() for url in mime.urls())) or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit([str(Path(p)) for p in paths])
