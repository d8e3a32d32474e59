"""The public repository's CI workflow (.github/workflows/ci.yml) cannot run here (no Windows or macOS
runner): this checks what can be — it is valid YAML of the shape GitHub reads, it runs on Windows,
macOS and Ubuntu, each runner runs the fast suite through the set-up script a user runs there and one
tiny training through the CLI, every file it names exists, and the tiny job is a valid job whose
dataset is there. The tiny job itself is trained for real by tests/e2e (the same model and dataset
kind); here only its config is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
TINY_JOB = ROOT / ".github" / "ci" / "tiny_job.yaml"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return list(job["steps"])


def _runs(workflow: dict[Any, Any], os_condition: str) -> str:
    """The shell text of the steps that run on a runner for which ``os_condition`` holds."""
    return "\n".join(step.get("run", "") for step in _steps(workflow) if os_condition in step.get("if", os_condition))


def test_the_workflow_has_githubs_shape(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    (job,) = workflow["jobs"].values()
    assert set(job["strategy"]["matrix"]["os"]) == {"ubuntu-latest", "windows-latest", "macos-latest"}
    assert job["runs-on"] == "${{ matrix.os }}" and job["strategy"]["fail-fast"] is False
    assert all("uses" in step or "run" in step for step in job["steps"])
    assert any(step.get("uses", "").startswith("actions/checkout@") for step in job["steps"])
    python = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"


def test_each_runner_runs_the_fast_suite_through_its_script(workflow: dict[Any, Any]) -> None:
    assert "scripts\\test.bat --fast" in _runs(workflow, "runner.os == 'Windows'")
    assert "scripts/test.sh --fast" in _runs(workflow, "runner.os != 'Windows'")
    assert "tools/lock_requirements.py" not in _runs(workflow, "")  # no lock by hand: the scripts choose or make it
    assert ".venv/lock-in-use" in _runs(workflow, "always")  # the lock each runner installed, shown


def test_each_runner_trains_the_tiny_job(workflow: dict[Any, Any]) -> None:
    assert ".venv\\Scripts\\vision-platform.exe train .github\\ci\\tiny_job.yaml" in _runs(workflow, "runner.os == 'Windows'")
    assert ".venv/bin/vision-platform train .github/ci/tiny_job.yaml" in _runs(workflow, "runner.os != 'Windows'")
    for step in _steps(workflow):
        if "vision-platform" in step.get("run", "") and " train " in step["run"]:
            assert "VP_HOME" in step.get("env", {}), f"{step['name']}: the job must not use the runner's real data folder"


def test_the_files_it_names_exist() -> None:
    for name in ("scripts/test.sh", "scripts/test.bat", "scripts/setup.sh", "scripts/setup.bat", "tools/lock_requirements.py",
                 ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_the_tiny_job_is_valid_and_small() -> None:
    config = load_config(TINY_JOB)
    assert Path(config.dataset).is_dir() and Path(config.dataset) == (ROOT / "resources" / "sample_data" / "shapes").resolve()
    assert (config.framework, config.model, config.pretrained) == ("timm", "test_resnet", False)
    assert config.epochs <= 2 and config.image_size <= 64
