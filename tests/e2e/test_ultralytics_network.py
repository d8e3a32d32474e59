"""A worker training with Ultralytics never touches the network (plots on: fonts, AMP, checks).

The worker is a subprocess: the suite-wide guard (tests/netguard) reaches it as a ``sitecustomize.py``
on its PYTHONPATH (the runner's worker environment keeps existing entries) and records and refuses
every connect or name lookup to a non-loopback address.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.jobs import store as job_store
from core.reporter import NullReporter
from tests.conftest import NETGUARD_LOG, network_attempts_since
from tests.e2e.test_ultralytics_train import FAST_ARGS, _config, _explain, _run
from tests.helpers.datasets_gen import make_dice_detection


def install_network_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The suite-wide guard is on (tests/conftest.py); returns the log offset this test starts from."""
    assert os.environ.get("VP_NETGUARD_LOG") and "netguard" in os.environ.get("PYTHONPATH", "")
    return NETGUARD_LOG.stat().st_size


def test_the_guard_records_and_blocks_outside_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offset = install_network_guard(tmp_path, monkeypatch)
    code = (
        "import socket\n"
        "try:\n    socket.socket().connect(('192.0.2.1', 80))\nexcept OSError as e:\n    print('blocked', e)\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError as e:\n    print('blocked', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["blocked", "blocked"], out
    logged = network_attempts_since(offset)
    assert "192.0.2.1" in logged and "example.com" in logged
    os.truncate(NETGUARD_LOG, offset)  # the attempts were this test's own: they do not fail it


@pytest.mark.slow
def test_segment_with_plots_offline_never_touches_the_network(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = install_network_guard(tmp_path, monkeypatch)
    dataset = make_dice_detection(tmp_path / "dice", n=20, size=64, polygons=True)
    config = _config(dataset, "segment", "yolo11n-seg", framework_args={**FAST_ARGS, "plots": True})
    job_id, status = _run(store, config)
    assert status == "completed", _explain(store, job_id)
    assert network_attempts_since(offset) == "", "the worker tried to reach the network"
    epochs = job_store.metric_rows(store, job_id, kind="epoch")
    assert [row.epoch for row in epochs] == [1, 2]
    values = job_store.metric_values(epochs[-1])
    for name in ("train/seg_loss", "val/map50", "val/mask_map50", "val/mask_map50_95"):
        assert name in values, (name, values)
    # Plots were drawn offline (fonts provisioned) and registered as artifacts.
    from sqlalchemy import select

    from core.db.models import Artifact

    with store.read() as session:
        artifacts = {Path(p).name for p in session.scalars(select(Artifact.path).where(Artifact.job_id == job_id))}
    assert "results.png" in artifacts and any(name.startswith("confusion_matrix") for name in artifacts), artifacts

    from adapters.ultralytics_adapter import UltralyticsAdapter

    best = job_store.latest_checkpoint(store, job_id, "best")
    assert best is not None
    adapter = UltralyticsAdapter(config, tmp_path / "infer", NullReporter())
    adapter.load_checkpoint(Path(best.path), trusted=True)  # core vouches: its DB row has this sha256
    image = sorted((Path(job_store.get_job(store, job_id).output_dir) / "data" / "images" / "train").iterdir())[0]
    out = adapter.run_inference(image, conf=0.0)
    assert out["task"] == "segment" and out["boxes"]
    for mask in out["masks"]:
        assert mask["label"] in ("circle", "square") and all(len(point) == 2 for point in mask["polygon"])
    # The same masks as one class-index PNG of the image's size.
    import io

    import numpy as np
    from PIL import Image

    with_png = adapter.run_inference(image, conf=0.0, mask_png=True)
    assert with_png["mask_png"].startswith(b"\x89PNG")
    mask_image = Image.open(io.BytesIO(with_png["mask_png"]))
    assert mask_image.size == tuple(with_png["image_size"]) and mask_image.mode == "L"
    values = set(np.unique(np.asarray(mask_image)).tolist())
    painted = values - {0}
    assert painted <= {m["class_id"] + 1 for m in with_png["masks"]}  # pixel value = class id + 1
    assert bool(painted) == any(len(m["polygon"]) >= 3 for m in with_png["masks"])
