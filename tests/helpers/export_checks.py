"""Checks every export test makes: the CLI's export of a trained job, its records, and that the exported
ONNX file predicts in the inference worker what the checkpoint predicts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from core.exports import MATCH_IOU, card_path
from core.inference import InferenceClient
from tests.e2e.test_timm_training import run_cli

CARD_KEYS = {"task", "input", "normalisation", "class_names", "outputs", "post_processing", "source_sha256", "parity"}


def export_via_cli(home: Path, job_id: int, fmt: str, *extra: str) -> dict[str, Any]:
    """``vision-platform export JOB --format FMT --json``: verified, file and card written, rows recorded."""
    result = run_cli("export", str(job_id), "--format", fmt, "--json", *extra, home=home, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    file = Path(answer["file"])
    assert file.is_file() and card_path(file).is_file()
    card = json.loads(card_path(file).read_text())
    assert CARD_KEYS <= set(card), set(card)
    assert card["parity"] == answer["parity"] and card["parity"]["verified"], card["parity"]
    if fmt == "onnx":
        assert card["opset"] >= 17
    assert f"exports/{file.name}" in answer["mlflow_artifacts"], answer
    assert len(answer["upload_ids"]) == 2
    return answer


def db_rows(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "vision_platform.db") as connection:
        return list(connection.execute(sql, params))


def assert_recorded(home: Path, job_id: int, files: list[Path]) -> None:
    """Artifact rows (file + card) and outbox rows (key under the job's checkpoints/…/exports/) per file."""
    artifacts = {Path(p) for (p,) in db_rows(home, "select path from artifacts where job_id = ? and kind like "
                                                   "'export:%'", job_id)}
    assert artifacts == {*files, *(card_path(f) for f in files)}
    keys = {k for (k,) in db_rows(home, "select key from uploads where job_id = ?", job_id)}
    assert {f"checkpoints/projects/1/jobs/{job_id}/exports/{f.name}" for f in files} <= keys


def val_images(home: Path, job_id: int, limit: int = 4) -> list[Path]:
    data = json.loads((home / "runs" / f"job_{job_id}" / "val_predictions.json").read_text())
    return [Path(item["path"]) for item in data["items"]][:limit]


def _boxes(result: dict[str, Any]) -> list[tuple[int, list[float], float]]:
    return [(b["class_id"], [b["x1"], b["y1"], b["x2"], b["y2"]], b["confidence"]) for b in result["boxes"]
            if b["confidence"] >= 0.005]


def _iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def assert_same_predictions(checkpoint: Path, exported: Path, framework: str, task: str, images: list[Path]) -> int:
    """The inference worker gives the same top-1 / boxes for the checkpoint and the exported file;
    returns how many boxes (or images) were compared."""
    reference, other = InferenceClient(), InferenceClient()
    compared = 0
    try:
        reference.load(checkpoint, framework=framework, trusted=True, device="cpu", task=task)
        loaded = other.load(exported, framework=framework, device="cpu", task=task)
        assert loaded["task"] == task
        for image in images:
            ref, got = reference.predict(image), other.predict(image)
            if task == "classify":
                assert ref["top_k"][0]["class_id"] == got["top_k"][0]["class_id"], (image, ref, got)
                compared += 1
                continue
            ref_boxes, got_boxes = _boxes(ref), _boxes(got)
            for class_id, box, score in ref_boxes:
                assert any(c == class_id and _iou(box, b) >= MATCH_IOU and abs(s - score) < 0.01
                           for c, b, s in got_boxes), (image, box, got_boxes)
            compared += len(ref_boxes)
    finally:
        reference.close()
        other.close()
    return compared
