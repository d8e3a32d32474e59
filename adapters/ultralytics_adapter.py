"""Ultralytics YOLO behind the design document's ``TrainingAdapter`` interface (detect, segment, classify, pose).

How the pieces map onto Ultralytics 8.4 (read from ``ultralytics/engine/trainer.py``):

- Data: the dataset goes through our datasets layer (open → health check → split → ``to_yolo``) into
  ``run_dir/data``: the split is ``core.datasets.split_dataset``'s (the dataset's test images go to
  ``images/test``, never train or val); an unreadable image is skipped and named, not a refusal; the ``data.yaml`` Ultralytics reads is rewritten by us from a whitelist of keys, so
  a user's YAML (and its ``download:`` code, which Ultralytics would ``exec``) is never passed on.
- Save dir: ``project=run_dir.parent, name=run_dir.name, exist_ok=True`` so Ultralytics writes
  ``run_dir/weights/{last,best}.pt``, ``results.csv`` and plots into our run dir.
- Metrics: ``on_train_batch_end`` → per-step losses + lr; ``on_fit_epoch_end`` → the epoch's train and
  val metrics, mapped to our names (``adapters.ultralytics_metrics``). ``final_eval`` calls
  ``on_fit_epoch_end`` once more (epoch+1, best.pt): that call is recognised and not stored as an epoch.
- Stop: 8.4's trainer breaks its batch loop when ``trainer.stop`` is set in ``on_train_batch_end``,
  but it then validates and saves the *partial* epoch as a finished one (resume would skip the rest
  of it) and runs a final validation: slow after a cancel and wrong for resume. So we set
  ``trainer.stop`` and raise :class:`StopTraining` from the callback: the partial epoch is dropped,
  ``last.pt`` stays at the last finished epoch and a resume re-runs the interrupted epoch in full
  (the runner drops that epoch's partial metric rows).
- Checkpoints: Ultralytics writes ``last.pt`` in place (matrix row 2), and ``final_eval`` later strips
  its optimizer. After every save we copy it atomically to ``last.verified.pt`` (full training
  state). Resume uses the newest loadable full-state checkpoint of the two; "extend by N epochs" on a
  finished run uses the verified copy with its saved ``train_args`` and the new epoch count (plain
  Ultralytics refuses: "training … is finished, nothing to resume").
- Trust: ``.pt`` files are pickles, and trust is decided by content, never by folder (``core.trust``):
  a file loads when core passes ``trusted=True`` (it vouched for the file's sha256, or the user
  consented) or when its sha256 is in core's manifest of consented imports. The one exception is
  resume and validation, which read the checkpoints this job's own worker wrote into its run dir.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import yaml
from PIL import Image

from adapters import faults
from adapters import ultralytics_models as models
from adapters.base import (
    AdapterError,
    StopTraining,
    TrainingAdapter,
    TrainResult,
    as_test_metrics,
    atomic_write_bytes,
)
from adapters.checkpoint_writer import CheckpointWriter
from adapters.devices import resolve_device, ultralytics_device
from adapters.ultralytics_env import import_ultralytics
from adapters.ultralytics_eval import class_names_of
from adapters.ultralytics_metrics import PRIMARY_METRIC, map_epoch_metrics, step_metrics
from core import trust
from core.augmentation import augmentation_options
from core.config import ALL_CONFIG_KEYS
from core.contracts import Box, ClassScore, InferenceResult, KeypointInstance, Mask, inference_result
from core.files import sha256_bytes
from core.rundir import RESULTS_CSV

log = logging.getLogger(__name__)

_OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
# Arguments the adapter owns: a framework_args entry for one of these would break the run layout or trust.
_RESERVED_ARGS = frozenset({"data", "project", "name", "exist_ok", "resume", "model", "save_dir", "mode", "task"})
# Findings that skip one image instead of refusing the dataset (reported by name).
_SKIPPED_FINDINGS = frozenset({"corrupt_image"})
_DATA_KEYS = ("train", "val", "test", "nc", "names", "kpt_shape", "flip_idx", "kpt_names")
_SHAPES_FOR_TASK = {
    "detect": {"rectangle", "polygon", "circle"},
    "segment": {"polygon", "rectangle", "circle"},
    "pose": {"rectangle", "polygon", "circle"},
}
_ARTIFACT_PATTERNS = (
    ("results.png", "results"),
    (RESULTS_CSV, "results"),
    ("confusion_matrix*.png", "confusion_matrix"),
    ("*curve*.png", "plot"),
    ("labels*.jpg", "plot"),
)


# ----------------------------------------------------------------------------------------- trust


def require_trust(path: Path, trusted: bool) -> Path:
    """The resolved file, if core trusts it (``trusted``) or the user consented to its content."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise AdapterError(f"checkpoint {path} does not exist")
    if not trusted and not trust.is_consented(resolved):
        raise AdapterError(trust.refusal(resolved))
    return resolved


