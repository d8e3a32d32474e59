"""A worker training with Ultralytics never touches the network (plots on: fonts, AMP, checks).

The worker is a subprocess, so the guard is a ``sitecustomize.py`` on its PYTHONPATH (the runner's
``worker_env`` keeps existing entries): it records and refuses every connect or name lookup to a
non-loopback address.
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
from tests.e2e.test_ultralytics_train import FAST_ARGS, _config, _explain, _run
from tests.helpers.datasets_gen import make_dice_detection

GUARD_SOURCE = '"""A ``sitecustomize`` that blocks and records non-loopback network use in a worker process.\n\nTests put a folder holding this file (as ``sitecustomize.py``) on PYTHONPATH for the worker and set\n``VP_NET_GUARD_LOG``; every attempt to reach or resolve a non-loopback address is appended to that\nfile and fails, so a test can assert "no attempts" and a stray download cannot hang.\n"""\n\nfrom __future__ import annotations\n\nimport os\nimport socket\nfrom typing import Any\n\n_LOG = os.environ.get("VP_NET_GUARD_LOG")\n_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}\n\n\ndef _is_loopback(host: Any) -> bool:\n    text = host.decode() if isinstance(host, bytes) else str(host)\n    return text in _LOOPBACK_NAMES or text.startswith("127.")\n\n\ndef _record(what: str) -> None:\n    if _LOG:\n        with open(_LOG, "a", encoding="utf-8") as handle:\n            handle.write(f"{os.getpid()} {what}\\n")\n\n\nif _LOG:\n    _connect = socket.socket.connect\n    _connect_ex = socket.socket.connect_ex\n    _getaddrinfo = socket.getaddrinfo\n\n    def _check(address: Any) -> None:\n        if isinstance(address, tuple) and address and not _is_loopback(address[0]):\n            _record(f"connect {address!r}")\n            raise OSError(101, f"network blocked by the test guard: {address!r}")\n\n    def connect(self: socket.socket, address: Any) -> None:\n        _check(address)\n        _connect(self, address)\n\n    def connect_ex(self: socket.socket, address: Any) -> int:\n        _check(address)\n        return _connect_ex(self, address)\n\n    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:\n        if host is not None and not _is_loopback(host):\n            _record(f"getaddrinfo {host!r}")\n            raise socket.gaierror(socket.EAI_NONAME, f"name lookup blocked by the test guard: {host!r}")\n        return _getaddrinfo(host, *args, **kwargs)\n\n    socket.socket.connect = connect  # type: ignore[method-assign]\n    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]\n    socket.getaddrinfo = getaddrinfo\n'


def install_network_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the guard on PYTHONPATH for subprocesses; returns the (empty) attempts file."""
    folder = tmp_path / "netguard"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(GUARD_SOURCE, encoding="utf-8")
    attempts = tmp_path / "net_attempts.log"
    attempts.write_text("", encoding="utf-8")
    existing = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(folder), existing) if p))
    monkeypatch.setenv("VP_NET_GUARD_LOG", str(attempts))
    return attempts


def test_the_guard_records_and_blocks_outside_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = install_network_guard(tmp_path, monkeypatch)
    code = (
        "import socket\n"
        "try:\n    socket.socket().connect(('192.0.2.1', 80))\nexcept OSError as e:\n    print('blocked', e)\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError as e:\n    print('blocked', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["blocked", "blocked"], out
    logged = attempts.read_text(encoding="utf-8")
    assert "192.0.2.1" in logged and "example.com" in logged


@pytest.mark.slow
def test_segment_with_plots_offline_never_touches_the_network(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = install_network_guard(tmp_path, monkeypatch)
    dataset = make_dice_detection(tmp_path / "dice", n=20, size=64, polygons=True)
    config = _config(dataset, "segment", "yolo11n-seg", framework_args={**FAST_ARGS, "plots": True})
    job_id, status = _run(store, config)
    assert status == "completed", _explain(store, job_id)
    assert attempts.read_text(encoding="utf-8") == "", "the worker tried to reach the network"
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
    adapter.load_checkpoint(Path(best.path))
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
