"""The augmentation presets and options (core.augmentation) and their place in the job config."""

from __future__ import annotations

import pytest

from core.augmentation import AUGMENTATION_PRESETS, PRESETS, augmentation_options, option_kinds
from core.config import ALL_CONFIG_KEYS, ConfigError, JobConfig, config_from_dict, defaults, field_help
from core.frameworks import FrameworkInfo, check_config


def test_every_framework_preset_has_the_same_keys() -> None:
    for framework, presets in PRESETS.items():
        assert tuple(presets) == AUGMENTATION_PRESETS, framework
        keys = {name: set(options) for name, options in presets.items()}
        assert len({frozenset(k) for k in keys.values()}) == 1, f"{framework}: presets differ in keys {keys}"


def test_timm_presets_follow_timm() -> None:
    timm = PRESETS["timm"]
    assert timm["light"]["hflip"] == 0.5 and timm["light"]["scale"] is None  # what timm jobs always did
    assert timm["none"]["hflip"] == 0.0 and timm["none"]["color_jitter"] == 0.0
    standard = timm["standard"]  # create_transform(is_training=True) defaults, train.py's smoothing
    assert standard["scale"] == [0.08, 1.0] and standard["ratio"] == [3 / 4, 4 / 3]
    assert standard["hflip"] == 0.5 and standard["color_jitter"] == 0.4 and standard["label_smoothing"] == 0.1
    heavy = timm["heavy"]
    assert heavy["auto_augment"] == "rand-m9-mstd0.5-inc1" and heavy["re_prob"] == 0.25
    assert (heavy["mixup"], heavy["cutmix"]) == (0.8, 1.0)


def test_overrides_merge_over_the_preset_without_changing_it() -> None:
    options = augmentation_options("timm", "standard", {"hflip": 0.0, "scale": [0.5, 1.0]})
    assert options["hflip"] == 0.0 and options["scale"] == [0.5, 1.0] and options["color_jitter"] == 0.4
    options["ratio"].append(9)  # the caller's copy
    assert PRESETS["timm"]["standard"]["hflip"] == 0.5 and len(PRESETS["timm"]["standard"]["ratio"]) == 2


def test_unknown_key_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        augmentation_options("timm", "light", {"hfilp": 0.0})
    message = str(info.value)
    assert "'hfilp'" in message and "did you mean 'hflip'" in message
    for key in option_kinds("timm"):
        assert key in message


def test_wrong_kind_of_value_and_unknown_preset_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"augmentation.options.hflip: expected a number"):
        augmentation_options("timm", "light", {"hflip": "yes"})
    with pytest.raises(ConfigError, match=r"augmentation.options.auto_augment"):
        augmentation_options("timm", "light", {"auto_augment": 9})
    assert augmentation_options("timm", "light", {"auto_augment": "rand-m7"})["auto_augment"] == "rand-m7"
    with pytest.raises(ConfigError, match="did you mean 'heavy'"):
        augmentation_options("timm", "heavyy", {})


def test_a_framework_without_presets_takes_no_options() -> None:
    assert augmentation_options("no-such-framework", "light", {}) == {}
    with pytest.raises(ConfigError, match="has no augmentation options"):
        augmentation_options("no-such-framework", "light", {"mosaic": 0.0})


def test_job_config_default_and_yaml_defaults_agree() -> None:
    config = config_from_dict({"dataset": "x"})
    assert config.augmentation.preset == "light" and config.augmentation.options == {}
    assert defaults()["augmentation"] == JobConfig.model_fields["augmentation"].get_default(
        call_default_factory=True).model_dump()
    help_text = field_help()
    assert "augmentation" in help_text["augmentation"].lower()
    assert "light" in help_text["augmentation.preset"] and "hflip" in help_text["augmentation.options"]


def test_job_config_rejects_unknown_preset_and_keys() -> None:
    with pytest.raises(ConfigError, match="augmentation.preset"):
        config_from_dict({"dataset": "x", "augmentation": {"preset": "extreme"}})
    with pytest.raises(ConfigError, match="unknown key 'augmentation.strength'"):
        config_from_dict({"dataset": "x", "augmentation": {"strength": 2}})
    config = config_from_dict({"dataset": "x", "augmentation": {"preset": "heavy", "options": {"mixup": 0.2}}})
    assert config.augmentation.preset == "heavy" and config.augmentation.options == {"mixup": 0.2}


def test_preflight_checks_options_against_the_framework() -> None:
    info = FrameworkInfo(name="timm", tasks=("classify",), honoured_keys=frozenset(ALL_CONFIG_KEYS))
    good = config_from_dict({"dataset": "x", "augmentation": {"preset": "standard", "options": {"vflip": 0.5}}})
    assert check_config(good, {"timm": info}) == []
    bad = config_from_dict({"dataset": "x", "augmentation": {"options": {"colour_jitter": 0.2}}})
    problems = check_config(bad, {"timm": info})
    assert problems and problems[0][0] == "error"
    assert "'colour_jitter'" in problems[0][1] and "did you mean 'color_jitter'" in problems[0][1]
