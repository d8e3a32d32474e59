"""Frameworks described by their adapters: the real helper's declarations drive config checks,
preflight (before a job is queued) and the framework of a loose weights file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import config_from_dict
from core.frameworks import (
    catalog_for,
    check_config,
    declared_catalog,
    framework_for_file,
    frameworks_for_file,
    listed_framework,
)


def test_every_registered_adapter_declares_itself() -> None:
    catalog = declared_catalog()
    assert list(catalog) == ["timm", "ultralytics", "transformers"]
    for info in catalog.values():
        assert info.error is None
        assert info.tasks and set(info.default_models or {}) == set(info.tasks)
        assert info.honoured_keys and info.checkpoint_patterns
        assert set(info.inference_output or {}) == set(info.tasks)
    assert catalog["transformers"].families("segment") == ("segformer-scratch",)
    assert {"layers", "hidden_size"} <= set(catalog["transformers"].framework_args_defaults or {})


@pytest.mark.parametrize("framework", ["ultralytics", "transformers"])
def test_default_models_are_offered(framework: str) -> None:
    info = listed_framework(framework)
    for task in info.tasks:
        assert info.offers_model(info.default_model(task) or ""), task


def _config(tmp_path: Path, **values: object) -> object:
    return config_from_dict({"dataset": str(tmp_path), **values})


def test_unknown_framework_task_and_model_say_what_is_available(tmp_path: Path) -> None:
    catalog = declared_catalog()
    [(severity, message)] = check_config(_config(tmp_path, framework="timn"), catalog)  # type: ignore[arg-type]
    assert severity == "error" and "did you mean 'timm'" in message and "transformers" in message
    [(_, message)] = check_config(_config(tmp_path, framework="timm", task="detect"), catalog)  # type: ignore[arg-type]
    assert "timm does not train the task 'detect'" in message and "ultralytics, transformers" not in message
    assert "detect is trained by transformers, ultralytics" in message
    config = _config(tmp_path, framework="transformers", task="segment", model="segformer-scrach")
    [(_, message)] = check_config(config, catalog_for(config))  # type: ignore[arg-type]
    assert "offers no model 'segformer-scrach'" in message and "did you mean 'segformer-scratch'" in message


def test_ignored_keys_warn_and_misleading_ones_fail(tmp_path: Path) -> None:
    catalog = declared_catalog()
    config = _config(tmp_path, framework="timm", model="resnet18", workers=2, framework_args={"drop_rate": 0.2})
    problems = check_config(config, catalog)  # type: ignore[arg-type]
    assert [p[0] for p in problems] == ["warning"]  # timm honours workers: the loader processes of a stream
    assert "'framework_args'" in problems[0][1] and "'workers'" not in problems[0][1]
    assert check_config(_config(tmp_path, framework="transformers", model="vit-scratch", workers=2),
                        catalog) == []  # type: ignore[arg-type]


PREFLIGHT_PROBE = """
import json, sys
from core.config import config_from_dict
from core.jobs.preflight import preflight
config = config_from_dict({"dataset": sys.argv[1], "framework": "transformers", "task": "classify",
                           "model": "google/vit-not-cached", "pretrained": True})
problems = preflight(config)
print(json.dumps({"problems": [[p.severity, p.message] for p in problems],
                  "imported": sorted(m for m in ("torch", "transformers") if m in sys.modules)}))
"""


def test_preflight_fails_before_queueing_without_importing_a_framework(tmp_path: Path) -> None:
    """In a fresh process (this one may have imported torch for other tests): preflight refuses the
    uncached model without importing torch or transformers itself (its helper child does)."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PREFLIGHT_PROBE, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [severity for severity, _ in report["problems"]] == ["error"]
    assert "vision-platform weights download transformers google/vit-not-cached" in report["problems"][0][1]
    assert report["imported"] == []


def test_checkpoint_files_are_recognised_by_declared_patterns() -> None:
    catalog = declared_catalog()
    assert framework_for_file("/runs/7/weights/best/model.safetensors", catalog) == "transformers"
    assert framework_for_file("/x/yolo11n-seg.pt", catalog) == "ultralytics"
    assert framework_for_file("/x/resnet18.pth", catalog) == "timm"
    assert framework_for_file("/x/notes.txt", catalog) is None
    assert frameworks_for_file("/x/best/model.safetensors", catalog) == ["transformers", "timm"]
