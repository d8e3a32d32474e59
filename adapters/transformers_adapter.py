"""Hugging Face transformers: image classification, object detection (DETR family) and semantic
segmentation (SegFormer …), trained by ``transformers.Trainer``.

The Trainer owns the loop, the optimizer step, mixed precision, the data loaders and its own resumable
checkpoints (``trainer/checkpoint-N``: weights, optimizer, scheduler, RNG). This module adds what the
app needs around it: a ``TrainerCallback`` that turns ``on_log``/``on_evaluate`` into our
events, honours the stop file between batches (``control.should_training_stop``) and the test faults,
stops early after ``patience`` epochs without improvement; and, after each epoch's save, the run's
``weights/last`` and ``weights/best`` folders written with ``save_pretrained`` (safetensors, config,
image processor), each reported as its ``model.safetensors`` file. Validation is our own loop
(``adapters.transformers_eval``) so detection mAP and per-image predictions are computed on the
original image coordinates.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

from adapters import faults
from adapters.base import AdapterError, TrainingAdapter, TrainResult, as_test_metrics
from adapters.devices import amp_supported, resolve_device
from adapters.transformers_data import (
    BACKGROUND,
    Augmenter,
    Sample,
    TaskDataset,
    collate,
    load_rgb,
    truth_boxes,
)
from adapters.transformers_eval import PRIMARY_METRIC, Evaluation, evaluate
from adapters.transformers_models import (
    DEFAULT_MODELS,
    SIZE_ARGS,
    TASKS,
    ModelSource,
    build_scratch,
    cached_hub_folder,
    cached_vision_models,
    check_folder,
    folder_task,
    image_processor,
    load_pretrained,
    resolve_source,
    scratch_models,
)
from core.augmentation import augmentation_options
from core.config import ALL_CONFIG_KEYS
from core.contracts import Box, ClassScore, InferenceResult, Mask, class_mask, inference_result
from core.rundir import FOLDER_CHECKPOINT_FILE, CheckpointKind

STATE_FILE = "vp_state.json"  # beside a published checkpoint: epoch, best metric, Trainer checkpoint
WEIGHTS_FILE = FOLDER_CHECKPOINT_FILE  # the file a checkpoint row points at (its folder is the model)
STEP_REPORT_INTERVAL_S = 0.1
STEP_LOGS_PER_EPOCH = 50


def checkpoint_folder(path: Path) -> Path:
    """A checkpoint is a model folder; its row names the folder's ``model.safetensors``."""
    path = Path(path)
    return path.parent if path.is_file() else path


