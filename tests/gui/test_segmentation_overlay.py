"""A semantic segmentation on the inference canvas: class-colour overlay pixels, legend with per-class
area, and the mask PNG (pixel = class id) written on export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtGui import QColor, QImage

from core.contracts import class_mask, inference_result


def _segmentation(width: int = 40, height: int = 20) -> dict[str, Any]:
    classes = np.zeros((height, width), dtype=np.uint8)
    classes[:, 20:30] = 1  # a quarter of the image
    classes[:, 30:] = 2  # another quarter
    buffer = io.BytesIO()
    Image.fromarray(classes, mode="L").save(buffer, format="PNG")
    counts = {k: int(v) for k, v in enumerate(np.bincount(classes.ravel()))}
    result = dict(inference_result("segment", elapsed_ms=1.0, image_size=(width, height)))
    result["class_mask"] = class_mask(buffer.getvalue(), (width, height), ["background", "road", "car"], counts)
    return result


def test_class_mask_overlay_legend_and_export(qtbot: Any, tmp_path: Path, shots_dir: Path) -> None:
    from app.look import class_colour
    from app.widgets.inference_canvas import CLASS_MASK_ALPHA, InferenceCanvas
    from core.services.inference import ImagePrediction, export_dice

    canvas = InferenceCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    image = QImage(40, 20, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    canvas.set_image(image)
    result = _segmentation()
    canvas.set_predictions(result)

    assert canvas.legend_text() == ["background: 50.0 %", "road: 25.0 %", "car: 25.0 %"]
    rendered = canvas.render_overlay()
    assert rendered.pixelColor(5, 10) == QColor(0, 0, 0)  # background: the picture untouched
    for x, class_id in ((25, 1), (35, 2)):
        expected = QColor(class_colour(class_id))
        alpha = CLASS_MASK_ALPHA / 255
        pixel = rendered.pixelColor(x, 10)
        for got, want in ((pixel.red(), expected.red()), (pixel.green(), expected.green()),
                          (pixel.blue(), expected.blue())):
            assert abs(got - want * alpha) <= 3, (x, pixel.name(), expected.name())
    canvas.grab().save(str(shots_dir / "segmentation_overlay.png"))

    picture = tmp_path / "street.png"
    Image.new("RGB", (40, 20)).save(picture)
    report = export_dice([ImagePrediction(picture, result)], out_dir=tmp_path / "out")  # type: ignore[list-item]
    [annotation] = report.written
    mask = np.array(Image.open(annotation.with_name(f"{annotation.stem}.mask.png")))
    assert mask.shape == (20, 40) and set(np.unique(mask).tolist()) == {0, 1, 2} and mask[0, 35] == 2
