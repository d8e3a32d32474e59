from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, JobConfig, config_from_dict, defaults, field_help, load_config


def test_defaults_yaml_is_complete_and_valid(tmp_path: Path) -> None:
    data = defaults()
    data["dataset"] = str(tmp_path)
    config = JobConfig.model_validate(data)
    assert set(data) == set(JobConfig.model_fields)
    assert config.split.strategy == "auto"


def test_every_key_has_a_tooltip() -> None:
    help_text = field_help()
    for key in JobConfig.model_fields:
        assert help_text.get(key), f"defaults.yaml lacks a comment for {key}"
    assert "Fraction of images" in help_text["split.ratio"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("dataset: data\nepohcs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown key 'epohcs'" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_type_and_range_are_named() -> None:
    with pytest.raises(ConfigError, match="key 'epochs'"):
        config_from_dict({"dataset": "x", "epochs": "many"})
    with pytest.raises(ConfigError, match="key 'split.ratio'"):
        config_from_dict({"dataset": "x", "split": {"ratio": 1.5}})
    with pytest.raises(ConfigError, match="key 'device'"):
        config_from_dict({"dataset": "x", "device": "gpu please"})
    with pytest.raises(ConfigError, match="required key 'dataset'"):
        config_from_dict({})


def test_relative_paths_resolve_against_the_yaml_and_round_trip(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "job.yaml"
    path.write_text("dataset: data\nepochs: 3\nsplit: {seed: 7}\nframework_args: {mosaic: 0.0}\n")
    config = load_config(path)
    assert config.dataset == str((tmp_path / "data").resolve())
    assert config.split.seed == 7 and config.split.ratio == 0.8
    again = tmp_path / "again.yaml"
    again.write_text(config.to_yaml())
    assert load_config(again) == config
