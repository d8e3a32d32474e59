"""timm image classification.

Data path (``adapters.timm_data``): images are decoded and resized once, in parallel threads, into one
uint8 tensor held in memory when it fits the job's memory budget, so an epoch is pure tensor indexing —
the plain PIL pipeline reaches only about a third of a GPU's synthetic rate. A larger set streams from
disk (``workers`` loader processes). Augmentation (``adapters.timm_augment``: the job's preset of timm's
own transforms, per-sample random parameters on a whole batch) and normalisation happen on the device.
"""

from __future__ import annotations

import difflib
import io
import random
import time
from pathlib import Path
from typing import Any, ClassVar

from adapters import faults
from adapters.base import AdapterError, TrainingAdapter, TrainResult, as_test_metrics, atomic_write_bytes
from adapters.checkpoint_writer import CheckpointWriter
from adapters.devices import amp_supported, device_type, resolve_device
from adapters.timm_data import BatchSource, cache_side_for, open_source
from adapters.timm_data import decode_resized as _decode_resized  # also used by adapters.export_models
from core.config import ALL_CONFIG_KEYS
from core.contracts import ClassifyValItem, InferenceResult, inference_result
from core.files import sha256_bytes

CHECKPOINT_FORMAT = 1
STEP_REPORT_INTERVAL_S = 0.1  # per-step events at most ~10 Hz: no host sync per batch on a GPU


def _timm() -> Any:
    import timm

    return timm


def _torch() -> Any:
    import torch

    return torch