class TransformersAdapter(TrainingAdapter):
    framework = "transformers"
    tasks = TASKS
    default_models: ClassVar[dict[str, str]] = DEFAULT_MODELS
    honoured_keys: ClassVar[frozenset[str]] = frozenset(ALL_CONFIG_KEYS)
    checkpoint_patterns: ClassVar[tuple[str, ...]] = ("*/model.safetensors", "*/config.json",
                                                      "*/model.safetensors.index.json")
    inference_output: ClassVar[dict[str, tuple[str, ...]]] = {
        "classify": ("top_k",), "detect": ("boxes",), "segment": ("masks", "class_mask")}
    model_families: ClassVar[dict[str, tuple[str, ...]]] = {task: tuple(scratch_models(task)) for task in TASKS}
    framework_args_defaults: ClassVar[dict[str, Any]] = dict(SIZE_ARGS)
    accepts_hub_ids: ClassVar[bool] = True
    accepts_paths: ClassVar[bool] = True

    # ------------------------------------------------------------------ registry information
    @classmethod
    def all_models(cls) -> list[str]:
        return scratch_models() + cached_vision_models()

    @classmethod
    def pretrained_available(cls, model: str) -> bool:
        return "/" in model and cached_hub_folder(model) is not None

    @classmethod
    def checkpoint_task(cls, path: Path, *, trusted: bool = False) -> str:
        folder = checkpoint_folder(path)
        check_folder(folder)
        return folder_task(folder)

    # ------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        config = self.config
        # The model is checked first: an uncached Hub id fails before the dataset is read.
        self.source: ModelSource = resolve_source(config.model, config.task, dict(config.framework_args))
        split, dataset_classes = self._split()
        self.class_names = [BACKGROUND, *dataset_classes] if config.task == "segment" else dataset_classes
        if len(dataset_classes) < (2 if config.task == "classify" else 1):
            raise AdapterError(f"{config.dataset}: {config.task} needs at least "
                               f"{2 if config.task == 'classify' else 1} classes, found {len(dataset_classes)}")
        self.class_ids = {name: index for index, name in enumerate(self.class_names)}
        self.train_samples = self._samples(split.train)
        self.val_samples = self._samples(split.val)
        self.test_samples = self._samples(split.test)  # evaluated once, with the best model, after training
        if not self.train_samples:
            raise AdapterError(f"{config.dataset}: no labelled training images for {config.task}")
        if not self.val_samples:
            raise AdapterError(f"{config.dataset}: the validation set is empty; lower the split ratio or add images")
        self.reporter.log(f"{len(self.train_samples)} training and {len(self.val_samples)} validation images, "
                          f"{len(dataset_classes)} classes")
        if self.test_samples:
            self.reporter.log(f"{len(self.test_samples)} test images: evaluated once, with the best checkpoint, "
                              "after training")

    def _split(self) -> tuple[Any, list[str]]:
        index, split = self.read_split()
        return split, list(index.class_names)

    def _samples(self, records: list[Any]) -> list[Sample]:
        samples = []
        for record in records:
            if self.config.task == "classify":
                names = record.labels or record.class_names()
                if not names:
                    self.reporter.warning("image has no class label; skipped", path=str(record.path))
                    continue
                samples.append(Sample(record, self.class_ids[names[0]]))
            else:
                samples.append(Sample(record))  # an image without shapes is all background: kept
        return samples

    # ------------------------------------------------------------------ model
    def prepare_model(self) -> None:
        import torch

        config = self.config
        torch.manual_seed(config.seed)
        self.device = resolve_device(config.device)
        if self.source.kind == "scratch":
            if config.pretrained:
                self.reporter.warning(f"{config.model} has no pretrained weights; training from scratch")
            self.model = build_scratch(self.source, dict(config.framework_args), config.image_size, self.class_names)
        else:
            self.model = load_pretrained(self.source.location, config.task, self.class_names)
        if config.weights:
            self._load_weights_file(Path(config.weights))
        self.processor = image_processor(self.source, config.image_size)
        self.trainer = self._build_trainer()

    def _load_weights_file(self, weights: Path) -> None:
        from safetensors.torch import load_file

        file = weights / WEIGHTS_FILE if weights.is_dir() else weights
        if file.suffix != ".safetensors" or not file.is_file():
            raise AdapterError(f"weights must be a .safetensors file or a folder with {WEIGHTS_FILE}: {weights}")
        state = load_file(str(file))
        own = self.model.state_dict()
        compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not compatible:
            raise AdapterError(f"{file} holds no weights that fit {type(self.model).__name__}")
        self.model.load_state_dict(compatible, strict=False)
        self.reporter.log(f"weights loaded from {file}; {len(state) - len(compatible)} tensors left initialised")

    def _build_trainer(self) -> Any:
        import torch
        from transformers import PrinterCallback, TrainingArguments
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # our events are the progress; keep worker.log readable
        config = self.config
        if self.device.startswith("cuda:"):
            torch.cuda.set_device(int(self.device.split(":")[1]))
        amp = bool(config.amp) and amp_supported(self.device)  # CUDA only: an MPS job trains in float32
        bf16 = bool(amp and torch.cuda.is_bf16_supported())
        steps_per_epoch = math.ceil(len(self.train_samples) / config.batch_size)
        args = TrainingArguments(
            output_dir=str(self.files.trainer), num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, lr_scheduler_type="cosine",
            eval_strategy="epoch", save_strategy="epoch", save_total_limit=2, logging_strategy="steps",
            logging_steps=max(1, steps_per_epoch // STEP_LOGS_PER_EPOCH), report_to="none", disable_tqdm=True,
            seed=config.seed, data_seed=config.seed, dataloader_num_workers=config.workers,
            remove_unused_columns=False, use_cpu=self.device == "cpu", bf16=bf16,
            fp16=amp and not bf16,
        )
        self.callback: Any = _reporting_callback_class()(self, steps_per_epoch)
        trainer_class = _evaluating_trainer_class()
        trainer = trainer_class(
            model=self.model, args=args, data_collator=collate, callbacks=[self.callback],
            train_dataset=TaskDataset(config.task, self.train_samples, self.processor, self.class_ids,
                                      augment=self._augmenter()),
            eval_dataset=TaskDataset(config.task, self.val_samples, self.processor, self.class_ids),
            optimizers=(self._optimizer(), None),
        )
        trainer.remove_callback(PrinterCallback)
        trainer.vp_adapter = self
        return trainer

    def _augmenter(self) -> Augmenter:
        augmentation = self.config.augmentation
        options = augmentation_options("transformers", augmentation.preset, augmentation.options)
        return Augmenter(self.config.task, options, self.config.image_size)

    def _optimizer(self) -> Any:
        import torch

        config = self.config
        params = self.model.parameters()
        if config.optimizer == "sgd":
            return torch.optim.SGD(params, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay)
        if config.optimizer == "adam":
            return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)

    # ------------------------------------------------------------------ training
    def train(self) -> TrainResult:
        resume_from = self._resume_checkpoint() if self.resume else None
        self.trainer.train(resume_from_checkpoint=resume_from)
        callback = self.callback
        return TrainResult(
            status="cancelled" if callback.stopped else "completed",
            epochs_completed=callback.epochs_completed,
            best_metric_name=self.primary_metric,
            best_metric_value=callback.best_metric,
            best_checkpoint=self._folder("best") / WEIGHTS_FILE,
            last_checkpoint=self._folder("last") / WEIGHTS_FILE,
        )

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.config.task]

    def _resume_checkpoint(self) -> str:
        state = self._published_state("last")
        checkpoint = self.files.trainer / str(state.get("trainer_checkpoint", ""))
        if not state or not (checkpoint / "trainer_state.json").is_file():
            raise AdapterError(f"cannot resume: {self._folder('last')} names no Trainer checkpoint in "
                               f"{self.files.trainer}")
        epoch = int(state["epoch"])
        if epoch >= self.config.epochs:
            raise AdapterError(f"nothing to resume: the last checkpoint already holds all {self.config.epochs} epochs")
        self.callback.restore(state)
        self.reporter.log(f"resuming from {checkpoint} at epoch {epoch + 1}")
        return str(checkpoint)

    def validate(self) -> dict[str, float]:
        self.reporter.status("validating", "")
        self.last_evaluation: Evaluation = self._evaluate(self.model, self.val_samples)
        return self.last_evaluation.metrics

    def evaluate_test(self) -> dict[str, float]:
        """``weights/best`` (loaded as saved) on the dataset's test images, by the validation routine."""
        if not self.test_samples:
            return {}
        best = self._folder("best")
        self.best_epoch = int(self._published_state("best").get("epoch") or 0) or self.best_epoch
        self.reporter.status("validating", f"best checkpoint (epoch {self.best_epoch}) on "
                                           f"{len(self.test_samples)} test images")
        model = type(self.model).from_pretrained(str(best)).to(self.device)
        test_set = TaskDataset(self.config.task, self.test_samples, self.processor, self.class_ids)
        return as_test_metrics(self._evaluate(model, self.test_samples, test_set).metrics)

    def _evaluate(self, model: Any, samples: list[Sample], dataset: Any = None) -> Evaluation:
        """``model`` on ``samples`` (as ``dataset``; None: the Trainer's eval set) through the Trainer's
        eval loader: ``val/…`` metrics and the per-image items."""
        context = {"paths": [sample.record.path for sample in samples], "class_names": self.class_names,
                   "processor": self.processor,
                   "truth": [truth_boxes(sample.record.shapes, self.class_ids) for sample in samples]}
        return evaluate(self.config.task, model, self.trainer.get_eval_dataloader(dataset), context)

    # ------------------------------------------------------------------ checkpoints
    def _folder(self, kind: CheckpointKind) -> Path:
        return self.files.checkpoint_dir(kind)

    def _published_state(self, kind: CheckpointKind) -> dict[str, Any]:
        file = self._folder(kind) / STATE_FILE
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    def publish(self, epoch: int, trainer_checkpoint: str, improved: bool) -> None:
        """``weights/last`` (and ``weights/best`` when the epoch improved) as model folders, reported."""
        self.reporter.status("saving", f"epoch {epoch}")
        state = {"epoch": epoch, "task": self.config.task, "best_metric": self.callback.best_metric,
                 "epochs_without_improvement": self.callback.epochs_without_improvement,
                 "trainer_checkpoint": trainer_checkpoint}
        last = self._swap_in("last", lambda staging: self._save_folder(staging, state))
        self.on_model_save("last", last / WEIGHTS_FILE, epoch, self.primary_metric, self.callback.best_metric)
        if improved:
            best = self._swap_in("best", lambda staging: shutil.copytree(last, staging))
            self.on_model_save("best", best / WEIGHTS_FILE, epoch, self.primary_metric, self.callback.best_metric)
            self._write_val_predictions(epoch)

    def _save_folder(self, folder: Path, state: dict[str, Any]) -> None:
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        (folder / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

    def _swap_in(self, kind: CheckpointKind, write: Any) -> Path:
        """Write into a staging folder, then rename over the old one: a kill never leaves half a model."""
        target, (staging, old) = self.files.checkpoint_dir(kind), self.files.checkpoint_dir_swap(kind)
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
        write(staging)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return target

    def _write_val_predictions(self, epoch: int) -> None:
        from core.evaluation import save_val_predictions

        evaluation = getattr(self, "last_evaluation", None)
        if evaluation is None or self.config.task == "segment":
            return
        items = evaluation.classify_items if self.config.task == "classify" else evaluation.detect_items
        target = save_val_predictions(self.files.val_predictions, task=self.config.task, epoch=epoch,
                                      class_names=self.class_names, items=items)
        self.reporter.artifact("val_predictions", target)

    # ------------------------------------------------------------------ inference
    def load_checkpoint(self, path: Path, *, trusted: bool = False) -> None:
        """Any folder is safe to load (safetensors only, no remote code), so ``trusted`` is not needed."""
        from transformers import AutoImageProcessor

        folder = checkpoint_folder(path)
        task = self.checkpoint_task(folder)
        if task != self.config.task:
            raise AdapterError(f"{folder} is a {task} model; this job's task is {self.config.task}")
        self.model = load_pretrained(str(folder), task, None)
        try:
            self.processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True,
                                                                trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{folder} has no usable image processor config: {exc}") from None
        labels = self.model.config.id2label
        self.class_names = [str(labels[key]) for key in sorted(labels, key=int)]
        self.device = resolve_device(self.config.device)
        self.model = self.model.to(self.device).eval()

    def run_inference(self, image: str | Path | bytes, **options: Any) -> InferenceResult:
        import torch

        picture = _decode(image)
        started = time.perf_counter()
        inputs = self.processor(images=picture, return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        task, size = self.config.task, picture.size
        if task == "classify":
            result = inference_result(task, elapsed_ms=_ms(started), image_size=size,
                                      top_k=self._top_k(outputs, int(options.get("top_k", 5))))
            return result
        if task == "detect":
            return inference_result(task, elapsed_ms=_ms(started), image_size=size,
                                    boxes=self._boxes(outputs, size, float(options.get("conf", 0.25))))
        classes, probabilities = self._class_map(outputs, size)
        result = inference_result(task, elapsed_ms=_ms(started), image_size=size,
                                  masks=self._regions(classes, probabilities))
        png = class_mask_png(classes)
        result["class_mask"] = class_mask(png, size, self.class_names, _pixel_counts(classes))
        if options.get("mask_png"):
            result["mask_png"] = png
        return result

    def _top_k(self, outputs: Any, top_k: int) -> list[ClassScore]:
        probabilities = outputs.logits.float().softmax(1)[0].cpu()
        values, indices = probabilities.topk(min(top_k, len(self.class_names)))
        return [{"class_id": int(i), "label": self.class_names[int(i)], "confidence": float(v)}
                for v, i in zip(values.tolist(), indices.tolist(), strict=True)]

    def _boxes(self, outputs: Any, size: tuple[int, int], conf: float) -> list[Box]:
        found = self.processor.post_process_object_detection(outputs, threshold=conf,
                                                             target_sizes=[(size[1], size[0])])[0]
        return [{"x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "confidence": float(s), "class_id": int(k),
                 "label": self.class_names[int(k)]}
                for b, s, k in zip(found["boxes"].float().cpu().tolist(), found["scores"].float().cpu().tolist(),
                                   found["labels"].cpu().tolist(), strict=True)]

    def _class_map(self, outputs: Any, size: tuple[int, int]) -> tuple[Any, Any]:
        """Per-pixel class ids (H, W) and their probabilities, at the original image size."""
        import torch

        logits = torch.nn.functional.interpolate(outputs.logits.float(), size=(size[1], size[0]), mode="bilinear",
                                                 align_corners=False)
        probabilities, classes = logits.softmax(1)[0].max(0)
        return classes.cpu().numpy().astype("uint8"), probabilities.cpu().numpy()

    def _regions(self, classes: Any, probabilities: Any) -> list[Mask]:
        """Each connected region of a class (background excluded) as a polygon, for the canvas."""
        import cv2
        import numpy as np

        masks: list[Mask] = []
        for class_id in (int(v) for v in np.unique(classes) if v != 0):
            inside = (classes == class_id).astype(np.uint8)
            confidence = float(probabilities[inside.astype(bool)].mean())
            contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                if len(contour) >= 3:
                    masks.append({"class_id": class_id, "label": self.class_names[class_id], "confidence": confidence,
                                  "polygon": contour.reshape(-1, 2).astype(float).tolist()})
        return masks


def _pixel_counts(classes: Any) -> dict[int, int]:
    import numpy as np

    counts = np.bincount(classes.ravel())
    return {index: int(count) for index, count in enumerate(counts.tolist()) if count}


def class_mask_png(classes: Any) -> bytes:
    """The mask as an 8-bit PNG whose pixel value is the class id (0 = background)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(classes, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(image: str | Path | bytes) -> Any:
    from PIL import Image

    from core.datasets.images import MAX_IMAGE_BYTES

    if not isinstance(image, bytes):
        return load_rgb(Path(image))
    if len(image) > MAX_IMAGE_BYTES:
        raise AdapterError(f"image is {len(image) / 1e6:.1f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB")
    with Image.open(io.BytesIO(image)) as opened:
        return opened.convert("RGB")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _evaluating_trainer_class() -> type:
    """``Trainer`` whose ``evaluate`` is the adapter's validation (our metric names, per-image items)."""
    from transformers import Trainer

    class _EvaluatingTrainer(Trainer):  # type: ignore[misc]
        vp_adapter: TransformersAdapter

        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> Any:
            metrics = self.vp_adapter.validate()
            self.log(dict(metrics))
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics=metrics)
            return metrics

    return _EvaluatingTrainer


def _reporting_callback_class() -> type:
    """The ``TrainerCallback`` (a class built on first use: importing transformers takes seconds, and the
    model-list helper imports this module without training anything)."""
    from transformers import TrainerCallback

    class ReportingCallback(TrainerCallback):  # type: ignore[misc]
        """Trainer events → our events; the stop file, faults and early stopping."""

        def __init__(self, adapter: TransformersAdapter, steps_per_epoch: int) -> None:
            self.adapter = adapter
            self.reporter = adapter.reporter
            self.steps_per_epoch = max(1, steps_per_epoch)
            self.stopped = False
            self.best_metric: float | None = None
            self.epochs_without_improvement = 0
            self.epochs_completed = 0
            self.improved = False
            self.loss_sum = 0.0
            self.loss_steps = 0
            self.last_logged_step = 0
            self.lr: float | None = None
            self.last_report = 0.0

        def restore(self, state: dict[str, Any]) -> None:
            self.best_metric = state.get("best_metric")
            self.epochs_without_improvement = int(state.get("epochs_without_improvement", 0))
            self.epochs_completed = int(state["epoch"])

        def _epoch(self, state: Any) -> int:
            return max(1, math.ceil(float(state.epoch or 0) - 1e-9))

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.last_logged_step = state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if not logs or "loss" not in logs:
                return
            steps = max(1, state.global_step - self.last_logged_step)
            self.last_logged_step = state.global_step
            self.loss_sum += float(logs["loss"]) * steps
            self.loss_steps += steps
            self.lr = float(logs.get("learning_rate", self.lr or 0.0))
            self.reporter.metrics({"train/loss": float(logs["loss"]), "lr": self.lr}, epoch=self._epoch(state),
                                  step=state.global_step, kind="step")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            step_in_epoch = (state.global_step - 1) % self.steps_per_epoch + 1
            now = time.monotonic()
            if now - self.last_report >= STEP_REPORT_INTERVAL_S or step_in_epoch == self.steps_per_epoch:
                self.last_report = now
                self.reporter.progress(self._epoch(state), args.num_train_epochs, step_in_epoch, self.steps_per_epoch)
            faults.after_batch(state.global_step, self.reporter.should_stop)
            if self.reporter.should_stop():
                self.stopped = True
                control.should_training_stop = True

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.stopped:  # a stopped epoch is incomplete: neither validated nor saved
                control.should_evaluate = False
                control.should_save = False
                control.should_log = False
                return
            control.should_log = True  # the epoch's last steps' loss is logged before validation
            self.adapter.on_train_epoch_end(self._epoch(state), {})

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            epoch = round(float(state.epoch or 0))
            values = dict(metrics or {})
            if self.loss_steps:
                values["train/loss"] = self.loss_sum / self.loss_steps
            if self.lr is not None:
                values["lr"] = self.lr
            self.loss_sum, self.loss_steps = 0.0, 0
            self.adapter.on_fit_epoch_end(epoch, values)
            self._track_best(values.get(self.adapter.primary_metric), control)

        def _track_best(self, value: float | None, control: Any) -> None:
            self.improved = value is not None and (self.best_metric is None or value > self.best_metric)
            if self.improved:
                self.best_metric, self.epochs_without_improvement = value, 0
            else:
                self.epochs_without_improvement += 1
            patience = self.adapter.config.patience
            if patience and self.epochs_without_improvement >= patience:
                self.reporter.log(f"early stopping: {self.adapter.primary_metric} did not improve for {patience} epochs")
                control.should_training_stop = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            epoch = round(float(state.epoch or 0))
            self.epochs_completed = epoch
            self.adapter.publish(epoch, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}", self.improved)

    return ReportingCallback
