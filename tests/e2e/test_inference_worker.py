"""The warm inference worker: one process, model loaded once, clear errors that never kill it."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import config_from_dict
from core.db.engine import open_store
from core.inference import InferenceClient, InferenceError, filter_predictions
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(vp_home: Path, tmp_path: Path) -> tuple[Path, Path]:
    data = make_imagefolder(tmp_path / "data", classes=("red", "green", "blue"), per_class=10, size=32)
    store = open_store()
    config = config_from_dict({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 8,
                               "image_size": 32})
    job_id = job_store.create_job(store, config)
    assert JobRunner(store).run(job_id) == "completed"
    best = job_store.latest_checkpoint(store, job_id, "best")
    assert best is not None
    return Path(best.path), data


@pytest.fixture
def client() -> Iterator[InferenceClient]:
    inference = InferenceClient()
    yield inference
    inference.close()


def png_header_only(path: Path, width: int, height: int) -> Path:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(data)
    return path


def test_warm_worker_predicts_and_survives_bad_inputs(trained: tuple[Path, Path], client: InferenceClient,
                                                     tmp_path: Path) -> None:
    checkpoint, data = trained
    loaded = client.load(checkpoint, framework="timm")
    assert loaded["task"] == "classify" and loaded["class_names"] == ["blue", "green", "red"]
    pid = client._process.pid if client._process else None
    image = sorted((data / "red").iterdir())[0]
    first = client.predict(image)
    assert first["top_k"] and first["top_k"][0]["label"] in {"red", "green", "blue"}
    assert abs(sum(item["confidence"] for item in first["top_k"]) - 1.0) < 1e-4
    # Loading the same checkpoint again is free: the model is still warm in the same process.
    assert client.load(checkpoint, framework="timm") is loaded

    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image")
    with pytest.raises(InferenceError, match="notes.png"):
        client.predict(not_image)
    with pytest.raises(InferenceError, match="60000"):
        client.predict(png_header_only(tmp_path / "wide.png", 60000, 10))
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(b"\xff\xd8" + b"\0" * (11 * 1024 * 1024))
    with pytest.raises(InferenceError, match="MB"):
        client.predict(huge)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image.read_bytes()[:60])
    with pytest.raises(InferenceError):
        client.predict(truncated)
    with pytest.raises(InferenceError, match="checkpoint not found"):
        client.load(tmp_path / "missing.pt", framework="timm")

    # After all of that the same worker still answers.
    again = client.predict(image)
    assert again["top_k"][0]["label"] == first["top_k"][0]["label"]
    assert client._process is not None and client._process.pid == pid
    assert filter_predictions(again, conf=0.0, iou=0.5)["top_k"] == again["top_k"]
