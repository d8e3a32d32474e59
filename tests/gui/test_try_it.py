"""First run: the empty Datasets page's "Try it" button registers the shipped sample dataset, trains a
tiny model on it through the window's real job queue, then opens the Inference page with that model's
prediction on one of the sample's images."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow




def test_try_it_trains_on_the_sample_and_opens_the_inference_canvas(window: Any, store: Any, queue: Any,
                                                                    qtbot: Any, vp_home: Any) -> None:
    from core.samples import TRY_IT_NAME
    from core.services.jobs import job_detail

    page = window.datasets_page
    assert page.stack.currentWidget() is page.empty and page.try_button.isVisible()
    shown: list[int] = []
    failures: list[str] = []
    qtbot.mouseClick(page.try_button, qtbot_left_button())
    run = page.sample_run
    run.model_shown.connect(shown.append)
    run.failed.connect(failures.append)
    qtbot.waitUntil(lambda: bool(shown or failures), timeout=180_000)
    assert not failures, failures
    job_id = shown[0]

    # The sample is a registered dataset of the project, copied into the data dir.
    dataset = window.state.dataset
    assert dataset is not None and dataset.info.path.startswith(str(vp_home))
    assert sorted(dataset.index.class_names) == ["circle", "square", "triangle"]
    detail = job_detail(store, job_id)
    assert detail.name == TRY_IT_NAME and detail.status == "completed"

    inference = window.pages["inference"]
    assert window.current_page() == "inference"
    qtbot.waitUntil(lambda: inference.current is not None and inference.current in inference.raw, timeout=120_000)
    result = inference.raw[inference.current]
    assert inference.current.parent.name in {"circle", "square", "triangle"}
    assert result["task"] == "classify" and result["top_k"]
    assert {score["label"] for score in result["top_k"]} <= {"circle", "square", "triangle"}


def qtbot_left_button() -> Any:
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
