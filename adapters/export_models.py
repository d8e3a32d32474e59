"""What export needs of each framework: the eager reference model, its input, its exporter, its card.

A :class:`Subject` is a checkpoint loaded with its adapter's own code (so the eager model is exactly
what inference runs), wrapped so that it takes one image tensor and returns a tuple of raw output
tensors. timm and transformers are exported with ``torch.onnx.export`` (the TorchScript-based
exporter: offline, CPU, opset ``ONNX_OPSET``) and ``torch.jit.trace``; Ultralytics with its own
exporter, which embeds the class names, task and image size in the file.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from adapters.base import AdapterError
from core.config import config_from_dict
from core.exports import MATCH_SCORE, ONNX_OPSET
from core.reporter import NullReporter

INPUT_NAME = "images"


def _torch() -> Any:
    import torch

    return torch


def _adapter(framework: str, task: str, device: str = "cpu") -> Any:
    from adapters.registry import get_adapter_class

    config = config_from_dict({"dataset": tempfile.gettempdir(), "framework": framework, "task": task,
                               "device": device}, source="export")
    return get_adapter_class(framework)(config, Path(tempfile.mkdtemp(prefix="vp-export-")), NullReporter())


def _tupled(function: Any) -> Any:
    """An ``nn.Module`` whose forward is ``function(images)`` returning a tuple of tensors."""
    base: Any = _torch().nn.Module

    class Tupled(base):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, images: Any) -> Any:
            return function(self.inner, images)

    return Tupled


def torch_export(module: Any, example: Any, target: Path, fmt: str, output_names: list[str], dynamic: bool) -> Path:
    """ONNX (opset ``ONNX_OPSET``) or TorchScript (trace) of an eager module; warnings go to stderr."""
    torch = _torch()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            torch.jit.trace(module, example, strict=False, check_trace=False).save(str(target))
            return target
        axes = {INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in output_names}} if dynamic else None
        torch.onnx.export(module, (example,), str(target), opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
                          output_names=output_names, dynamic_axes=axes, dynamo=False)
    return target


class Subject(ABC):
    """A loaded checkpoint ready to export; subclasses fill in the framework parts."""

    framework = ""
    opset = ONNX_OPSET
    output_names: list[str] = ["logits"]

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.source = Path(request["source"])
        self.task = str(request["task"])
        self.model_name = str(request.get("model_name") or "")
        self.class_names: list[str] = []
        self.size = 0
        self.module: Any = None  # images tensor -> tuple of raw output tensors

    @abstractmethod
    def preprocess(self, image: Path) -> Any:
        """One image as the exported model's input array (1, 3, H, W) float32."""

    def example(self) -> Any:
        return _torch().zeros(1, 3, self.size, self.size)

    def export(self, fmt: str, staged: Path, *, dynamic: bool, half: bool) -> Path:
        module, example = self.module, self.example()
        if half:
            module, example = module.half().cuda(), example.half().cuda()
        target = staged / ("model.onnx" if fmt == "onnx" else "model.torchscript")
        return torch_export(module, example, target, fmt, self.output_names, dynamic)

    def reference(self, array: Any) -> list[Any]:
        """The eager model's raw outputs for one input array."""
        torch = _torch()
        with torch.no_grad():
            outputs = self.module(torch.from_numpy(array))
        return [o.float().cpu().numpy() for o in outputs]

    @abstractmethod
    def card_fields(self, fmt: str, dynamic: bool) -> dict[str, Any]:
        """The model card's framework-specific fields (normalisation, outputs, post-processing)."""

    def input_fields(self, dynamic: bool, **extra: Any) -> dict[str, Any]:
        return {"name": INPUT_NAME, "shape": ["batch" if dynamic else 1, 3, self.size, self.size],
                "layout": "NCHW", "channels": "RGB", "dtype": "float32", **extra}


