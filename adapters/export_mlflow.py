"""The checkpoint as an MLflow model folder (the design document's ``mlflow.pytorch.log_model(model, "model")``).

Written by the export worker, which has the framework loaded; the export service logs the folder to
the job's run and registers it (this module never talks to a tracking store: a folder is a file
format). pytorch flavour for timm and Ultralytics (one output tensor, which MLflow's pyfunc
requires: the logits; YOLO's ``output0``), transformers flavour (an image-classification pipeline)
for transformers classifiers, pytorch flavour for the other transformers tasks (DETR: logits and
boxes concatenated on the last axis). Each has a signature and a real validation image as input example.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import AdapterError
from core.launch import disable_telemetry


def _single_output_class() -> Any:
    import torch

    class SingleOutput(torch.nn.Module):
        """The subject's raw outputs as one tensor (pyfunc needs exactly one)."""

        def __init__(self, inner: Any, framework: str) -> None:
            super().__init__()
            self.inner = inner
            self.framework = framework

        def forward(self, images: Any) -> Any:
            outputs = self.inner(images)
            if self.framework == "ultralytics":
                return outputs[0] if isinstance(outputs, (tuple, list)) else outputs
            return outputs[0] if len(outputs) == 1 else torch.cat(list(outputs), dim=-1)

    return SingleOutput


def _example(subject: Any, val_images: list[str]) -> Any:
    images = [Path(p) for p in val_images if Path(p).is_file()]
    if not images:
        raise AdapterError("an MLflow model needs a validation image of the job as its input example; none is here")
    return subject.preprocess(images[0])


def _pytorch_model(subject: Any, target: Path, example: Any) -> Path:
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    inner = subject.model if subject.framework == "ultralytics" else subject.module
    model = _single_output_class()(inner, subject.framework).eval()
    with torch.no_grad():
        output = model(torch.from_numpy(example)).float().numpy()
    mlflow.pytorch.save_model(model, str(target), signature=infer_signature(example, output), input_example=example,
                              metadata=_metadata(subject))
    return target


def _transformers_model(subject: Any, target: Path, val_images: list[str]) -> Path:
    import mlflow.transformers
    from mlflow.models import infer_signature
    from transformers import pipeline

    classifier = pipeline("image-classification", model=subject.adapter.model, image_processor=subject.processor,
                          device="cpu")
    images = [str(p) for p in val_images if Path(p).is_file()][:1]
    if not images:
        raise AdapterError("an MLflow model needs a validation image of the job as its input example; none is here")
    signature = infer_signature(images, [{"label": subject.class_names[0], "score": 1.0}])
    mlflow.transformers.save_model(classifier, str(target), signature=signature, input_example=images,
                                   metadata=_metadata(subject))
    return target


def _metadata(subject: Any) -> dict[str, Any]:
    return {"framework": subject.framework, "vision_task": subject.task, "class_names": list(subject.class_names),
            "image_size": subject.size}


def save_mlflow_model(subject: Any, target: Path, val_images: list[str]) -> Path:
    """Write the MLflow model folder at ``target`` (replacing an older one)."""
    import os

    disable_telemetry(os.environ)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if subject.framework == "transformers" and subject.task == "classify":
        return _transformers_model(subject, target, val_images)
    return _pytorch_model(subject, target, np.ascontiguousarray(_example(subject, val_images), dtype=np.float32))
