"""Validation of a transformers model, per task: our metric names and per-image predictions.

Runs over the Trainer's eval loader (its collator and loader workers) with the model in eval mode.
Names follow the other adapters: ``val/loss``, ``val/accuracy``/``val/top5`` (classification),
``val/map50_95``/``val/map50`` (detection, COCO mAP via torchmetrics), ``val/miou``,
``val/pixel_accuracy`` and ``val/iou/<class>`` (segmentation). Classification and detection also keep
the items of ``val_predictions.json`` (``core.contracts``) for the best model's confusion matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.contracts import ClassifyValItem, DetectionValItem

PRIMARY_METRIC = {"classify": "val/accuracy", "detect": "val/map50_95", "segment": "val/miou"}
RAW_DETECTION_THRESHOLD = 0.001  # keep low-confidence boxes: the PR curves span every threshold
TOP5_MIN_CLASSES = 5


@dataclass
class Evaluation:
    metrics: dict[str, float]
    classify_items: list[ClassifyValItem] = field(default_factory=list)
    detect_items: list[DetectionValItem] = field(default_factory=list)


class _Accumulator(Protocol):
    def add(self, batch: dict[str, Any], outputs: Any) -> None: ...

    def result(self) -> Evaluation: ...


def _to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    moved: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, list):
            moved[key] = [{k: v.to(device) for k, v in item.items()} for item in value]
        else:
            moved[key] = value.to(device)
    return moved


def evaluate(task: str, model: Any, loader: Iterable[dict[str, Any]], context: dict[str, Any]) -> Evaluation:
    """``context``: ``paths`` (val image paths in loader order), ``class_names``, ``processor``,
    ``truth`` (detection: ``[class, x1, y1, x2, y2]`` rows per image)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    runners: dict[str, Callable[[dict[str, Any]], _Accumulator]] = {"classify": _Classify, "detect": _Detect, "segment": _Segment}
    runner = runners[task](context)
    with torch.no_grad():
        for batch in loader:
            batch = _to_device(batch, device)
            outputs = model(**batch)
            runner.add(batch, outputs)
    return runner.result()


class _Classify:
    def __init__(self, context: dict[str, Any]) -> None:
        self.paths = context["paths"]
        self.class_count = len(context["class_names"])
        self.loss_sum = 0.0
        self.probabilities: list[Any] = []
        self.targets: list[Any] = []

    def add(self, batch: dict[str, Any], outputs: Any) -> None:
        self.loss_sum += float(outputs.loss) * len(batch["labels"])
        self.probabilities.append(outputs.logits.float().softmax(1).cpu())
        self.targets.append(batch["labels"].cpu())

    def result(self) -> Evaluation:
        import torch

        probabilities, targets = torch.cat(self.probabilities), torch.cat(self.targets)
        count = max(len(targets), 1)
        metrics = {"val/loss": self.loss_sum / count,
                   "val/accuracy": float((probabilities.argmax(1) == targets).sum()) / count}
        if self.class_count >= TOP5_MIN_CLASSES:
            hits = (probabilities.topk(5, dim=1).indices == targets.view(-1, 1)).any(1)
            metrics["val/top5"] = float(hits.sum()) / count
        items: list[ClassifyValItem] = [
            {"path": str(path), "true": int(target), "pred": int(row.argmax()),
             "scores": [round(float(v), 5) for v in row]}
            for path, target, row in zip(self.paths, targets.tolist(), probabilities, strict=True)
        ]
        return Evaluation(metrics, classify_items=items)


class _Detect:
    def __init__(self, context: dict[str, Any]) -> None:
        from torchmetrics.detection import MeanAveragePrecision

        self.paths = context["paths"]
        self.truth: list[list[list[float]]] = context["truth"]
        self.processor = context["processor"]
        self.mean_ap = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
        self.loss_sum = 0.0
        self.items: list[DetectionValItem] = []

    def add(self, batch: dict[str, Any], outputs: Any) -> None:
        import torch

        sizes = [tuple(int(v) for v in target["orig_size"].tolist()) for target in batch["labels"]]
        self.loss_sum += float(outputs.loss) * len(sizes)
        found = self.processor.post_process_object_detection(outputs, threshold=RAW_DETECTION_THRESHOLD,
                                                             target_sizes=sizes)
        for result in found:
            position = len(self.items)
            truth = torch.tensor(self.truth[position], dtype=torch.float32).reshape(-1, 5)
            boxes, scores, labels = result["boxes"].float().cpu(), result["scores"].float().cpu(), result["labels"].cpu()
            self.mean_ap.update([{"boxes": boxes, "scores": scores, "labels": labels}],
                                [{"boxes": truth[:, 1:], "labels": truth[:, 0].long()}])
            self.items.append({
                "path": str(self.paths[position]), "truth": truth.tolist(),
                "predictions": [[int(k), round(float(s), 5), *[round(float(v), 2) for v in b]]
                                for b, s, k in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True)],
            })

    def result(self) -> Evaluation:
        computed = self.mean_ap.compute()
        metrics = {"val/loss": self.loss_sum / max(len(self.items), 1),
                   "val/map50_95": max(float(computed["map"]), 0.0), "val/map50": max(float(computed["map_50"]), 0.0)}
        return Evaluation(metrics, detect_items=self.items)


class _Segment:
    def __init__(self, context: dict[str, Any]) -> None:
        import torch

        self.class_names: list[str] = context["class_names"]
        count = len(self.class_names)
        self.confusion = torch.zeros((count, count), dtype=torch.long)
        self.loss_sum = 0.0
        self.images = 0

    def add(self, batch: dict[str, Any], outputs: Any) -> None:
        import torch

        labels = batch["labels"]
        self.loss_sum += float(outputs.loss) * len(labels)
        self.images += len(labels)
        logits = torch.nn.functional.interpolate(outputs.logits.float(), size=labels.shape[-2:], mode="bilinear",
                                                 align_corners=False)
        predicted = logits.argmax(1).cpu().flatten()
        truth = labels.cpu().flatten()
        count = len(self.class_names)
        valid = (truth >= 0) & (truth < count)
        pairs = truth[valid] * count + predicted[valid]
        self.confusion += torch.bincount(pairs, minlength=count * count).reshape(count, count)

    def result(self) -> Evaluation:
        confusion = self.confusion.double()
        hits = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - hits
        present = union > 0
        iou = hits / union.clamp(min=1)
        metrics = {"val/loss": self.loss_sum / max(self.images, 1),
                   "val/miou": float(iou[present].mean()) if bool(present.any()) else 0.0,
                   "val/pixel_accuracy": float(hits.sum() / confusion.sum().clamp(min=1))}
        for index, name in enumerate(self.class_names):
            if bool(present[index]):
                metrics[f"val/iou/{name}"] = float(iou[index])
        return Evaluation(metrics)
