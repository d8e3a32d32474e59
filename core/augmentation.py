"""Training augmentation as the user chooses it: a preset per framework, plus overrides.

Each framework keeps its own augmentation vocabulary (timm's ``create_transform``/``train.py``
arguments, Ultralytics' hyper-parameters, …), so a preset is a dict of that framework's native
options and a job's ``augmentation.options`` override single keys by their native names. The presets
are data, here, so the config check (preflight), the GUI's choices and preview and the adapters read
one definition. ``light`` is what timm jobs always did (a horizontal flip): the default, so existing
jobs train as before.
"""

from __future__ import annotations

import copy
from typing import Any

# The preset names are part of the job schema (core.config validates them); re-exported here.
from core.config import AUGMENTATION_PRESETS, AugmentationPreset, ConfigError
from core.frameworks import did_you_mean

__all__ = ["AUGMENTATION_PRESETS", "PRESETS", "AugmentationPreset", "augmentation_options", "option_kinds"]

# timm: the names and meanings of timm's own ``create_transform`` / ``train.py`` arguments.
#   scale/ratio: random-resized-crop area and aspect ranges (null scale: no crop, the whole image)
#   hflip/vflip: flip probabilities; color_jitter: brightness/contrast/saturation strength (0: off;
#   timm turns it off when auto_augment is on); auto_augment: a RandAugment string such as
#   "rand-m9-mstd0.5-inc1" or "trivialaugment" (null: off); re_prob: random-erasing probability;
#   mixup/cutmix: Beta alphas (0: off); label_smoothing. Validation always sees the whole image
#   resized to image_size, as inference and exported models do.
_TIMM_NONE: dict[str, Any] = {
    "scale": None, "ratio": [3 / 4, 4 / 3], "hflip": 0.0, "vflip": 0.0, "color_jitter": 0.0,
    "auto_augment": None, "re_prob": 0.0, "mixup": 0.0, "cutmix": 0.0, "label_smoothing": 0.0,
}
_TIMM_STANDARD: dict[str, Any] = {  # create_transform(is_training=True) defaults + train.py's smoothing
    **_TIMM_NONE, "scale": [0.08, 1.0], "hflip": 0.5, "color_jitter": 0.4, "label_smoothing": 0.1,
}
TIMM_PRESETS: dict[str, dict[str, Any]] = {
    "none": _TIMM_NONE,
    "light": {**_TIMM_NONE, "hflip": 0.5},
    "standard": _TIMM_STANDARD,
    "heavy": {**_TIMM_STANDARD, "auto_augment": "rand-m9-mstd0.5-inc1", "re_prob": 0.25, "mixup": 0.8, "cutmix": 1.0},
}

# Ultralytics: its own hyper-parameter names (``ultralytics/cfg/default.yaml``), passed to ``train()``.
#   mosaic/mixup: probabilities; copy_paste: fraction of objects pasted (segment); hsv_h/s/v: colour
#   gains; degrees/translate/scale: random affine (classify: scale is the random-resized-crop range
#   1 - scale … 1); fliplr/flipud: flip probabilities; close_mosaic: last epochs without mosaic;
#   erasing/auto_augment: classify only (random erasing probability, "randaugment"/"autoaugment"/"augmix").
_ULTRALYTICS_RECIPE: dict[str, Any] = {  # default.yaml of Ultralytics 8.4: what every job used before presets
    "mosaic": 1.0, "mixup": 0.0, "copy_paste": 0.0, "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4,
    "degrees": 0.0, "translate": 0.1, "scale": 0.5, "fliplr": 0.5, "flipud": 0.0, "close_mosaic": 10,
    "erasing": 0.4, "auto_augment": "randaugment",
}
ULTRALYTICS_PRESETS: dict[str, dict[str, Any]] = {
    "none": {**dict.fromkeys(_ULTRALYTICS_RECIPE, 0.0), "close_mosaic": 0, "auto_augment": None},
    # Ultralytics jobs always trained with its own recipe: "light" keeps them training as before.
    "light": dict(_ULTRALYTICS_RECIPE),
    "standard": dict(_ULTRALYTICS_RECIPE),
    # The recipe Ultralytics trains its large YOLO11 models with (docs: scale 0.9, mixup 0.15, copy_paste 0.5).
    "heavy": {**_ULTRALYTICS_RECIPE, "scale": 0.9, "mixup": 0.15, "copy_paste": 0.5, "degrees": 5.0, "translate": 0.2},
}

