"""`vision-platform selftest`: one line per check, a real 1-epoch training through a worker and an
inference on its checkpoint; a failing check makes the exit status non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.selftest import FAIL, PASS, device_result

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ["versions", "devices", "data dir", "keyring", "mlflow", "s3", "qt platform", "training", "inference"]


def _selftest(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VP_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "vision_platform", "selftest", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def test_no_gpu_is_not_a_failure() -> None:
    cpu = {"id": "cpu", "name": "CPU", "memory_bytes": None, "matmul": {"ok": True}}
    result = device_result({"torch": "2", "cuda": None, "devices": [cpu]})
    assert result.status == PASS and "no GPU (CPU only)" in result.detail


def test_a_gpu_that_cannot_compute_fails() -> None:
    cpu = {"id": "cpu", "name": "CPU", "memory_bytes": None, "matmul": {"ok": True}}
    gpu = {"id": "cuda:0", "name": "Some GPU", "memory_bytes": 8 * 2**30,
           "matmul": {"ok": False, "error": "CUDA error: no kernel image is available"}}
    result = device_result({"torch": "2", "cuda": "12.8", "devices": [cpu, gpu]})
    assert result.status == FAIL and "cuda:0 Some GPU 8.0 GiB matmul FAILED (CUDA error" in result.detail


def test_unwritable_data_dir_fails_with_non_zero_exit(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data dir should be")
    done = _selftest(blocker, "--no-train")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert lines["FAIL  data dir"].startswith("FAIL  data dir: cannot write in the data dir")
    assert "PASS  versions" in lines


@pytest.mark.slow
def test_selftest_trains_and_predicts(tmp_path: Path) -> None:
    done = _selftest(tmp_path / "home", "--json")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert [check["name"] for check in report["checks"]] == CHECKS
    assert report["ok"] and all(check["status"] == PASS for check in report["checks"])
    by_name = {check["name"]: check["detail"] for check in report["checks"]}
    assert "1 of 1 images predicted" in by_name["inference"]
    # The training ran in a throw-away data dir: the user's has no job from it.
    assert not (tmp_path / "home" / "runs" / "job_1").exists()
