"""Where a transformers model comes from, and how it is built — without ever running downloaded code.

A job's ``model`` is one of three things:

- a from-scratch family (``vit-scratch``, ``detr-scratch`` …): a small config whose sizes come from
  ``framework_args`` (``layers``, ``hidden_size``, ``heads``, ``queries``), random weights;
- a local folder with ``config.json`` and safetensors weights (a saved model, or one of our checkpoints);
- a Hugging Face Hub id that is already in the local HF cache (workers are offline; nothing downloads).

``trust_remote_code`` is never enabled and weights load only from safetensors: pickle files
(``pytorch_model.bin``, ``.pt``, ``.ckpt``) can run code when read, so a folder that has only those is
refused. Only ``huggingface_hub`` is imported at module level's callers' pace: resolving a source
never imports transformers, so a bad model name fails before the slow import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adapters.base import AdapterError

SourceKind = Literal["scratch", "folder", "hub"]
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONFIG_FILE = "config.json"
ARCHITECTURE_SUFFIX = {"classify": "ForImageClassification", "detect": "ForObjectDetection",
                       "segment": "ForSemanticSegmentation"}
TASKS: tuple[str, ...] = tuple(ARCHITECTURE_SUFFIX)
SIZE_ARGS: dict[str, int] = {"layers": 4, "hidden_size": 64, "heads": 2, "queries": 20}
FRAMEWORK_ARGS: tuple[str, ...] = tuple(SIZE_ARGS)
DOWNLOAD_HINT = ("download it first while online (Weights view, or `vision-platform weights download transformers "
                 "{model}`), copy a folder with config.json and model.safetensors and set model to its path, or "
                 "train a from-scratch model ({scratch})")


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    name: str  # the scratch family, the folder path or the hub id
    task: str

    @property
    def location(self) -> str:
        return self.name


def sizes(framework_args: dict[str, Any]) -> dict[str, int]:
    """The from-scratch sizes; an unknown ``framework_args`` key is an error naming it."""
    unknown = sorted(set(framework_args) - set(FRAMEWORK_ARGS))
    if unknown:
        raise AdapterError(f"framework_args: transformers does not use {', '.join(unknown)} "
                           f"(it reads: {', '.join(FRAMEWORK_ARGS)})")
    chosen = {**SIZE_ARGS, **framework_args}
    for key, value in chosen.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise AdapterError(f"framework_args.{key} must be a positive whole number, got {value!r}")
    if chosen["hidden_size"] % chosen["heads"]:
        raise AdapterError(f"framework_args.hidden_size ({chosen['hidden_size']}) must be a multiple of heads "
                           f"({chosen['heads']})")
    return chosen


# ---------------------------------------------------------------------------------- from scratch
def _vit(size: dict[str, int], image_size: int, labels: dict[str, Any]) -> Any:
    from transformers import ViTConfig

    patch = max(2, image_size // 8)
    return ViTConfig(image_size=image_size, patch_size=patch, hidden_size=size["hidden_size"],
                     num_hidden_layers=size["layers"], num_attention_heads=size["heads"],
                     intermediate_size=2 * size["hidden_size"], **labels)


def _convnext(size: dict[str, int], image_size: int, labels: dict[str, Any]) -> Any:
    from transformers import ConvNextConfig

    widths = [size["hidden_size"] // 2, size["hidden_size"]]
    return ConvNextConfig(num_stages=2, hidden_sizes=widths, depths=[max(1, size["layers"] // 2)] * 2,
                          image_size=image_size, **labels)


def _detr(size: dict[str, int], image_size: int, labels: dict[str, Any]) -> Any:
    from transformers import DetrConfig, ResNetConfig

    width = size["hidden_size"]
    backbone_options: dict[str, Any] = {"out_features": ["stage2"]}  # a backbone option, not in the signature
    backbone = ResNetConfig(embedding_size=width // 2, hidden_sizes=[width // 2, width], depths=[1, 1],
                            **backbone_options)  # random weights: nothing is downloaded
    return DetrConfig(backbone_config=backbone, d_model=width, encoder_layers=size["layers"], decoder_layers=size["layers"],
                      encoder_attention_heads=size["heads"], decoder_attention_heads=size["heads"],
                      encoder_ffn_dim=2 * width, decoder_ffn_dim=2 * width, num_queries=size["queries"], **labels)


def _segformer(size: dict[str, int], image_size: int, labels: dict[str, Any]) -> Any:
    from transformers import SegformerConfig

    width = size["hidden_size"]
    return SegformerConfig(num_encoder_blocks=2, depths=[max(1, size["layers"] // 2)] * 2, sr_ratios=[2, 1],
                           hidden_sizes=[width // 2, width], patch_sizes=[7, 3], strides=[4, 2],
                           num_attention_heads=[1, size["heads"]], mlp_ratios=[2, 2], decoder_hidden_size=width,
                           **labels)


ConfigBuilder = Callable[[dict[str, int], int, dict[str, Any]], Any]
SCRATCH_FAMILIES: dict[str, tuple[str, ConfigBuilder]] = {
    "vit-scratch": ("classify", _vit),
    "convnext-scratch": ("classify", _convnext),
    "detr-scratch": ("detect", _detr),
    "segformer-scratch": ("segment", _segformer),
}
DEFAULT_MODELS: dict[str, str] = {"classify": "vit-scratch", "detect": "detr-scratch", "segment": "segformer-scratch"}


def scratch_models(task: str | None = None) -> list[str]:
    return [name for name, (family_task, _) in SCRATCH_FAMILIES.items() if task in (None, family_task)]


# ---------------------------------------------------------------------------------- sources
def refuse_pickle_only(folder: Path) -> None:
    """A folder must hold safetensors weights; pickle-only weights are refused, naming the folder."""
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_WEIGHT_SUFFIXES)
    if pickles:
        raise AdapterError(f"{folder} has weights only as pickle files ({', '.join(pickles)}), which can run code "
                           "when loaded; this app loads safetensors only. Convert them to model.safetensors first.")
    raise AdapterError(f"{folder} has no model.safetensors weights")


def check_folder(folder: Path) -> None:
    if not (folder / CONFIG_FILE).is_file():
        raise AdapterError(f"{folder} is not a transformers model folder: it has no {CONFIG_FILE}")
    refuse_pickle_only(folder)


def _cached(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 - a malformed id is simply not cached
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def cached_hub_folder(repo_id: str) -> Path | None:
    """The snapshot folder of ``repo_id`` when the cache holds its config and safetensors weights."""
    config = _cached(repo_id, CONFIG_FILE)
    if config is None or not any(_cached(repo_id, name) for name in SAFE_WEIGHTS):
        return None
    return config.parent


def _check_hub(repo_id: str) -> None:
    if _cached(repo_id, CONFIG_FILE) is None:
        hint = DOWNLOAD_HINT.format(model=repo_id, scratch=", ".join(SCRATCH_FAMILIES))
        raise AdapterError(f"the Hugging Face model {repo_id!r} is not in the local cache, and training never "
                           f"downloads; {hint}")
    if not any(_cached(repo_id, name) for name in SAFE_WEIGHTS):
        raise AdapterError(f"the cached Hugging Face model {repo_id!r} has no model.safetensors weights; "
                           "this app does not load pickle (.bin) weights")


def resolve_source(model: str, task: str, framework_args: dict[str, Any]) -> ModelSource:
    """Decide where ``model`` comes from and check it is usable, before anything heavy is imported."""
    if model in SCRATCH_FAMILIES:
        family_task = SCRATCH_FAMILIES[model][0]
        if family_task != task:
            raise AdapterError(f"{model} is a {family_task} model, but the job's task is {task}; for {task} use "
                               f"{', '.join(scratch_models(task))}")
        sizes(framework_args)
        return ModelSource("scratch", model, task)
    if framework_args:
        raise AdapterError(f"framework_args ({', '.join(sorted(framework_args))}) only size from-scratch models; "
                           f"{model} brings its own config")
    folder = Path(model).expanduser()
    if folder.is_dir():
        check_folder(folder)
        return ModelSource("folder", str(folder.resolve()), task)
    if model.count("/") > 1 or model.startswith((".", "~")) or "\\" in model:
        raise AdapterError(f"model folder not found: {folder}")
    if "/" not in model and "-" in model and model.endswith("scratch"):
        raise AdapterError(f"unknown from-scratch model {model!r}; available: {', '.join(SCRATCH_FAMILIES)}")
    _check_hub(model)
    return ModelSource("hub", model, task)


def folder_task(folder: Path) -> str:
    """The task of a saved model folder, from ``config.json``'s architectures."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{folder / CONFIG_FILE} cannot be read: {exc}") from None
    for architecture in config.get("architectures") or []:
        for task, suffix in ARCHITECTURE_SUFFIX.items():
            if str(architecture).endswith(suffix):
                return task
    raise AdapterError(f"{folder} holds a {config.get('model_type', 'unknown')} model that is not an image "
                       f"classifier, object detector or semantic segmenter")


