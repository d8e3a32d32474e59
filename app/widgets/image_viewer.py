"""A large image view with its annotations: boxes, polygons, circles, points, lines, labels.

An object drawn in several parts (labelme shapes with one label and group_id) is one item with one
label, as every converter and count treats it.

Zoom (wheel, +/-, 0 = fit) and pan (drag) are QGraphicsView's; arrow keys ask for the next or
previous image. Shapes are drawn twice (a dark wide stroke under the class colour) so they read on
light and dark images alike; pens are cosmetic so lines stay thin at any zoom.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.look import class_colour
from core.datasets.model import group_instances

POINT_RADIUS = 4.0


def shape_path(shape: Any) -> QPainterPath:
    """The outline of one annotation in image pixel coordinates."""
    path = QPainterPath()
    points = [QPointF(float(x), float(y)) for x, y in shape.points]
    kind = shape.shape_type
    if kind == "rectangle" and len(points) >= 2:
        path.addRect(QRectF(points[0], points[1]).normalized())
    elif kind == "circle" and len(points) >= 2:
        centre, edge = points[0], points[1]
        radius = ((edge.x() - centre.x()) ** 2 + (edge.y() - centre.y()) ** 2) ** 0.5
        path.addEllipse(centre, radius, radius)
    elif kind == "point" and points:
        path.addEllipse(points[0], POINT_RADIUS, POINT_RADIUS)
    elif kind == "polygon" and len(points) >= 3:
        path.addPolygon(QPolygonF(points))
        path.closeSubpath()
    elif points:  # line, linestrip, mask outlines and anything degenerate: an open polyline
        path.addPolygon(QPolygonF(points))
    return path


def parts_path(parts: Any) -> QPainterPath:
    """The outlines of an object's parts as one path (each part a closed subpath)."""
    path = QPainterPath()
    for part in parts:
        path.addPath(shape_path(part))
    return path


class ShapeItem(QGraphicsPathItem):
    """One object: a shape, or the parts of a labelme group (same label and group_id) drawn as one.
    ``label``, ``shape_type``, ``points`` (the first part's) and ``parts`` are kept for tests and tooltips."""

    def __init__(self, shape: Any, colour: QColor, parts: Any = None) -> None:
        parts = list(parts) if parts else [shape]
        super().__init__(parts_path(parts))
        self.label: str = shape.label
        self.shape_type: str = shape.shape_type
        self.points: list[tuple[float, float]] = [(float(x), float(y)) for x, y in shape.points]
        self.parts: list[list[tuple[float, float]]] = [[(float(x), float(y)) for x, y in p.points] for p in parts]
        self.colour = colour
        pen = QPen(colour, 2)
        pen.setCosmetic(True)
        self.setPen(pen)
        fill = QColor(colour)
        fill.setAlpha(45 if shape.shape_type in ("polygon", "circle") else 0)
        if shape.shape_type == "point":
            fill.setAlpha(255)
        self.setBrush(QBrush(fill))
        pieces = f", {len(parts)} parts" if len(parts) > 1 else ""
        self.setToolTip(f"{shape.label} ({shape.shape_type}{pieces})")

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        outline = QPen(QColor(0, 0, 0, 200), 4)
        outline.setCosmetic(True)
        painter.setPen(outline)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        painter.setPen(self.pen())
        painter.setBrush(self.brush())
        painter.drawPath(self.path())


class LabelItem(QGraphicsSimpleTextItem):
    """A class name drawn at a fixed screen size next to its shape."""

    def __init__(self, text: str, colour: QColor, parent: QGraphicsItem | None = None) -> None:
        super().__init__(text, parent)
        font = QFont()
        font.setBold(True)
        self.setFont(font)
        self.setBrush(colour)
        pen = QPen(QColor(0, 0, 0, 220), 3)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)

    def boundingRect(self) -> QRectF:
        # Drawn above its anchor (the shape's top-left corner), outside the shape.
        rect = super().boundingRect()
        return rect.translated(0, -rect.height()).adjusted(-3, -3, 3, 3)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        # Dark halo first, then the coloured text: readable on any background.
        path = QPainterPath()
        path.addText(1, -QFontMetricsF(self.font()).descent() - 2, self.font(), self.text())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.strokePath(path, self.pen())
        painter.fillPath(path, self.brush())


class ImageViewer(QGraphicsView):
    next_requested = Signal()
    previous_requested = Signal()
    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor(40, 42, 46))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pixmap_item: QGraphicsPixmapItem | None = None
        self._fit = True

    def shape_items(self) -> list[ShapeItem]:
        return [item for item in self.scene().items() if isinstance(item, ShapeItem)]

    def label_items(self) -> list[LabelItem]:
        return [item for item in self.scene().items() if isinstance(item, LabelItem)]

    def show_image(self, image: QImage, shapes: list[Any], class_names: list[str]) -> None:
        scene = self.scene()
        scene.clear()
        self._pixmap_item = scene.addPixmap(QPixmap.fromImage(image))
        colour_index = {name: i for i, name in enumerate(class_names)}
        for instance in group_instances(list(shapes)):  # one item and one label per object, not per part
            colour = class_colour(colour_index.get(instance.label, len(colour_index)))
            item = ShapeItem(instance.parts[0], colour, instance.parts)
            scene.addItem(item)
            label = LabelItem(instance.label, colour)
            rect = item.path().boundingRect()
            label.setPos(rect.left(), rect.top())
            scene.addItem(label)
        scene.setSceneRect(QRectF(image.rect()).adjusted(-20, -20, 20, 20))
        self._fit = True
        self.fit()

    def clear_image(self) -> None:
        self.scene().clear()
        self._pixmap_item = None

    def fit(self) -> None:
        if self._pixmap_item is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            self._fit = True

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        if 0.02 < current * factor < 64:
            self.scale(factor, factor)
            self._fit = False

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.0015 ** event.angleDelta().y())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.next_requested.emit()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_PageUp):
            self.previous_requested.emit()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom(0.8)
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_Escape:
            self.close_requested.emit()
        else:
            super().keyPressEvent(event)