class TimmAdapter(TrainingAdapter):
    framework = "timm"
    tasks = ("classify",)
    default_models: ClassVar[dict[str, str]] = {"classify": "resnet18"}
    # No model option is passed on; ``workers`` are the loader processes of a streamed dataset.
    honoured_keys: ClassVar[frozenset[str]] = frozenset(ALL_CONFIG_KEYS) - {"framework_args"}
    checkpoint_patterns: ClassVar[tuple[str, ...]] = ("*.pt", "*.pth", "*.pth.tar", "*.safetensors", "*.bin")
    inference_output: ClassVar[dict[str, tuple[str, ...]]] = {"classify": ("top_k",)}

    # ------------------------------------------------------------------ registry information
    @classmethod
    def warm_up(cls) -> None:
        """What a standby worker imports before its job is known (``core.jobs.spawn``): everything
        training needs before its first step, so none of it is left for after the handover. (Decoding
        the images meanwhile, in a thread, was measured too: the GIL it took slowed the imports by
        about what it saved later.)"""
        import numpy  # noqa: F401
        import PIL.Image  # noqa: F401

        import adapters.timm_augment  # noqa: F401
        import core.datasets  # noqa: F401

        _timm()

    @classmethod
    def all_models(cls) -> list[str]:
        return list(_timm().list_models())

    @classmethod
    def pretrained_available(cls, model: str) -> bool:
        return _cached_pretrained_file(model) is not None

    # ------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        config = self.config
        index, split = self.read_split()
        self.class_names = list(index.class_names)
        if len(self.class_names) < 2:
            raise AdapterError(f"{config.dataset}: classification needs at least 2 classes, found {len(self.class_names)}")
        class_ids = {name: i for i, name in enumerate(self.class_names)}

        def labelled(records: list[Any]) -> list[tuple[Path, int]]:
            items = []
            for record in records:
                names = record.labels or record.class_names()
                if not names:
                    self.reporter.warning("image has no class label; skipped", path=str(record.path))
                    continue
                items.append((Path(record.path), class_ids[names[0]]))
            return items

        self.train_items = labelled(split.train)
        self.val_items = labelled(split.val)
        self.test_items = labelled(split.test)  # decoded only after training (evaluate_test)
        if not self.train_items:
            raise AdapterError(f"{config.dataset}: no labelled training images")
        if not self.val_items:
            raise AdapterError(f"{config.dataset}: the validation set is empty; lower the split ratio or add images")
        self.reporter.log(
            f"{len(self.train_items)} training and {len(self.val_items)} validation images, {len(self.class_names)} classes"
        )
        if self.test_items:
            self.reporter.log(f"{len(self.test_items)} test images: evaluated once, with the best checkpoint, after training")
        self.data = self._open_source(self.train_items, self.val_items)
        self.reporter.log(f"training data: {self.data.plan.describe(config.workers)} ({self.data.where()})")

    def _cache_side(self) -> int:
        """The side images are decoded at (an augmentation that crops needs a larger one)."""
        return cache_side_for(self._augmentation_options(), self.config.image_size)

    def _augmentation_options(self) -> dict[str, Any]:
        from core.augmentation import augmentation_options
        from core.config import ConfigError

        augmentation = self.config.augmentation
        try:
            return augmentation_options("timm", augmentation.preset, augmentation.options)
        except ConfigError as exc:
            raise AdapterError(str(exc)) from None

    def _open_source(self, train: list[tuple[Path, int]], val: list[tuple[Path, int]]) -> BatchSource:
        """Batches from a decoded cache when it fits the memory budget (Settings, via job.json), else streamed."""
        from core.settings import memory_budget_bytes

        budget = memory_budget_bytes(int(self.files.read_job_info().get("memory_budget_mb", 0)))
        return open_source(train, val, side=self._cache_side(), budget_bytes=budget,
                           device=resolve_device(self.config.device), workers=self.config.workers,
                           warn=self.reporter.warning)

    # ------------------------------------------------------------------ model
    def prepare_model(self) -> None:
        torch = _torch()
        timm = _timm()
        config = self.config
        if not timm.is_model(config.model):
            close = difflib.get_close_matches(config.model, timm.list_models(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AdapterError(f"unknown timm model {config.model!r}{hint}")
        self.device = resolve_device(config.device)
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        pretrained_file = None
        if config.pretrained and not config.weights:
            pretrained_file = _cached_pretrained_file(config.model)
            if pretrained_file is None:
                raise AdapterError(
                    f"pretrained weights for {config.model!r} are not on this computer and downloads are off. "
                    "Import a weights file (.safetensors or .pth) or train from scratch (pretrained: false)."
                )
        model = timm.create_model(config.model, pretrained=False, num_classes=len(self.class_names))
        if pretrained_file is not None:
            _load_state_dict_file(model, pretrained_file, self.reporter)
        if config.weights:
            weights = Path(config.weights)
            if not weights.is_file():
                raise AdapterError(f"weights file not found: {weights}")
            _load_state_dict_file(model, weights, self.reporter)
        data_cfg = timm.data.resolve_data_config({}, model=model)
        self.mean = torch.tensor(data_cfg["mean"]).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(data_cfg["std"]).view(1, 3, 1, 1) * 255
        self.use_cuda = self.device.startswith("cuda")
        # channels_last: the fast convolution layout of cuDNN and of oneDNN on the CPU (about a fifth
        # less CPU per image than NCHW for a ResNet; bench/bench_large_dataset.py); not on MPS
        self.channels_last = self.use_cuda or self.device == "cpu"
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        self.augment = self._make_augment(data_cfg)
        self.amp_dtype = None
        if amp_supported(self.device) and config.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        params = self.model.parameters()
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay)
        elif config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.epochs)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        self.start_epoch = 1
        self.checkpoints = CheckpointWriter()
        self.best_metric: float | None = None
        self.epochs_without_improvement = 0
        if self.resume:
            self._restore_for_resume()

    def _restore_for_resume(self) -> None:
        last = self.files.last
        if not last.is_file():
            raise AdapterError(f"cannot resume: {last} does not exist")
        state = self._read_checkpoint(last)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.T_max = self.config.epochs  # "extend by N epochs" stretches the schedule
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best_metric = state.get("best_metric")
        if self.start_epoch > self.config.epochs:
            raise AdapterError(f"nothing to resume: last.pt already holds all {self.config.epochs} epochs")
        self.reporter.log(f"resuming from {last} at epoch {self.start_epoch}")

    def _make_augment(self, data_cfg: dict[str, Any]) -> Any:
        from adapters.timm_augment import TimmAugment

        try:
            return TimmAugment(self._augmentation_options(), self.config.image_size, self.device,
                               num_classes=len(self.class_names), mean=tuple(data_cfg["mean"]),
                               std=tuple(data_cfg["std"]), seed=self.config.seed)
        except ValueError as exc:
            raise AdapterError(str(exc)) from None

    # ------------------------------------------------------------------ training
    def _channels_last(self, batch: Any) -> Any:
        return batch.contiguous(memory_format=_torch().channels_last) if self.channels_last else batch

    def _normalise(self, batch: Any) -> Any:
        torch = _torch()
        batch = batch.to(self.device, non_blocking=True).float()
        batch = (batch - self.mean) / self.std
        if self.use_cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def train(self) -> TrainResult:
        with self.checkpoints:  # every checkpoint written (or its failure raised) before the result
            return self._train_epochs()

    def _train_epochs(self) -> TrainResult:
        torch = _torch()
        config = self.config
        steps = self.data.steps_per_epoch(config.batch_size)
        loss_fn = self.augment.loss_fn()
        epochs_completed = self.start_epoch - 1
        status = "completed"
        global_step = (self.start_epoch - 1) * steps
        for epoch in range(self.start_epoch, config.epochs + 1):
            # Same order on every machine for a given seed and epoch, cached or streamed (resume reproduces it).
            batches = self.data.train_batches(config.seed, epoch, config.batch_size)
            self.augment.reseed(config.seed * 100_003 + epoch)
            self.model.train()
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
            seen = 0
            last_report = 0.0
            stopped = False
            for step, (images, target) in enumerate(batches, start=1):
                if self.reporter.should_stop():
                    stopped = True
                    break
                target = target.to(self.device, non_blocking=True)  # there already, but on mps
                batch, augmented_target = self.augment.train_batch(images, target)  # soft under mixup/cutmix
                batch = self._channels_last(batch)
                with torch.autocast(device_type=device_type(self.device), dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    output = self.model(batch)
                    loss = loss_fn(output, augmented_target)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                global_step += 1
                loss_sum += loss.detach() * target.shape[0]
                correct += (output.detach().argmax(1) == target).sum()
                seen += target.shape[0]
                now = time.monotonic()
                if now - last_report >= STEP_REPORT_INTERVAL_S or step == steps:
                    last_report = now
                    self.reporter.metrics(
                        {"train/loss": float(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"]},
                        epoch=epoch, step=global_step, kind="step",
                    )
                    self.reporter.progress(epoch, config.epochs, step, steps)
                faults.after_batch(global_step, self.reporter.should_stop)
                self.checkpoints.raise_if_failed()  # a full disk in the last epoch's write stops the job now
            if stopped:
                status = "cancelled"
                break
            train_metrics = {"train/loss": float(loss_sum) / max(seen, 1), "train/accuracy": float(correct) / max(seen, 1)}
            self.on_train_epoch_end(epoch, train_metrics)
            self.reporter.status("validating", f"epoch {epoch}")
            val_metrics = self.validate()
            metrics = {**train_metrics, **val_metrics, "lr": self.optimizer.param_groups[0]["lr"]}
            self.scheduler.step()
            self.on_fit_epoch_end(epoch, metrics)
            improved = self.best_metric is None or metrics["val/accuracy"] > self.best_metric
            if improved:
                self.best_metric = metrics["val/accuracy"]
                self.epochs_without_improvement = 0
            else:
                self.epochs_without_improvement += 1
            self._save(epoch, best=improved)
            if improved:
                self._write_val_predictions(epoch)
            epochs_completed = epoch
            if config.patience and self.epochs_without_improvement >= config.patience:
                self.reporter.log(f"early stopping: val/accuracy did not improve for {config.patience} epochs")
                break
        self.data.close()  # a stream's loader processes (the test set has its own source)
        return TrainResult(
            status=status,
            epochs_completed=epochs_completed,
            best_metric_name="val/accuracy",
            best_metric_value=self.best_metric,
            best_checkpoint=self.files.best,
            last_checkpoint=self.files.last,
        )

    def validate(self) -> dict[str, float]:
        return self._evaluate(self.data)

    def evaluate_test(self) -> dict[str, float]:
        """best.pt on the dataset's test images, decoded now (never held during training)."""
        if not self.test_items:
            return {}
        state = self._read_checkpoint(self.files.best)
        self.model.load_state_dict(state["model"])
        self.best_epoch = int(state["epoch"])
        self.reporter.status("validating", f"best checkpoint (epoch {self.best_epoch}) on {len(self.test_items)} test images")
        test = self._open_source([], self.test_items)
        try:
            return as_test_metrics(self._evaluate(test))
        finally:
            test.close()

    def _evaluate(self, source: BatchSource) -> dict[str, float]:
        """Loss, top-1 (and top-5 from 5 classes) of the current model on ``source``'s validation
        batches, as ``val/…``."""
        torch = _torch()
        self.model.eval()
        seen = 0
        loss_sum = 0.0
        top1 = 0
        top5 = 0
        probabilities = []
        with torch.no_grad(), torch.autocast(device_type=device_type(self.device), dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            for images, target in source.val_batches(self.config.batch_size):
                batch = self._channels_last(self.augment.eval_batch(images))
                target = target.to(self.device, non_blocking=True)
                seen += target.shape[0]
                output = self.model(batch).float()
                probabilities.append(output.softmax(1).cpu())
                loss_sum += float(torch.nn.functional.cross_entropy(output, target, reduction="sum"))
                top1 += int((output.argmax(1) == target).sum())
                if len(self.class_names) >= 5:
                    top5 += int((output.topk(5, dim=1).indices == target.view(-1, 1)).any(1).sum())
        self.last_val_probabilities = torch.cat(probabilities) if probabilities else None
        count = max(seen, 1)
        metrics = {"val/loss": loss_sum / count, "val/accuracy": top1 / count}
        if len(self.class_names) >= 5:
            metrics["val/top5"] = top5 / count
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "app": "vision-platform",
            "format": CHECKPOINT_FORMAT,
            "framework": "timm",
            "model_name": self.config.model,
            "class_names": list(self.class_names),
            "image_size": self.config.image_size,
            "mean": [float(v) for v in (self.mean.flatten() / 255).tolist()],
            "std": [float(v) for v in (self.std.flatten() / 255).tolist()],
            "epoch": epoch,
            "best_metric": self.best_metric,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }

    def _save(self, epoch: int, *, best: bool) -> None:
        """Serialise now (training changes the tensors next); hash, write and record in the writer's thread."""
        torch = _torch()
        self.reporter.status("saving", f"epoch {epoch}")
        buffer = io.BytesIO()
        torch.save(self._state(epoch), buffer)
        self.checkpoints.submit(self._write_checkpoint, buffer.getvalue(), epoch, best, self.best_metric)

    def _write_checkpoint(self, data: bytes, epoch: int, best: bool, best_metric: float | None) -> None:
        digest = sha256_bytes(data)  # of the bytes written: no read-back of either file
        last = self.files.last
        atomic_write_bytes(last, data)
        self.on_model_save("last", last, epoch, "val/accuracy", best_metric, sha256=digest)
        if best:
            best_path = self.files.best
            atomic_write_bytes(best_path, data)
            self.on_model_save("best", best_path, epoch, "val/accuracy", best_metric, sha256=digest)

    def _write_val_predictions(self, epoch: int) -> None:
        """Per-image validation predictions of the best model: the GUI's interactive confusion matrix
        and PR curves are built from this file (core.evaluation)."""
        from core.evaluation import save_val_predictions

        probabilities = self.last_val_probabilities
        if probabilities is None:
            return
        items: list[ClassifyValItem] = [
            {"path": str(path), "true": int(label), "pred": int(row.argmax()), "scores": [round(float(v), 5) for v in row]}
            for (path, label), row in zip(self.data.val_items(), probabilities, strict=True)
        ]
        target = save_val_predictions(self.files.val_predictions, task="classify", epoch=epoch,
                                      class_names=self.class_names, items=items)
        self.reporter.artifact("val_predictions", target)

    @staticmethod
    def _read_checkpoint(path: Path) -> dict[str, Any]:
        torch = _torch()
        try:
            # weights_only=True: a checkpoint is data, never code (CVE-2025-32434 class of attacks).
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AdapterError(f"{path} is not a readable checkpoint: {exc}") from None
        if not isinstance(state, dict) or state.get("app") != "vision-platform" or "model" not in state:
            raise AdapterError(f"{path} is not a Vision Platform timm checkpoint")
        return state

    def load_checkpoint(self, path: Path, *, trusted: bool = False) -> None:
        """Load for inference. Safe for any file (weights_only), so ``trusted`` is not needed here."""
        torch = _torch()
        timm = _timm()
        state = self._read_checkpoint(Path(path))
        if state.get("framework") != "timm":
            raise AdapterError(f"{path} is a {state.get('framework')} checkpoint, not timm")
        self.class_names = list(state["class_names"])
        model = timm.create_model(state["model_name"], pretrained=False, num_classes=len(self.class_names))
        model.load_state_dict(state["model"])
        self.device = resolve_device(self.config.device)
        self.model = model.to(self.device).eval()
        self.inference_size = int(state["image_size"])
        self.mean = torch.tensor(state["mean"]).view(1, 3, 1, 1).to(self.device) * 255
        self.std = torch.tensor(state["std"]).view(1, 3, 1, 1).to(self.device) * 255
        self.use_cuda = self.device.startswith("cuda")
        self.channels_last = False  # inference: _normalise lays out the input for the model as loaded

    def run_inference(self, image: str | Path | bytes, **options: Any) -> InferenceResult:
        import numpy as np
        from PIL import Image

        from core.datasets.images import MAX_IMAGE_BYTES, check_image_limits

        torch = _torch()
        top_k = int(options.get("top_k", 5))
        started = time.perf_counter()
        if isinstance(image, bytes):
            if len(image) > MAX_IMAGE_BYTES:
                raise AdapterError(f"image is {len(image) / 1e6:.1f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB")
            with Image.open(io.BytesIO(image)) as opened:
                width, height = opened.size
                resized = opened.convert("RGB").resize((self.inference_size, self.inference_size), Image.Resampling.BILINEAR)
            array = np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).copy()
        else:
            check_image_limits(Path(image))
            with Image.open(image) as pil_image:
                width, height = pil_image.size
            array = _decode_resized(Path(image), self.inference_size)
        batch = torch.from_numpy(array).unsqueeze(0)
        with torch.no_grad():
            probabilities = self.model(self._normalise(batch)).float().softmax(1)[0].cpu()
        k = min(top_k, len(self.class_names))
        values, indices = probabilities.topk(k)
        return inference_result(
            "classify", elapsed_ms=(time.perf_counter() - started) * 1000, image_size=(width, height),
            top_k=[{"class_id": int(i), "label": self.class_names[int(i)], "confidence": float(v)}
                   for v, i in zip(values.tolist(), indices.tolist(), strict=True)],
        )


def _cached_pretrained_file(model_name: str) -> Path | None:
    """The weights file of ``model_name`` if timm's Hugging Face cache has it (never downloads)."""
    timm = _timm()
    try:
        cfg = timm.models.get_pretrained_cfg(model_name)
    except Exception:
        return None
    if cfg is None or not getattr(cfg, "hf_hub_id", None):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo_id = cfg.hf_hub_id.split("@")[0]
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _load_state_dict_file(model: Any, path: Path, reporter: Any) -> None:
    """Load a state dict (safetensors or a torch file with weights_only=True); a classifier of another
    size is left freshly initialised, so ImageNet weights fine-tune on any number of classes."""
    torch = _torch()
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AdapterError(f"{path} cannot be read as a weights file: {exc}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = model.state_dict()
    compatible = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(compatible))
    if not compatible:
        raise AdapterError(f"{path} holds no weights that fit {type(model).__name__}")
    model.load_state_dict(compatible, strict=False)
    if skipped:
        reporter.log(f"weights loaded from {path.name}; {len(skipped)} tensors of another shape left initialised")