# transformers: torchvision v2 transforms before the model's image processor (adapters.transformers_data),
# applied to the image and its boxes / mask together. hflip/vflip: probabilities; color_jitter:
# brightness/contrast/saturation strength (0: off); crop_scale: random-resized-crop area range
# (classify, segment; null: the whole image); zoom: random scale range of the image content (detect;
# null: off); translate: random shift as a fraction of the size (detect); auto_augment: classify only,
# "trivialaugment" or "randaugment" (null: off).
_TRANSFORMERS_NONE: dict[str, Any] = {"hflip": 0.0, "vflip": 0.0, "color_jitter": 0.0, "crop_scale": None,
                                      "zoom": None, "translate": 0.0, "auto_augment": None}
_TRANSFORMERS_STANDARD: dict[str, Any] = {  # the Hugging Face example scripts' train transforms
    **_TRANSFORMERS_NONE, "hflip": 0.5, "color_jitter": 0.2, "crop_scale": [0.08, 1.0], "zoom": [0.8, 1.2],
    "translate": 0.1,
}
TRANSFORMERS_PRESETS: dict[str, dict[str, Any]] = {
    "none": _TRANSFORMERS_NONE,
    "light": {**_TRANSFORMERS_NONE, "hflip": 0.5},
    "standard": _TRANSFORMERS_STANDARD,
    "heavy": {**_TRANSFORMERS_STANDARD, "color_jitter": 0.4, "zoom": [0.5, 1.5], "translate": 0.2,
              "auto_augment": "trivialaugment"},
}

# framework -> preset -> that framework's native options. A framework absent here has no choosable
# augmentation (its jobs accept only an empty ``options``).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "timm": TIMM_PRESETS,
    "ultralytics": ULTRALYTICS_PRESETS,
    "transformers": TRANSFORMERS_PRESETS,
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "text" if isinstance(value, str) else type(value).__name__


def option_kinds(framework: str) -> dict[str, set[str]]:
    """Each option key of ``framework`` with the kinds of value its presets use (null, a number …)."""
    kinds: dict[str, set[str]] = {}
    for options in PRESETS.get(framework, {}).values():
        for key, value in options.items():
            kinds.setdefault(key, set()).add(_kind(value))
    return kinds


def augmentation_options(framework: str, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset's options with ``overrides`` merged over them; ConfigError names an unknown preset
    or key (listing the valid ones) or a value of the wrong kind."""
    overrides = dict(overrides or {})
    if preset not in AUGMENTATION_PRESETS:
        raise ConfigError(f"augmentation.preset: unknown preset {preset!r}{did_you_mean(preset, AUGMENTATION_PRESETS)}; "
                          f"choose one of {', '.join(AUGMENTATION_PRESETS)}")
    presets = PRESETS.get(framework)
    if presets is None:
        if overrides:
            raise ConfigError(f"augmentation.options: {framework} has no augmentation options; "
                              f"remove {', '.join(sorted(overrides))}")
        return {}
    options = copy.deepcopy(presets[preset])
    kinds = option_kinds(framework)
    for key, value in overrides.items():
        if key not in kinds:
            raise ConfigError(f"augmentation.options: unknown {framework} option {key!r}{did_you_mean(key, sorted(kinds))}; "
                              f"valid options: {', '.join(sorted(kinds))}")
        if _kind(value) not in kinds[key]:
            raise ConfigError(f"augmentation.options.{key}: expected {' or '.join(sorted(kinds[key]))}, got {value!r}")
        options[key] = copy.deepcopy(value)
    return options