def _torch_load(path: Path) -> Any:
    import_ultralytics()
    from ultralytics.utils.patches import torch_load

    # A full Ultralytics checkpoint is a pickle of the model object: callers pass only files that
    # require_trust accepted, or this job's own checkpoints (resume).
    return torch_load(path, map_location="cpu", weights_only=False)


def checkpoint_task(path: str | Path, *, trusted: bool = False) -> str:
    """The task a YOLO ``.pt`` was trained for, read from the checkpoint (a pickle: trusted files only)."""
    resolved = require_trust(Path(path), trusted)
    try:
        ckpt = _torch_load(resolved)
    except Exception as exc:
        raise AdapterError(f"{resolved} is not a readable checkpoint: {exc}") from exc
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if model is None:
        raise AdapterError(f"{resolved} is not an Ultralytics checkpoint (no model inside)")
    from ultralytics.nn.tasks import guess_model_task

    task = getattr(model, "task", None) or guess_model_task(model)
    return str(task)


# ------------------------------------------------------------------------------------------ data


def _check_annotations(index: Any, task: str, dataset: str) -> None:
    """Refuse data that cannot train ``task`` before a model is built (a clear error, not a zero mAP)."""
    if task == "classify":
        if not any(record.labels for record in index.images) and not index.class_names:
            raise AdapterError(f"{dataset}: no image has a class label; a classify model needs labelled images")
        return
    kinds = _SHAPES_FOR_TASK[task]
    annotated = sum(1 for record in index.images if any(s.shape_type in kinds for s in record.shapes))
    if annotated == 0:
        what = {"detect": "boxes", "segment": "polygons or boxes", "pose": "boxes"}[task]
        raise AdapterError(f"{dataset}: no {what} in {len(index.images)} image(s); nothing to train a {task} model on")
    if task == "pose" and not any(
        s.shape_type == "point" and s.group_id is not None for record in index.images for s in record.shapes
    ) and not index.keypoint_names:
        raise AdapterError(f"{dataset}: no keypoints (point shapes with a group_id) for the pose task")


