"""The inference canvas: an image with the model's predictions drawn over it; files dropped here.

Built on the dataset viewer (zoom with wheel/+/-/0, pan by dragging, dark-outlined shapes), plus:
labels with confidence, semi-transparent masks, keypoints, a message drawn on the canvas for bad
input or a missing model, and drag and drop of images and folders. Re-filtering (sliders) replaces
only the overlay items; the image stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFontMetricsF,
    QImage,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QLabel, QStyleOptionGraphicsItem, QWidget

from app.look import ERROR_COLOUR, WARNING_COLOUR, class_colour
from app.models.predictions import OverlayShape, sourced_shapes
from app.widgets.image_viewer import ImageViewer, LabelItem, ShapeItem

MASK_ALPHA = 90
DROP_HINT = "Drop images or a folder here, or paste an image (Ctrl+V)"


class PredictionItem(ShapeItem):
    """One drawn prediction; keeps its class and confidence for tests and tooltips."""

    def __init__(self, shape: OverlayShape, colour: QColor) -> None:
        super().__init__(shape, colour)
        self.class_id = shape.class_id
        self.confidence = shape.confidence
        if shape.shape_type == "polygon":
            fill = QColor(colour)
            fill.setAlpha(MASK_ALPHA)
            self.setBrush(fill)
        self.setToolTip(f"{shape.label}: {shape.confidence * 100:.1f} %")
        self._rect = self.path().boundingRect() if shape.shape_type == "rectangle" else None
        self._outline = QPen(QColor(0, 0, 0, 200), 4)
        self._outline.setCosmetic(True)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._rect is None:
            super().paint(painter, option, widget)
            return
        # Boxes: two rectangles (dark outline, class colour) are much cheaper than two path strokes.
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(self._outline)
        painter.drawRect(self._rect)
        painter.setPen(self.pen())
        painter.drawRect(self._rect)


class ScoreLabel(LabelItem):
    """"circle 87 %" above its box. Text outline and its dark halo are built once: up to 300 labels
    repaint on every slider move, and stroking text is the expensive part of painting one."""

    def __init__(self, text: str, colour: QColor) -> None:
        super().__init__(text, colour)
        self._path = QPainterPath()
        self._path.addText(1, -QFontMetricsF(self.font()).descent() - 2, self.font(), text)
        stroker = QPainterPathStroker()
        stroker.setWidth(3)
        stroker.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self._halo = stroker.createStroke(self._path)
        self._halo_colour = QColor(0, 0, 0, 220)
        # Painted once into a pixmap, then blitted: hundreds of labels stay cheap on slider moves.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillPath(self._halo, self._halo_colour)
        painter.fillPath(self._path, self.brush())


class InferenceCanvas(ImageViewer):
    files_dropped = Signal(list)  # list[str]: local paths (images or folders)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.overlay: list[QGraphicsItem] = []
        self._sources: list[tuple[QGraphicsItem, int]] = []
        self._built_for: dict[str, Any] | None = None
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
        self.overlay = []
        self._sources = []
        self._built_for = None
        self._pixmap_item = scene.addPixmap(QPixmap.fromImage(image))
        # The smoothly scaled picture is cached at screen resolution: overlay changes do not rescale it.
        self._pixmap_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.image_size = (image.width(), image.height())
        scene.setSceneRect(QRectF(image.rect()).adjusted(-20, -20, 20, 20))
        self._fit = True
        self.fit()

    def clear_image(self) -> None:
        super().clear_image()
        self.overlay = []
        self._sources = []
        self._built_for = None
        self.image_size = None

    def set_predictions(self, result: dict[str, Any] | None, raw: dict[str, Any] | None = None) -> None:
        """Show ``result``'s shapes (``raw`` filtered by the sliders).

        The items of ``raw`` are built once per result; a slider move only shows or hides them,
        so re-filtering 300 boxes costs a visibility flag each, not new items and new text paths.
        """
        source = raw if raw is not None else result
        if source is not self._built_for:
            self._build_overlay(source)
        if result is None:
            return
        kept = {id(item) for key in ("boxes", "masks", "keypoints") for item in result.get(key) or []}
        for item, source_id in self._sources:
            item.setVisible(source_id in kept)

    def _build_overlay(self, result: dict[str, Any] | None) -> None:
        scene = self.scene()
        for item in self.overlay:
            scene.removeItem(item)
        self.overlay = []
        self._sources = []
        self._built_for = result
        if result is None:
            return
        for source, shape in sourced_shapes(result):
            colour = class_colour(shape.class_id)
            item = PredictionItem(shape, colour)
            item.setVisible(False)
            scene.addItem(item)
            self.overlay.append(item)
            self._sources.append((item, id(source)))
            if shape.shape_type == "rectangle":
                label = ScoreLabel(f"{shape.label} {shape.confidence * 100:.0f} %", colour)
                rect = item.path().boundingRect()
                label.setPos(rect.left(), rect.top())
                label.setVisible(False)
                scene.addItem(label)
                self.overlay.append(label)
                self._sources.append((label, id(source)))

    def box_items(self) -> list[PredictionItem]:
        """The boxes drawn now (hidden ones are filtered out by the sliders)."""
        return [item for item in self.prediction_items() if item.shape_type == "rectangle"]

    def prediction_items(self) -> list[PredictionItem]:
        return [item for item in self.overlay if isinstance(item, PredictionItem) and item.isVisible()]

    def overlay_labels(self) -> list[str]:
        return [item.text() for item in self.overlay if isinstance(item, LabelItem) and item.isVisible()]

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
