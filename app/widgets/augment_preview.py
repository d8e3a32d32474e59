"""The Train page's augmentation section: a preset, the framework's own options, and a preview.

The options are each framework's native ones (``core.augmentation.PRESETS``: timm's
``create_transform`` names, Ultralytics' hyper-parameters, …), so the form is generated from that
table: one field per key, filled with the preset's value; a field the user changes becomes an
override in the job's ``augmentation.options``. Choosing another preset starts again from its values.

The preview shows what the job would train on: the ``augment-preview`` helper process
(``adapters.augment_preview``; this process never imports a framework) draws the samples with the
framework's own augmentation and writes PNGs. It runs from a worker thread (``TaskSlots``: a newer
request cancels the older and kills its process), debounced, only while the preview is visible.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.look import ERROR_COLOUR, HINT_STYLE
from app.workers import ErrorInfo, TaskSlots, TaskState
from core.augmentation import AUGMENTATION_PRESETS, PRESETS, option_kinds
from core.services import ServiceError
from core.services.augmentation import PreviewCancelled, preview_augmentation

PREVIEW_COUNT = 12
COLUMNS = 4
THUMB_SIDE = 112
DEBOUNCE_MS = 400

PRESET_LABELS = {"none": "None: the images as they are", "light": "Light (horizontal flips)",
                 "standard": "Standard: the framework's own recipe", "heavy": "Heavy: stronger recipe"}
# What a light preset means per framework, when it is not "flips only".
LIGHT_LABELS = {"ultralytics": "Light: Ultralytics' default recipe, as before"}
OPTION_LABELS = {
    "scale": "Crop / scale range", "ratio": "Crop aspect range", "hflip": "Horizontal flip", "vflip": "Vertical flip",
    "fliplr": "Horizontal flip", "flipud": "Vertical flip", "color_jitter": "Colour jitter",
    "auto_augment": "Auto-augment policy", "re_prob": "Random erasing", "erasing": "Random erasing",
    "mixup": "Mixup", "cutmix": "CutMix", "label_smoothing": "Label smoothing", "crop_pct": "Validation crop",
    "mosaic": "Mosaic", "copy_paste": "Copy-paste", "hsv_h": "Hue (HSV h)", "hsv_s": "Saturation (HSV s)",
    "hsv_v": "Brightness (HSV v)", "degrees": "Rotation (degrees)", "translate": "Translation",
    "close_mosaic": "No mosaic for last epochs", "crop_scale": "Random-resized-crop area", "zoom": "Zoom range",
}
# Where one name means another thing in a framework.
FRAMEWORK_OPTION_LABELS = {
    "ultralytics": {"scale": "Scale gain (±)", "copy_paste": "Copy-paste (segment)",
                    "erasing": "Random erasing (classify)", "auto_augment": "Auto-augment (classify)"},
    "transformers": {"crop_scale": "Random-resized-crop area (classify, segment)", "zoom": "Zoom range (detect)",
                     "translate": "Translation (detect)", "auto_augment": "Auto-augment (classify)"},
}


# ------------------------------------------------------------------------------------- options


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse(text: str, kinds: set[str]) -> Any:
    """The typed value of a field (empty: null); ValueError names what the field takes."""
    text = text.strip()
    if not text:
        if "null" in kinds:
            return None
        raise ValueError("needs a value")
    if "a list" in kinds:
        try:
            return [float(part) for part in text.split(",")]
        except ValueError:
            raise ValueError("two numbers separated by a comma, e.g. 0.08, 1.0") from None
    if "a number" in kinds:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    return text


class AugmentationOptions(QWidget):
    """Preset combo + the framework's options; ``value()`` is the job's ``augmentation`` mapping."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset = QComboBox()
        self.preset.setObjectName("augmentation_preset")
        for name in AUGMENTATION_PRESETS:
            self.preset.addItem(PRESET_LABELS[name], name)
        self.preset.currentIndexChanged.connect(self._on_preset_change)
        self.fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, str] = {}
        self._framework = ""
        self._form = QFormLayout()
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet(HINT_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        top.addRow("Preset", self.preset)
        layout.addLayout(top)
        layout.addLayout(self._form)
        layout.addWidget(self.empty)
        layout.addStretch(1)

    def current_preset(self) -> str:
        return str(self.preset.currentData())

    def preset_values(self) -> dict[str, Any]:
        return dict(PRESETS.get(self._framework, {}).get(self.current_preset(), {}))

    def set_value(self, framework: str, augmentation: dict[str, Any] | None) -> None:
        """Show ``framework``'s options for the job's ``augmentation`` (preset + overrides)."""
        augmentation = augmentation or {}
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(max(0, self.preset.findData(augmentation.get("preset", "light"))))
        self.preset.blockSignals(False)
        self._framework = framework
        self.preset.setItemText(AUGMENTATION_PRESETS.index("light"),
                                LIGHT_LABELS.get(framework, PRESET_LABELS["light"]))
        self._build_fields({**self.preset_values(), **(augmentation.get("options") or {})})
        self.changed.emit()

    def set_framework(self, framework: str) -> None:
        """Another framework: its own options at the same preset (overrides do not carry over)."""
        if framework != self._framework:
            self.set_value(framework, {"preset": self.current_preset()})

    def _build_fields(self, values: dict[str, Any]) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self.fields = {}
        kinds = option_kinds(self._framework)
        for key in kinds:
            edit = QLineEdit(_text(values.get(key)))
            edit.setObjectName(f"augmentation_{key}")
            edit.setPlaceholderText("off" if "null" in kinds[key] else "")
            edit.setToolTip(f"{key}: {' or '.join(sorted(kinds[key]))} (the framework's own name for it)")
            edit.textChanged.connect(self._on_field_change)
            self.fields[key] = edit
            label = FRAMEWORK_OPTION_LABELS.get(self._framework, {}).get(key) or OPTION_LABELS.get(key, key)
            self._form.addRow(label, edit)
        self.empty.setText("" if kinds else f"{self._framework or 'This framework'} has no augmentation options.")
        self.empty.setVisible(not kinds)
        self._mark()

    def _on_preset_change(self, *_: Any) -> None:
        self._build_fields(self.preset_values())
        self.changed.emit()

    def _on_field_change(self, *_: Any) -> None:
        self._mark()
        self.changed.emit()

    def value(self) -> dict[str, Any]:
        """``{"preset", "options"}``: options only where a field differs from the preset."""
        preset = self.preset_values()
        kinds = option_kinds(self._framework)
        options = {}
        for key, edit in self.fields.items():
            try:
                typed = _parse(edit.text(), kinds[key])
            except ValueError:
                continue  # marked on the field; the config check sees the preset's value
            if typed != preset.get(key):
                options[key] = typed
        return {"preset": self.current_preset(), "options": options}

    def _mark(self) -> None:
        kinds = option_kinds(self._framework)
        self.errors = {}
        for key, edit in self.fields.items():
            try:
                _parse(edit.text(), kinds[key])
            except ValueError as exc:
                self.errors[key] = str(exc)
            edit.setStyleSheet(f"border: 2px solid {ERROR_COLOUR};" if key in self.errors else "")


# ------------------------------------------------------------------------------------- preview


@dataclass
class Thumbnail:
    image: QImage
    caption: str
    source: str


def run_preview_helper(request: dict[str, Any], state: TaskState) -> list[Thumbnail]:
    """Run the preview service for ``request`` (blocking; a worker thread) and load its PNGs.
    Cancelling the task kills the helper; a failure raises with the helper's own last line."""
    folder = Path(tempfile.mkdtemp(prefix="vp-augment-"))
    try:
        try:
            samples = preview_augmentation(request, folder, cancelled=lambda: state.cancelled)
        except PreviewCancelled:
            state.check()
            raise
        except ServiceError as exc:
            raise RuntimeError(str(exc)) from None
        return [Thumbnail(QImage(str(sample.file)), sample.caption, sample.source) for sample in samples]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class AugmentPreview(QWidget):
    """A grid of augmented samples for the request last given to :meth:`set_request`."""

    updated = Signal()  # new thumbnails are shown
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel("Choose a dataset to preview its augmented training images.")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(HINT_STYLE)
        self.shuffle = QPushButton("Other samples")
        self.shuffle.setToolTip("Draw other images with other random augmentations")
        self.shuffle.clicked.connect(self._reshuffle)
        self.shuffle.setEnabled(False)
        head = QHBoxLayout()
        head.addWidget(self.status, 1)
        head.addWidget(self.shuffle, 0, Qt.AlignmentFlag.AlignTop)
        self.grid = QGridLayout()
        self.grid.setSpacing(6)
        self.cells: list[tuple[QLabel, QLabel]] = []
        for number in range(PREVIEW_COUNT):
            picture, caption = QLabel(), QLabel()
            picture.setFixedSize(QSize(THUMB_SIDE, THUMB_SIDE))
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setStyleSheet("background: palette(alternate-base); border-radius: 3px;")
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            caption.setFixedWidth(THUMB_SIDE)
            caption.setStyleSheet(f"{HINT_STYLE} font-size: 11px;")
            cell = QVBoxLayout()
            cell.setSpacing(2)
            cell.addWidget(picture)
            cell.addWidget(caption)
            self.grid.addLayout(cell, number // COLUMNS, number % COLUMNS)
            self.cells.append((picture, caption))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addLayout(self.grid)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.thumbnails: list[Thumbnail] = []
        self.tasks = TaskSlots(self)
        self._request: dict[str, Any] | None = None
        self._shown_request: dict[str, Any] | None = None
        self._seed = 0
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._start)

    def set_request(self, request: dict[str, Any] | None, reason: str = "") -> None:
        """Preview ``request`` (without count and seed), or show ``reason`` when there is none yet."""
        if request == self._request:
            return
        self._request = request
        if request is None:
            self.tasks.cancel("preview")
            self._debounce.stop()
            self.status.setText(reason or "Choose a dataset to preview its augmented training images.")
            self.shuffle.setEnabled(False)
            return
        self._debounce.start()

    def busy(self) -> bool:
        return self._debounce.isActive() or self.tasks.running("preview")

    def _reshuffle(self) -> None:
        self._seed += 1
        self._shown_request = None
        self._start()

    def _start(self) -> None:
        request = self._request
        if request is None or not self.isVisible() or request == self._shown_request:
            return
        full = {**request, "count": PREVIEW_COUNT, "seed": self._seed}
        framework = request.get("framework", "")
        self.status.setText(f"Drawing {PREVIEW_COUNT} training samples with {framework}'s own augmentation…")
        self.tasks.start("preview", lambda state: run_preview_helper(full, state), title="Augmentation preview",
                         on_result=lambda thumbs: self._show(request, thumbs), on_error=self._on_error)

    def _show(self, request: dict[str, Any], thumbnails: list[Thumbnail]) -> None:
        self._shown_request = request
        self.thumbnails = thumbnails
        for number, (picture, caption) in enumerate(self.cells):
            thumb = thumbnails[number] if number < len(thumbnails) else None
            picture.setPixmap(QPixmap.fromImage(thumb.image).scaled(
                THUMB_SIDE, THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
                if thumb else QPixmap())
            picture.setToolTip(thumb.source if thumb else "")
            caption.setText(caption.fontMetrics().elidedText(thumb.caption, Qt.TextElideMode.ElideRight, THUMB_SIDE)
                            if thumb else "")
        self.status.setText(f"{len(thumbnails)} training images as this job would see them ({request.get('framework')}, "
                            f"{request.get('preset')} preset, {request.get('image_size')} px); "
                            "every epoch draws new ones.")
        self.shuffle.setEnabled(True)
        self.updated.emit()

    def _on_error(self, info: ErrorInfo) -> None:
        self.status.setText(f"<span style='color:{ERROR_COLOUR}'>No preview: {info.message}</span>")
        self.shuffle.setEnabled(self._request is not None)
        self.failed.emit(info.message)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._request is not None and self._request != self._shown_request:
            self._debounce.start()

    def hideEvent(self, event: Any) -> None:
        # Hidden (another page, the window closing): no helper keeps running for nobody.
        super().hideEvent(event)
        self._debounce.stop()
        self.tasks.cancel("preview")