# -- timm ---------------------------------------------------------------------------------------------
class TimmSubject(Subject):
    framework = "timm"

    def __init__(self, request: dict[str, Any]) -> None:
        super().__init__(request)
        adapter = _adapter("timm", "classify")
        adapter.load_checkpoint(self.source)
        self.adapter = adapter
        self.class_names = list(adapter.class_names)
        self.size = int(request.get("imgsz") or adapter.inference_size)
        self.mean = (adapter.mean.flatten() / 255).tolist()
        self.std = (adapter.std.flatten() / 255).tolist()
        self.module = _tupled(lambda inner, images: (inner(images),))(adapter.model).eval()

    def preprocess(self, image: Path) -> Any:
        import numpy as np

        from adapters.timm_adapter import _decode_resized

        array = _decode_resized(image, self.size)[None].astype(np.float32)
        mean = np.array(self.mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255
        std = np.array(self.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255
        return (array - mean) / std

    def card_fields(self, fmt: str, dynamic: bool) -> dict[str, Any]:
        return {
            "input": self.input_fields(dynamic, range="(pixel/255 - mean) / std",
                                       resize=f"bilinear to {self.size}x{self.size}, no crop"),
            "normalisation": {"mean": self.mean, "std": self.std},
            "outputs": [{"name": "logits", "shape": ["batch" if dynamic else 1, len(self.class_names)],
                         "meaning": "class logits, in class_names order"}],
            "post_processing": "softmax over logits; the top-1 class is the prediction",
        }


# -- transformers ---------------------------------------------------------------------------------------
def _hf_outputs(task: str) -> list[str]:
    return ["logits", "pred_boxes"] if task == "detect" else ["logits"]


class TransformersSubject(Subject):
    framework = "transformers"

    def __init__(self, request: dict[str, Any]) -> None:
        super().__init__(request)
        adapter = _adapter("transformers", self.task)
        adapter.load_checkpoint(self.source)
        self.adapter = adapter
        self.class_names = list(adapter.class_names)
        self.processor = adapter.processor
        size = getattr(self.processor, "size", None) or {}
        self.size = int(request.get("imgsz") or size.get("height") or size.get("shortest_edge") or 224)
        if request.get("imgsz"):
            self.processor.size = {"height": self.size, "width": self.size}
        self.output_names = _hf_outputs(self.task)
        names = self.output_names
        self.module = _tupled(lambda inner, images: tuple(getattr(inner(pixel_values=images), n) for n in names))(
            adapter.model).eval()

    def preprocess(self, image: Path) -> Any:
        from adapters.transformers_adapter import _decode

        return self.processor(images=_decode(image), return_tensors="np")["pixel_values"].astype("float32")

    def card_fields(self, fmt: str, dynamic: bool) -> dict[str, Any]:
        batch = "batch" if dynamic else 1
        outputs = [{"name": "logits", "shape": [batch, len(self.class_names)], "meaning": "class logits"}]
        post = "softmax over logits; the top-1 class is the prediction"
        if self.task == "detect":
            outputs = [{"name": "logits", "shape": [batch, "queries", len(self.class_names) + 1],
                        "meaning": "per-query class logits; the last class is 'no object'"},
                       {"name": "pred_boxes", "shape": [batch, "queries", 4],
                        "meaning": "boxes (cx, cy, w, h), 0..1 of the input"}]
            post = ("DETR: softmax over logits, drop 'no object', keep queries above the confidence; boxes to "
                    "xyxy scaled to the original image (the processor's post_process_object_detection)")
        if self.task == "segment":
            outputs = [{"name": "logits", "shape": [batch, len(self.class_names), "H/4", "W/4"],
                        "meaning": "per-pixel class logits"}]
            post = "upsample logits (bilinear) to the image size, argmax per pixel"
        return {"input": self.input_fields(dynamic, range="(pixel/255 - mean) / std",
                                           resize=f"to {self.size}x{self.size}",
                                           processor=self.processor.to_dict()),
                "normalisation": {"mean": list(self.processor.image_mean), "std": list(self.processor.image_std)},
                "outputs": outputs, "post_processing": post}


# -- Ultralytics -----------------------------------------------------------------------------------------
class UltralyticsSubject(Subject):
    framework = "ultralytics"

    def __init__(self, request: dict[str, Any]) -> None:
        super().__init__(request)
        from adapters.ultralytics_adapter import require_trust
        from adapters.ultralytics_env import import_ultralytics

        resolved = require_trust(self.source, bool(request.get("trusted")))
        import_ultralytics()
        from ultralytics import YOLO

        self.yolo = YOLO(str(resolved), task=self.task)
        names = self.yolo.names
        self.class_names = [str(names[k]) for k in sorted(names)]
        args = getattr(self.yolo.model, "args", {}) or {}
        self.size = int(request.get("imgsz") or args.get("imgsz") or 640)
        model: Any = self.yolo.model
        self.model = model.float().eval()

    def example(self) -> Any:
        return _torch().zeros(1, 3, self.size, self.size)

    def export(self, fmt: str, staged: Path, *, dynamic: bool, half: bool) -> Path:
        from ultralytics import YOLO

        copy = staged / "model.pt"  # the exporter writes beside its source: keep that inside staging
        shutil.copy2(self.source, copy)
        options: dict[str, Any] = {"format": fmt, "imgsz": self.size, "dynamic": dynamic, "half": half,
                                   "device": "0" if half else "cpu", "verbose": False}
        if fmt == "onnx":
            options.update(simplify=False, opset=ONNX_OPSET)
        try:
            produced = YOLO(str(copy), task=self.task).export(**options)
        except Exception as exc:
            raise AdapterError(f"Ultralytics could not export {self.source.name} to {fmt}: {exc}") from None
        return Path(produced)

    def preprocess(self, image: Path) -> Any:
        import numpy as np
        from PIL import Image
        from ultralytics.data.augment import LetterBox

        with Image.open(image) as opened:
            rgb = np.asarray(opened.convert("RGB"))
        boxed: Any = LetterBox(new_shape=(self.size, self.size), auto=False, stride=32)(image=rgb[..., ::-1])
        return np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0

    def reference(self, array: Any) -> list[Any]:
        torch = _torch()
        with torch.no_grad():
            outputs = self.model(torch.from_numpy(array))
        from adapters.export_runtime import _flat

        return [o.float().cpu().numpy() for o in _flat(outputs)]

    def predict(self, model: Any, image: Path) -> Any:
        return model.predict(str(image), imgsz=self.size, conf=MATCH_SCORE * 0.8, iou=0.7, verbose=False,
                             device="cpu")[0]

    def card_fields(self, fmt: str, dynamic: bool) -> dict[str, Any]:
        nc, batch = len(self.class_names), ("batch" if dynamic else 1)
        outputs = [{"name": "output0", "shape": [batch, 4 + nc + (32 if self.task == "segment" else 0), "anchors"],
                    "meaning": "per anchor: box (cx, cy, w, h) in input pixels, class scores (sigmoid)"
                               + (", 32 mask coefficients" if self.task == "segment" else "")}]
        if self.task == "segment":
            outputs.append({"name": "output1", "shape": [batch, 32, self.size // 4, self.size // 4],
                            "meaning": "mask prototypes"})
        if self.task == "classify":
            outputs = [{"name": "output0", "shape": [batch, nc], "meaning": "class probabilities (softmax applied)"}]
        return {"input": self.input_fields(dynamic, range="pixel/255",
                                           resize=f"letterbox to {self.size}x{self.size} (grey 114 padding)"),
                "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                "outputs": outputs,
                "post_processing": ("top-1 of the probabilities" if self.task == "classify" else
                                    "confidence filter, class-wise NMS (IoU 0.7), boxes cx,cy,w,h -> xyxy, undo the "
                                    "letterbox; segment: masks = sigmoid(coefficients @ prototypes) cropped to the box "
                                    "(ultralytics.utils.ops / YOLO(file) does all of it)")}


SUBJECTS: dict[str, type[Subject]] = {"timm": TimmSubject, "transformers": TransformersSubject,
                                      "ultralytics": UltralyticsSubject}


def load_subject(request: dict[str, Any], progress: Any) -> Subject:
    framework = str(request["framework"])
    subject_class = SUBJECTS.get(framework)
    if subject_class is None:
        raise AdapterError(f"cannot export {framework!r} models; this app exports {', '.join(SUBJECTS)}")
    progress(f"loading {Path(request['source']).name}")
    return subject_class(request)
