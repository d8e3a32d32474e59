"""Pure helpers of core.tracking (no MLflow store needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.tracking.mlflow_logger import (
    MAX_PARAM_VALUE_LENGTH,
    default_tracking_uri,
    flatten_params,
    metric_key,
    metric_values_from_row,
    params_from_config_yaml,
    tracking_uri,
)

ROOT = Path(__file__).resolve().parents[3]


def test_flatten_params_nested_lists_and_long_values() -> None:
    flat = flatten_params({"a": 1, "split": {"ratio": 0.8, "seed": 42}, "aug": [1, 2], "empty": {}, "n": None, "long": "x" * 9000})
    assert flat["a"] == "1"
    assert flat["split.ratio"] == "0.8"
    assert flat["split.seed"] == "42"
    assert flat["aug"] == "[1, 2]"
    assert flat["empty"] == "{}"
    assert flat["n"] == ""
    assert len(flat["long"]) == MAX_PARAM_VALUE_LENGTH


def test_params_from_config_yaml_handles_bad_yaml() -> None:
    assert params_from_config_yaml("epochs: 3\nsplit:\n  ratio: 0.7\n") == {"epochs": "3", "split.ratio": "0.7"}
    assert params_from_config_yaml("{not yaml: [") == {}
    assert params_from_config_yaml(None) == {}


def test_metric_values_prefer_the_json_over_original_columns() -> None:
    values = {"train/loss": 0.5, "lr": 0.01}
    # The runner copies train/loss into the loss column too: it must not become a second series.
    assert metric_values_from_row(0.5, None, 0.01, json.dumps(values)) == values
    # Rows of the original code, without JSON, fall back to the columns under their original names.
    assert metric_values_from_row(0.5, 0.9, 0.01, None) == {"loss": 0.5, "accuracy": 0.9, "lr": 0.01}


def test_step_metrics_get_a_prefix_epoch_metrics_keep_their_name() -> None:
    assert metric_key("train/loss", "step") == "step/train/loss"
    assert metric_key("train/loss", "epoch") == "train/loss"


def test_tracking_uri_precedence(vp_home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.settings import Settings

    assert tracking_uri(Settings()) == default_tracking_uri() == f"sqlite:///{vp_home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking_uri(Settings()) == "http://tracking:5000"
    assert tracking_uri(Settings(mlflow_tracking_uri="sqlite:////x.db")) == "sqlite:////x.db"


def test_importing_tracking_and_storage_does_not_import_mlflow_or_boto3() -> None:
    code = (
        "import sys, core.tracking, core.storage, core.tracking.cli, core.storage.cli;"
        "bad = [m for m in ('mlflow', 'boto3', 'botocore', 'keyring') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
