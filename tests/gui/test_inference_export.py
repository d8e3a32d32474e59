"""The Inference page's "Export all (batch)": one DICE JSON beside every predicted image, at the
sliders' values, through the same export service as ``vision-platform predict``; a JSON that is
already there (maybe the user's own annotations) is kept unless overwriting is asked for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gui.test_inference_canvas import classifier, drop, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_export_all_writes_dice_json_beside_each_image(page: Any, classifier: tuple[int, Path],  # noqa: F811
                                                       qtbot: Any, tmp_path: Path) -> None:
    _job_id, data = classifier
    folder = tmp_path / "batch"
    folder.mkdir()
    for source in sorted((data / "red").iterdir())[:2] + sorted((data / "blue").iterdir())[:2]:
        shutil.copy(source, folder / f"{source.parent.name}_{source.name}")
    images = sorted(folder.iterdir())
    mine = images[0].with_suffix(".json")
    mine.write_text('{"shapes": [], "note": "my own annotation"}')
    images = [p for p in images if p.suffix == ".png"]

    drop(page.canvas, [folder])
    qtbot.waitUntil(page.batch_finished, timeout=60_000)
    assert page.export_all_button.isVisible() and set(page.raw) == set(images)
    page.conf_slider.setValue(0)
    page.export_all()
    qtbot.waitUntil(lambda: page.last_export is not None, timeout=20_000)
    report = page.last_export
    assert report.skipped == [mine] and sorted(report.written) == [p.with_suffix(".json") for p in images[1:]]
    assert json.loads(mine.read_text())["note"] == "my own annotation"
    for image in images[1:]:
        document = json.loads(image.with_suffix(".json").read_text())
        top1 = page.raw[image]["top_k"][0]["label"]
        assert document["imagePath"] == image.name and document["flags"][top1] is True
        assert sum(document["flags"].values()) == 1 and len(document["flags"]) == 3  # conf 0: every class
        assert (document["imageWidth"], document["imageHeight"]) == (32, 32)

    page.conf_slider.setValue(100)  # nothing reaches 1.0: only the top-1 class stays
    page.export_all(overwrite=True)
    qtbot.waitUntil(lambda: page.last_export is not None, timeout=20_000)
    assert sorted(page.last_export.written) == [p.with_suffix(".json") for p in images]
    assert all(len(json.loads(p.with_suffix(".json").read_text())["flags"]) == 1 for p in images)