def cached_vision_models() -> list[str]:
    """Hub ids in the local cache whose config is one of our tasks' architectures (no network)."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir().repos
    except Exception:  # noqa: BLE001 - no cache yet
        return []
    found = []
    for repo in repos:
        folder = cached_hub_folder(repo.repo_id) if repo.repo_type == "model" else None
        if folder is not None and _is_vision(folder):
            found.append(repo.repo_id)
    return sorted(found)


def _is_vision(folder: Path) -> bool:
    try:
        folder_task(folder)
    except AdapterError:
        return False
    return True


# ---------------------------------------------------------------------------------- building
def auto_model_class(task: str) -> Any:
    import transformers

    names = {"classify": "AutoModelForImageClassification", "detect": "AutoModelForObjectDetection",
             "segment": "AutoModelForSemanticSegmentation"}
    return getattr(transformers, names[task])


def label_kwargs(class_names: list[str]) -> dict[str, Any]:
    id2label = dict(enumerate(class_names))
    return {"num_labels": len(class_names), "id2label": id2label,
            "label2id": {name: index for index, name in id2label.items()}}


def build_scratch(source: ModelSource, framework_args: dict[str, Any], image_size: int,
                  class_names: list[str]) -> Any:
    _task, builder = SCRATCH_FAMILIES[source.name]
    config = builder(sizes(framework_args), image_size, label_kwargs(class_names))
    return auto_model_class(source.task).from_config(config)


def load_pretrained(location: str, task: str, class_names: list[str] | None) -> Any:
    """From a folder or the cache: safetensors only, no remote code, a new head when the classes differ."""
    extra: dict[str, Any] = {}
    if class_names is not None:
        extra = {**label_kwargs(class_names), "ignore_mismatched_sizes": True}
    try:
        return auto_model_class(task).from_pretrained(location, local_files_only=True, use_safetensors=True,
                                                      trust_remote_code=False, **extra)
    except (OSError, ValueError, KeyError) as exc:
        raise AdapterError(f"{location} cannot be loaded as a {task} model: {exc}") from None


def image_processor(source: ModelSource, image_size: int) -> Any:
    """The model's own processor (pretrained), or a plain resize+normalise one (from scratch)."""
    if source.kind != "scratch":
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(source.location, local_files_only=True,
                                                           trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{source.location} has no usable image processor config: {exc}") from None
        if source.task != "classify":  # detection/segmentation: one fixed size, so batches stack
            processor.size = {"height": image_size, "width": image_size}
        return processor
    return scratch_processor(source.task, image_size)


def scratch_processor(task: str, image_size: int) -> Any:
    square = {"height": image_size, "width": image_size}
    if task == "detect":
        from transformers import DetrImageProcessor

        return DetrImageProcessor(size=square)
    if task == "segment":
        from transformers import SegformerImageProcessor

        return SegformerImageProcessor(size=square, do_reduce_labels=False)
    from transformers import ViTImageProcessor

    return ViTImageProcessor(size=square)
