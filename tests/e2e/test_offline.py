"""The app never phones home: a real `vision-platform train` with MLflow tracking on makes no
connection and no name lookup outside this machine.

MLflow switches its usage telemetry off by itself under pytest or CI (it looks for PYTEST_CURRENT_TEST,
CI, …), which would hide the bug from every other test: this one runs the CLI with those variables
removed, as a user's terminal has it, and with the network guard (tests/netguard) logging attempts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import NETGUARD_LOG, ROOT, network_attempts_since
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow

# What MLflow (and libraries like it) read as "a test or CI run: stay quiet" or as an opt-out.
CI_OR_OPT_OUT = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
                 "BUILDKITE", "TF_BUILD", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


def _user_terminal_env(vp_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CI_OR_OPT_OUT}
    env["VP_HOME"] = str(vp_home)
    return env


def test_a_tracked_training_run_never_leaves_the_machine(vp_home: Path, tmp_path: Path) -> None:
    data = make_imagefolder(tmp_path / "data", classes=("red", "blue"), per_class=6, size=32)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 4,
                                   "image_size": 32}))
    offset = NETGUARD_LOG.stat().st_size
    result = subprocess.run([sys.executable, "-m", "vision_platform", "train", str(job)], cwd=str(ROOT),
                            env=_user_terminal_env(vp_home), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (vp_home / "mlflow.db").is_file(), "the run was not tracked in MLflow"
    assert network_attempts_since(offset) == ""
