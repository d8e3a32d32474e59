"""The hyperparameter form, generated from ``JobConfig``'s schema.

Each plain field (number, choice, switch) gets a widget chosen from its type, a range hint from its
constraints and the tooltip from defaults.yaml. Numbers are typed as text on purpose: an out-of-range
value can be entered and is then marked on the field (red frame, message in the tooltip) rather than
silently clamped, and Start stays disabled until it is fixed.
"""

from __future__ import annotations

import typing
from typing import Any

import annotated_types
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QWidget

from app.look import ERROR_COLOUR
from core.config import JobConfig, field_help

# Fields with their own pickers elsewhere in the configurator (or not user-facing).
SPECIAL_FIELDS = frozenset({
    "version", "name", "project", "framework", "task", "model", "pretrained", "weights", "dataset",
    "dataset_format", "split", "device", "framework_args", "augmentation",
})
LABELS = {"batch_size": "Batch size", "learning_rate": "Learning rate", "weight_decay": "Weight decay",
          "image_size": "Image size (px)", "amp": "Mixed precision (AMP)", "workers": "Data workers"}


def _range_text(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
    return ", ".join(parts)


class ConfigForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.widgets: dict[str, QWidget] = {}
        self.kinds: dict[str, str] = {}
        self._base_tips: dict[str, str] = {}
        tips = field_help()
        for name, info in JobConfig.model_fields.items():
            if name in SPECIAL_FIELDS:
                continue
            annotation = info.annotation
            widget: QWidget
            if annotation is bool:
                widget = QCheckBox()
                widget.toggled.connect(self._emit)
                kind = "bool"
            elif typing.get_origin(annotation) is typing.Literal:
                widget = QComboBox()
                widget.addItems([str(a) for a in typing.get_args(annotation)])
                widget.currentTextChanged.connect(self._emit)
                kind = "choice"
            elif annotation in (int, float):
                widget = QLineEdit()
                widget.setPlaceholderText(_range_text(info.metadata))
                widget.textChanged.connect(self._emit)
                kind = annotation.__name__
            else:
                widget = QLineEdit()
                widget.textChanged.connect(self._emit)
                kind = "str"
            widget.setObjectName(f"field_{name}")
            tip = tips.get(name, "")
            limits = _range_text(info.metadata)
            self._base_tips[name] = tip + (f" (allowed: {limits})" if limits else "")
            widget.setToolTip(self._base_tips[name])
            self.widgets[name] = widget
            self.kinds[name] = kind
            self.layout_.addRow(LABELS.get(name, name.replace("_", " ").capitalize()), widget)

    def _emit(self, *_: Any) -> None:
        self.changed.emit()

    def set_values(self, values: dict[str, Any]) -> None:
        for name, widget in self.widgets.items():
            if name not in values:
                continue
            value = values[name]
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            elif isinstance(widget, QLineEdit):
                widget.setText("" if value is None else str(value))
            widget.blockSignals(False)
        self.changed.emit()

    def raw_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The typed values, and errors for text that is not even a number."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, widget in self.widgets.items():
            kind = self.kinds[name]
            if isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                values[name] = widget.currentText()
            elif isinstance(widget, QLineEdit):
                text = widget.text().strip()
                try:
                    values[name] = int(text) if kind == "int" else float(text) if kind == "float" else text
                except ValueError:
                    errors[name] = "must be a whole number" if kind == "int" else "must be a number"
        return values, errors

    def mark_errors(self, errors: dict[str, str]) -> None:
        for name, widget in self.widgets.items():
            message = errors.get(name)
            if message:
                widget.setStyleSheet(f"border: 2px solid {ERROR_COLOUR}; border-radius: 3px;")
                widget.setToolTip(f"⚠ {message}\n\n{self._base_tips[name]}")
            else:
                widget.setStyleSheet("")
                widget.setToolTip(self._base_tips[name])
