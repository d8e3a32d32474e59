"""A crafted ``.pt`` whose unpickling writes a sentinel file: it never runs without the user's consent.

Trust is by content (``core.trust``): the sha256 of a checkpoint this app wrote or of an import the
user consented to, never the folder a file sits in. Each test drives the real processes: the
``vision-platform`` executable, and the warm inference worker it starts.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this calls ``exec``: what a hostile checkpoint does (CVE-2025-32434's class of attack)."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.sentinel)!r}, 'w').write('pwned')",)


def craft_checkpoint(path: Path, sentinel: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(sentinel), "epoch": -1}, path)
    return path


def run_cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VP_FAULT"}
    env["VP_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


def an_image(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "one.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    return image


def test_predict_never_unpickles_an_unknown_file_without_trust(vp_home: Path, tmp_path: Path) -> None:
    """matrix row 27, matrix row 28: `predict` refuses a foreign pickle, also when it sits in the app's own
    weights folders (trust is not by folder); with --trust the file's code runs, as --help says."""
    from adapters.ultralytics_models import ultralytics_weights_dir
    from core import paths

    sentinel = tmp_path / "PWNED"
    image = an_image(tmp_path / "images")
    evil = craft_checkpoint(tmp_path / "downloads" / "yolo11n-evil.pt", sentinel)
    for where in (paths.weights_dir(), ultralytics_weights_dir(), paths.runs_dir() / "job_1" / "weights"):
        craft_checkpoint(where / "yolo11n-evil.pt", sentinel)

    for model in (str(evil), "yolo11n-evil.pt", str(paths.runs_dir() / "job_1" / "weights" / "yolo11n-evil.pt")):
        refused = run_cli(vp_home, "predict", model, str(image), "--format", "csv", "--out", str(tmp_path / "out"))
        assert refused.returncode == 2, refused.stderr
        assert "confirm to trust it" in refused.stderr and "--trust" in refused.stderr
        assert "yolo11n-evil.pt" in refused.stderr
        assert not sentinel.exists(), f"the payload ran while loading {model}"

    trusted = run_cli(vp_home, "predict", str(evil), str(image), "--trust", "--format", "csv",
                      "--out", str(tmp_path / "out"))
    assert sentinel.read_text() == "pwned"  # consent means the file's code runs: what the user agreed to
    assert trusted.returncode == 2 and "no model inside" in trusted.stderr


def test_the_inference_worker_loads_only_what_core_vouched_for(vp_home: Path, tmp_path: Path) -> None:
    """matrix row 27: the worker (which never reads the database) refuses an untrusted pickle, and a
    `trusted` request whose sha256 is not the file's content; a safe loader (timm, weights_only) never runs it."""
    from core.files import sha256_file
    from core.inference import InferenceClient, InferenceError

    sentinel = tmp_path / "PWNED"
    evil = craft_checkpoint(tmp_path / "yolo11n-evil.pt", sentinel)
    client = InferenceClient()
    try:
        with pytest.raises(InferenceError, match="confirm to trust it"):
            client.load(evil, framework="ultralytics")
        with pytest.raises(InferenceError, match="confirm to trust it"):
            client.load(evil, framework="ultralytics", trusted=True, sha256="0" * 64)
        with pytest.raises(InferenceError):
            client.load(evil, framework="timm", trusted=True)  # weights_only=True: refused, never executed
        assert not sentinel.exists()
        with pytest.raises(InferenceError, match="no model inside"):
            client.load(evil, framework="ultralytics", trusted=True, sha256=sha256_file(evil))
        assert sentinel.read_text() == "pwned"  # core vouched for exactly this content
    finally:
        client.close()


def test_importing_a_pickle_needs_consent_recorded_by_sha256(vp_home: Path, tmp_path: Path) -> None:
    """matrix row 28: `checkpoint import` refuses a foreign pickle without --trust and copies nothing;
    with it the sha256 is recorded, later loads need no flag, and a changed copy is refused again."""
    from core import paths, trust
    from core.files import sha256_file

    sentinel = tmp_path / "PWNED"
    image = an_image(tmp_path / "images")
    evil = craft_checkpoint(tmp_path / "downloads" / "yolo11n-evil.pt", sentinel)

    refused = run_cli(vp_home, "checkpoint", "import", str(evil))
    assert refused.returncode == 2 and str(evil) in refused.stderr and "can run any code" in refused.stderr
    assert list(paths.weights_dir().iterdir()) == [] and not sentinel.exists()

    imported = run_cli(vp_home, "checkpoint", "import", str(evil), "--trust")
    assert imported.returncode == 0, imported.stderr
    copy = paths.weights_dir() / evil.name
    sha = sha256_file(evil)
    with sqlite3.connect(vp_home / "vision_platform.db") as db:
        keys = [row[0] for row in db.execute("select key from app_settings where key like 'trusted_weights:%'")]
    assert keys == [f"trusted_weights:{sha}"] and trust.read_manifest() == {sha}
    assert not sentinel.exists()  # importing copies and hashes; it never unpickles

    original = copy.read_bytes()
    copy.write_bytes(original + b"\0")  # changed after consent: no longer the content the user trusted
    changed = run_cli(vp_home, "predict", evil.name, str(image), "--format", "csv", "--out", str(tmp_path / "out"))
    assert changed.returncode == 2 and "confirm to trust it" in changed.stderr and not sentinel.exists()

    copy.write_bytes(original)
    consented = run_cli(vp_home, "predict", evil.name, str(image), "--format", "csv", "--out", str(tmp_path / "out"))
    assert sentinel.read_text() == "pwned" and "no model inside" in consented.stderr