def _write_data_yaml(out_dir: Path) -> Path:
    """Our own data.yaml: only known keys, absolute ``path``, never a ``download`` entry."""
    source = out_dir / "data.yaml"
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) if source.is_file() else {}
    if not isinstance(raw, dict) or "names" not in raw:
        raise AdapterError(f"{out_dir}: the converted dataset has no class names")
    data: dict[str, Any] = {"path": str(out_dir.resolve())}
    data.update({key: raw[key] for key in _DATA_KEYS if key in raw})
    for split in ("train", "val"):
        if not (out_dir / str(data.get(split, ""))).is_dir():
            raise AdapterError(f"{out_dir}: the converted dataset has no {split} images")
    target = out_dir / "data.yaml"
    atomic_write_bytes(target, yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8"))
    return target


# ----------------------------------------------------------------------------------------- images


def _decode_image(image: str | Path | bytes) -> Image.Image:
    """RGB image after the same limits the datasets layer applies (checked from the header first)."""
    from core.datasets import DatasetError
    from core.datasets import images as image_limits

    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if len(data) > image_limits.MAX_IMAGE_BYTES:
            problem = image_limits.limit_problem(len(data), None, None)
            raise AdapterError(f"image: {problem}")
        try:
            with Image.open(io.BytesIO(data)) as opened:  # lazy: reads the header only
                problem = image_limits.limit_problem(len(data), *opened.size)
                if problem is not None:
                    raise AdapterError(f"image: {problem}")
                opened.load()
                return opened.convert("RGB")
        except AdapterError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise AdapterError(f"image: cannot decode the image ({exc})") from exc
    try:
        return image_limits.load_image_rgb(image)
    except DatasetError as exc:
        raise AdapterError(str(exc)) from exc


# ---------------------------------------------------------------------------------------- adapter


class UltralyticsAdapter(TrainingAdapter):
    framework = "ultralytics"
    tasks = ("detect", "segment", "classify", "pose")
    default_models: ClassVar[dict[str, str]] = {"detect": "yolo11n.yaml", "segment": "yolo11n-seg.yaml",
                                                 "classify": "yolo11n-cls.yaml", "pose": "yolo11n-pose.yaml"}
    honoured_keys: ClassVar[frozenset[str]] = frozenset(ALL_CONFIG_KEYS)
    checkpoint_patterns: ClassVar[tuple[str, ...]] = ("*yolo*.pt", "*rtdetr*.pt", "*/ultralytics/*.pt")
    accepts_paths: ClassVar[bool] = True
    model_suffixes: ClassVar[tuple[str, ...]] = (".yaml", ".pt")
    inference_output: ClassVar[dict[str, tuple[str, ...]]] = {
        "detect": ("boxes",), "segment": ("boxes", "masks"), "classify": ("top_k",), "pose": ("boxes", "keypoints")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_path: Path | None = None
        self._yolo: Any = None  # ultralytics.YOLO
        self._model_source: Path | None = None
        self._resume_file: Path | None = None
        self._start_epoch = 0  # epochs already finished before this run (resume)
        self._epoch_index = -1  # trainer.epoch of the epoch in progress (0-based)
        self._batch = 0
        self._epochs_done = 0
        self._best_stamp: tuple[int, int] | None = None
        self._best_value: float | None = None
        self._best_epoch = 0
        self._final_metrics: dict[str, float] = {}
        self._inference_task: str | None = None
        self.checkpoints = CheckpointWriter()  # each task reports its own failure as a warning

    # ---- registry-level information ----
    @classmethod
    def all_models(cls) -> list[str]:
        return models.all_models()

    @classmethod
    def pretrained_available(cls, model: str) -> bool:
        return models.find_weights(model) is not None

    @classmethod
    def models_for_task(cls, task: str) -> list[str]:
        return [name for name in models.all_models() if models.task_of(name) == task]

    @classmethod
    def checkpoint_task(cls, path: str | Path, *, trusted: bool = False) -> str:
        return checkpoint_task(path, trusted=trusted)

    # ---- data ----
    def prepare_data(self) -> None:
        from core.datasets import DatasetError, check_health, open_dataset, split_dataset
        from core.datasets.convert import read_conversion_report, to_yolo

        config = self.config
        try:
            index = open_dataset(config.dataset, config.dataset_format)
            findings = check_health(index)
            index = self._without_unreadable(index, findings)
            errors = [f for f in findings if f.severity == "error" and f.code not in _SKIPPED_FINDINGS]
            if errors:
                listed = "; ".join(str(f) for f in errors[:5])
                more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
                raise AdapterError(f"{config.dataset}: the dataset has {len(errors)} error(s): {listed}{more}")
            _check_annotations(index, config.task, config.dataset)
            # The one split decision (core.datasets.split_dataset): "auto" is the dataset's own split when it
            # has one; its test images are never in train or val.
            split = split_dataset(index, config.split.strategy, config.split.ratio, config.split.seed, config.split.file)
            # Regenerated on every start (resume included): the layout is ours, never the user's YAML.
            out_dir = to_yolo(index, self.files.data, task=config.task, split=split, link=True)
        except DatasetError as exc:
            raise AdapterError(str(exc)) from exc
        report = read_conversion_report(out_dir)
        for message in [*report.get("warnings", []), *(f"skipped {item}" for item in report.get("skipped", []))][:20]:
            self.reporter.warning(str(message))
        # Classify trains from the folder tree (data.yaml still validates train/ and val/); the others
        # from our data.yaml.
        data_yaml = _write_data_yaml(out_dir)
        self.data_path = out_dir if config.task == "classify" else data_yaml
        self.class_names = class_names_of(out_dir)

    def _without_unreadable(self, index: Any, findings: list[Any]) -> Any:
        """The index without the images that cannot be read, each reported by name (as timm jobs do):
        one corrupt file does not refuse the dataset. None readable is still an error (no_valid_images)."""
        unreadable = {f.path: f.message for f in findings if f.code in _SKIPPED_FINDINGS}
        if not unreadable:
            return index
        for rel, why in sorted(unreadable.items()):
            self.reporter.warning(f"{rel}: skipped, {why}", path=rel)
        return dataclasses.replace(index, images=[r for r in index.images if r.rel not in unreadable])

    # ---- model ----
    def _resolve_source(self) -> Path | str:
        """The file YOLO() gets: an imported/cached .pt (checked for trust and task) or a packaged .yaml."""
        config = self.config
        if config.weights:
            weights = Path(config.weights).expanduser()
            if not weights.is_file():
                raise AdapterError(f"weights file {weights} does not exist")
            return require_trust(weights, trusted=False)
        model = config.model
        if model.endswith(".pt") or config.pretrained:
            found = models.find_weights(model)
            if found is None:
                stem = Path(model).name.removesuffix(".pt").removesuffix(".yaml")
                raise AdapterError(
                    f"pretrained weights for {stem} are not on this computer and jobs never download. "
                    f"Import {stem}.pt (Models → Import weights) or train from scratch with {stem}.yaml "
                    f"(pretrained: false)"
                )
            return require_trust(found, trusted=False)  # a file in a cache folder is not trusted for being there
        name = Path(model).name
        stem = name.removesuffix(".yaml")
        if Path(model).suffix == ".yaml" and Path(model).is_file():
            return Path(model).resolve()
        if stem not in models.packaged_models():
            raise AdapterError(f"unknown Ultralytics model {model!r}; see `vision-platform models ultralytics`")
        return f"{stem}.yaml"

    def _check_source_task(self, source: Path | str) -> None:
        task = self.config.task
        if str(source).endswith(".pt"):
            found = checkpoint_task(source, trusted=True)  # trust was checked in _resolve_source
        else:
            found = models.task_of(str(source)) or "unknown"
        if found != task:
            raise AdapterError(f"{Path(str(source)).name} is a {found} model; this job's task is {task}")

    def prepare_model(self) -> None:
        # Name and trust problems are found before the (slow) framework import.
        source = None if self.resume else self._resolve_source()
        import_ultralytics()
        from ultralytics import YOLO

        if source is None:
            self._resume_file = self._prepare_resume()
            self._yolo = YOLO(str(self._resume_file), task=self.config.task)
            return
        self._check_source_task(source)
        self._model_source = Path(source) if isinstance(source, Path) else None
        self._yolo = YOLO(str(source), task=self.config.task)

    # ---- resume ----
    def _load_full_state(self, path: Path) -> dict[str, Any] | None:
        """A checkpoint with optimizer state and a real epoch, or None (stripped, truncated, unreadable)."""
        if not path.is_file():
            return None
        try:
            ckpt = _torch_load(path)
        except Exception as exc:  # a kill mid-write leaves a truncated zip: fall back to the other copy
            self.reporter.warning(f"{path.name} cannot be loaded ({type(exc).__name__}: {exc}); using the verified copy")
            return None
        if not isinstance(ckpt, dict) or ckpt.get("optimizer") is None or int(ckpt.get("epoch", -1)) < 0:
            return None
        return ckpt

    def _prepare_resume(self) -> Path:
        candidates = [(p, self._load_full_state(p)) for p in (self.files.last, self.files.verified_last)]
        usable = [(p, c) for p, c in candidates if c is not None]
        if not usable:
            raise AdapterError(f"{self.run_dir}: no checkpoint with training state to resume from (last.pt is missing or damaged)")
        source, ckpt = max(usable, key=lambda item: int(item[1]["epoch"]))
        done = int(ckpt["epoch"]) + 1
        if done >= self.config.epochs:
            raise AdapterError(
                f"this run already finished {done} of {self.config.epochs} epochs; extend it by N epochs to train more"
            )
        # Ultralytics takes epochs and paths from the checkpoint's train_args: point them at this run and
        # the requested epoch count (which is how "extend by N" continues a finished run).
        train_args = dict(ckpt.get("train_args") or {})
        train_args.update(
            epochs=self.config.epochs,
            data=str(self.data_path),
            save_dir=str(self.run_dir),
            project=str(self.run_dir.parent),
            name=self.run_dir.name,
            exist_ok=True,
            device=self._device(),
            workers=self.config.workers,
        )
        ckpt["train_args"] = train_args
        import torch

        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        target = self.files.resume_from
        atomic_write_bytes(target, buffer.getvalue())
        self._start_epoch = self._epochs_done = done
        self._restore_best_info()
        self.reporter.log(f"resuming from {source.name} after epoch {done} of {self.config.epochs}")
        return target

    def _restore_best_info(self) -> None:
        """best.pt from before the resume: who it is, so an unchanged best is not re-attributed."""
        best = self.files.best
        info_file = self.files.best_info
        if not (best.is_file() and info_file.is_file()):
            return
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
            self._best_epoch, self._best_value = int(info["epoch"]), info.get("metric_value")
        except (OSError, ValueError, KeyError, TypeError):
            return
        stat = best.stat()
        self._best_stamp = (stat.st_mtime_ns, stat.st_size)

    # ---- training ----
    def _device(self) -> str:
        return ultralytics_device(resolve_device(self.config.device))

    def _train_args(self) -> dict[str, Any]:
        config = self.config
        device = self._device()
        data = str(self.data_path)
        if self.resume:
            assert self._resume_file is not None
            # Only the arguments check_resume lets through; the rest come from the patched checkpoint.
            return {"resume": str(self._resume_file), "data": data, "device": device, "workers": config.workers}
        args: dict[str, Any] = {
            "data": data,
            "epochs": config.epochs,
            "batch": config.batch_size,
            "imgsz": config.image_size,
            "lr0": config.learning_rate,
            "optimizer": _OPTIMIZERS[config.optimizer],
            "weight_decay": config.weight_decay,
            "seed": config.seed,
            "patience": config.patience,  # 0 disables early stopping in Ultralytics too
            "workers": config.workers,
            "device": device,
            # AMP only exists on accelerators; on CUDA the (offline-safe) AMP check decides with the config.
            "amp": bool(config.amp) and device not in ("cpu", "mps"),
            "pretrained": self._model_source is not None,
            "project": str(self.run_dir.parent),
            "name": self.run_dir.name,
            "exist_ok": True,
            # The chosen preset with its overrides, by Ultralytics' own names (core.augmentation).
            **augmentation_options("ultralytics", config.augmentation.preset, config.augmentation.options),
        }
        for key, value in config.framework_args.items():
            if key in _RESERVED_ARGS:
                self.reporter.warning(f"framework_args.{key} is set by the app and was ignored")
                continue
            args[key] = value
        return args

    def _install_callbacks(self) -> None:
        for event, handler in (
            ("on_train_epoch_start", self._cb_epoch_start),
            ("on_train_batch_end", self._cb_batch_end),
            ("on_train_epoch_end", self._cb_train_epoch_end),
            ("on_model_save", self._cb_model_save),
            ("on_fit_epoch_end", self._cb_fit_epoch_end),
        ):
            self._yolo.add_callback(event, handler)

    def train(self) -> TrainResult:
        if self._yolo is None or self.data_path is None:
            raise AdapterError("prepare_data() and prepare_model() must run before train()")
        self._install_callbacks()
        args = self._train_args()
        status = "completed"
        try:
            self._yolo.train(**args)
        except StopTraining:
            status = "cancelled"
        finally:
            self.checkpoints.close()  # every epoch's checkpoint is recorded before the run ends
            self.files.resume_from.unlink(missing_ok=True)
        if status == "completed":
            self._report_final_checkpoints()
            self._write_val_predictions()
        self._report_artifacts()
        best = self.files.best
        last = self.files.last
        return TrainResult(
            status=status,
            epochs_completed=self._epochs_done,
            best_metric_name=PRIMARY_METRIC[self.config.task] if self._best_value is not None else None,
            best_metric_value=self._best_value,
            best_checkpoint=best if best.is_file() else None,
            last_checkpoint=last if last.is_file() else None,
            extra={"final_metrics": self._final_metrics},
        )

    # ---- callbacks (run inside the Ultralytics trainer) ----
    def _stop_if_requested(self, trainer: Any) -> None:
        if self.reporter.should_stop():
            trainer.stop = True
            self.reporter.status("saving", f"stopped; last finished epoch: {self._epochs_done}")
            raise StopTraining()

    def _cb_epoch_start(self, trainer: Any) -> None:
        self._batch = 0
        self._epoch_index = int(trainer.epoch)
        self._stop_if_requested(trainer)

    def _cb_batch_end(self, trainer: Any) -> None:
        self._batch += 1
        epoch = int(trainer.epoch) + 1
        steps = len(trainer.train_loader)
        step = int(trainer.epoch) * steps + self._batch
        self.reporter.progress(epoch, int(trainer.epochs), self._batch, steps)
        lr = trainer.optimizer.param_groups[0]["lr"] if trainer.optimizer is not None else None
        values = step_metrics(trainer.loss_items or {}, lr)
        if values:
            self.reporter.metrics(values, epoch=epoch, step=step, kind="step")
        faults.after_batch(step, self.reporter.should_stop)
        self._stop_if_requested(trainer)

    def _cb_train_epoch_end(self, trainer: Any) -> None:
        losses = trainer.label_loss_items(trainer.tloss, prefix="train") if trainer.tloss is not None else {}
        self.on_train_epoch_end(int(trainer.epoch) + 1, map_epoch_metrics(losses))

    def _cb_model_save(self, trainer: Any) -> None:
        epoch = int(trainer.epoch) + 1
        last = Path(trainer.last)
        # Read now, before the next epoch overwrites last.pt; the copy, its fsync and the hashes
        # (≈40 ms an epoch for yolo11n) happen in the checkpoint writer's thread while training goes on.
        data = last.read_bytes()
        self._epochs_done = epoch
        best_update: tuple[str, float | None] | None = None
        best = Path(trainer.best)
        if best.is_file():
            stat = best.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._best_stamp:
                self._best_stamp = stamp
                name = PRIMARY_METRIC[self.config.task]
                self._best_value = map_epoch_metrics(trainer.metrics or {}).get(name)
                self._best_epoch = epoch
                best_update = (name, self._best_value)
        self.checkpoints.submit(self._record_epoch_checkpoints, last, data, epoch, best, best_update)

    def _record_epoch_checkpoints(self, last: Path, data: bytes, epoch: int, best: Path,
                                  best_update: tuple[str, float | None] | None) -> None:
        try:
            # Ultralytics wrote last.pt in place; keep a copy that a kill can never truncate.
            atomic_write_bytes(self.files.verified_last, data)
            digest = sha256_bytes(data)
            self.on_model_save("last", last, epoch, sha256=digest)
            if best_update is not None:
                name, value = best_update
                info = {"epoch": epoch, "metric_name": name, "metric_value": value}
                atomic_write_bytes(self.files.best_info, json.dumps(info).encode("utf-8"))
                # Ultralytics writes best.pt from the same bytes as last.pt in the epoch it improves.
                same = best.is_file() and best.stat().st_size == len(data)
                self.on_model_save("best", best, epoch, metric_name=name, metric_value=value,
                                   sha256=digest if same else None)
        except Exception as exc:  # noqa: BLE001 - reported; the final checkpoints are recorded again at the end
            self.reporter.warning(f"recording the epoch {epoch} checkpoints failed: {type(exc).__name__}: {exc}")

    def _cb_fit_epoch_end(self, trainer: Any) -> None:
        raw: dict[str, Any] = {}
        if trainer.tloss is not None:
            raw.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        raw.update(trainer.metrics or {})
        raw.update(getattr(trainer, "lr", None) or {})
        if int(trainer.epoch) != self._epoch_index:
            # final_eval re-validates best.pt and reports it as epoch+1: not a training epoch.
            self._final_metrics = {k: v for k, v in map_epoch_metrics(trainer.metrics or {}).items() if k.startswith("val/")}
            return
        self.on_fit_epoch_end(int(trainer.epoch) + 1, map_epoch_metrics(raw))
        if int(trainer.epoch) + 1 < int(trainer.epochs):
            self._stop_if_requested(trainer)

    # ---- after training ----
    def _report_final_checkpoints(self) -> None:
        """final_eval strips the optimizer from best.pt/last.pt: record their final hashes."""
        last = self.files.last
        if last.is_file():
            self.on_model_save("last", last, self._epochs_done)
        best = self.files.best
        if best.is_file() and self._best_epoch:
            self.on_model_save("best", best, self._best_epoch, metric_name=PRIMARY_METRIC[self.config.task],
                               metric_value=self._best_value)

    def _write_val_predictions(self) -> None:
        """Per-image predictions of best.pt on the validation split, for the interactive confusion
        matrix. A failure here costs the run nothing: it is reported as a warning."""
        from adapters.ultralytics_eval import write_val_predictions

        best = self.files.best
        if not best.is_file() or self.data_path is None:
            return
        data_dir = self.data_path if self.data_path.is_dir() else self.data_path.parent
        self.reporter.status("validating", "per-image validation predictions of the best model")
        try:
            written = write_val_predictions(best, data_dir, self.config.task, image_size=self.config.image_size,
                                            device=self._device(), epoch=self._best_epoch or None,
                                            target=self.files.val_predictions)
        except Exception as exc:  # noqa: BLE001 - the trained model is already safe; tell the user why the view is missing
            self.reporter.warning(f"per-image validation predictions were not written: {type(exc).__name__}: {exc}")
            return
        if written is not None:
            self.reporter.artifact("val_predictions", written)

    def _report_artifacts(self) -> None:
        seen: set[Path] = set()
        for pattern, kind in _ARTIFACT_PATTERNS:
            for path in sorted(self.run_dir.glob(pattern)):
                if path not in seen and path.is_file():
                    seen.add(path)
                    self.reporter.artifact(kind, path)

    # ---- validation and inference ----
    def validate(self) -> dict[str, float]:
        return self._validate_split("val")

    def evaluate_test(self) -> dict[str, float]:
        """best.pt on the converted dataset's test split, by Ultralytics' own validator
        (``model.val(split="test")``); {} when the dataset has no test images. Only called with test
        images present: Ultralytics would quietly validate on ``val`` instead."""
        if self.data_path is None or not self.files.best.is_file():
            return {}
        data_dir = self.data_path if self.data_path.is_dir() else self.data_path.parent
        test_dir = data_dir / ("test" if self.config.task == "classify" else "images/test")
        images = sum(1 for p in test_dir.rglob("*") if p.is_file()) if test_dir.is_dir() else 0
        if not images:
            return {}
        self.reporter.status("validating", f"best checkpoint (epoch {self._best_epoch}) on {images} test images")
        return as_test_metrics(self._validate_split("test"))

    def _validate_split(self, split: str) -> dict[str, float]:
        """best.pt (else last.pt) on ``split`` of the converted dataset, in our ``val/…`` names."""
        if self.data_path is None:
            self.prepare_data()
        weights = self.files.best
        if not weights.is_file():
            weights = self.files.last
        if not weights.is_file():
            raise AdapterError(f"{self.run_dir}: no checkpoint to validate")
        import_ultralytics()
        from ultralytics import YOLO

        model = YOLO(str(weights), task=self.config.task)
        results = model.val(data=str(self.data_path), split=split, imgsz=self.config.image_size,
                            batch=self.config.batch_size, device=self._device(), plots=False, verbose=False,
                            project=str(self.run_dir), name=split, exist_ok=True)
        objects = getattr(results, "nt_per_class", None)
        if split == "test" and objects is not None:
            self.reporter.log(f"test split: {int(objects.sum())} labelled objects evaluated")
        return map_epoch_metrics(getattr(results, "results_dict", {}) or {})

    def load_checkpoint(self, path: Path, *, trusted: bool = False) -> None:
        resolved = require_trust(Path(path), trusted)
        task = checkpoint_task(resolved, trusted=True)
        if task not in self.tasks:
            raise AdapterError(f"{resolved.name} is a {task} model; this app runs {', '.join(self.tasks)}")
        if task != self.config.task:
            raise AdapterError(f"{resolved.name} is a {task} model; this job's task is {self.config.task}")
        import_ultralytics()
        from ultralytics import YOLO

        self._yolo = YOLO(str(resolved), task=task)
        self._inference_task = task
        names = getattr(self._yolo, "names", None) or {}
        self.class_names = [str(names[key]) for key in sorted(names)] if isinstance(names, dict) else list(names)

    def run_inference(self, image: str | Path | bytes, **options: Any) -> InferenceResult:
        if self._yolo is None or self._inference_task is None:
            raise AdapterError("load a checkpoint before running inference")
        conf = float(options.get("conf", 0.25))
        iou = float(options.get("iou", 0.45))
        top_k = int(options.get("top_k", 5))
        picture = _decode_image(image)
        started = time.perf_counter()
        result = self._yolo.predict(picture, conf=conf, iou=iou, verbose=False)[0]
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        payload = _result_payload(result, self._inference_task, picture.size, elapsed_ms, top_k)
        if options.get("mask_png") and self._inference_task == "segment":
            payload["mask_png"] = mask_png(payload["masks"], picture.size)
        return payload


def mask_png(masks: list[Mask], size: tuple[int, int]) -> bytes:
    """One PNG (8-bit, image size) whose pixel value is class id + 1 where an instance covers it and
    0 elsewhere; instances are painted in ascending confidence, so the most confident one wins."""
    from PIL import ImageDraw

    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    for mask in sorted(masks, key=lambda item: float(item.get("confidence", 0.0))):
        polygon = [(float(x), float(y)) for x, y in mask["polygon"]]
        if len(polygon) >= 3:
            draw.polygon(polygon, fill=min(int(mask["class_id"]) + 1, 255))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def _result_payload(result: Any, task: str, size: tuple[int, int], elapsed_ms: float, top_k: int) -> InferenceResult:
    names: dict[int, str] = dict(result.names)
    boxes: list[Box] = []
    masks: list[Mask] = []
    keypoints: list[KeypointInstance] = []
    scores: list[ClassScore] = []
    found = result.boxes
    if found is not None and len(found):
        xyxy = found.xyxy.cpu().tolist()
        confs = found.conf.cpu().tolist()
        classes = [int(c) for c in found.cls.cpu().tolist()]
        boxes = [
            {"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "confidence": c, "class_id": k, "label": names.get(k, str(k))}
            for b, c, k in zip(xyxy, confs, classes, strict=True)
        ]
        if result.masks is not None:
            masks = [
                {"class_id": k, "label": names.get(k, str(k)), "confidence": c, "polygon": poly.tolist()}
                for poly, c, k in zip(result.masks.xy, confs, classes, strict=True)
            ]
        if result.keypoints is not None:
            points = result.keypoints.xy.cpu().tolist()
            kconf = result.keypoints.conf.cpu().tolist() if result.keypoints.conf is not None else None
            keypoints = [
                {
                    "class_id": k,
                    "label": names.get(k, str(k)),
                    "confidence": c,
                    "points": [[p[0], p[1], kconf[i][j] if kconf else 1.0] for j, p in enumerate(points[i])],
                }
                for i, (c, k) in enumerate(zip(confs, classes, strict=True))
            ]
    if result.probs is not None:
        probs = result.probs.data.float().cpu()
        values, indices = probs.topk(min(top_k, probs.numel()))
        scores = [
            {"class_id": int(i), "label": names.get(int(i), str(int(i))), "confidence": float(v)}
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
    return inference_result(task, elapsed_ms=elapsed_ms, image_size=size, boxes=boxes, masks=masks,
                            keypoints=keypoints, top_k=scores)


__all__ = ["UltralyticsAdapter", "checkpoint_task", "mask_png", "require_trust"]
