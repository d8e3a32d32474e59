"""Running an exported model: ONNX Runtime sessions and TorchScript modules that act like the eager model.

An exported model is loaded behind the same adapter code as its checkpoint (``load_exported``): the
adapter's ``model`` is swapped for a callable that feeds the exported file and hands back torch
tensors, so pre- and post-processing (resize, normalisation, softmax, DETR box decoding, YOLO NMS)
are the adapter's own, byte for byte. Before any run, the file is checked against its model card:
a corrupted or truncated ONNX, or one whose input is not the card's, is refused with a message that
names the file and the problem (``core.exports``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adapters.base import AdapterError
from core import trust
from core.exports import CORRUPT_MESSAGE, MISMATCH_MESSAGE, ModelCard, read_card
from core.files import sha256_file


def providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, the CPU always."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _check_onnx_file(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise AdapterError(f"{path} {CORRUPT_MESSAGE}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return model


def _input_matches(session_input: Any, card: ModelCard) -> str | None:
    """Why the session's first input is not the card's (None when it is)."""
    wanted = card["input"]
    if session_input.name != wanted["name"]:
        return f"its input is named {session_input.name!r}, the card says {wanted['name']!r}"
    shape = [d if isinstance(d, int) else "dynamic" for d in session_input.shape]
    expected = [d if isinstance(d, int) else "dynamic" for d in wanted["shape"]]
    if shape != expected:
        return f"its input shape is {shape}, the card says {expected}"
    return None


def open_onnx(path: str | Path, card: ModelCard | None = None) -> tuple[Any, ModelCard]:
    """An ONNX Runtime session for ``path``, after checking the file and that it matches its card."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"exported model not found: {path}")
    try:
        card = card or read_card(path)
    except ValueError as exc:
        raise AdapterError(str(exc)) from None
    if card.get("file_sha256") and sha256_file(path) != card["file_sha256"]:
        _check_onnx_file(path)  # a damaged file says so first
        raise AdapterError(f"{path} {MISMATCH_MESSAGE}: its sha256 differs from the one recorded at export")
    _check_onnx_file(path)
    try:
        session = ort.InferenceSession(str(path), providers=providers())
    except Exception as exc:
        raise AdapterError(f"{path} {CORRUPT_MESSAGE}: {exc}") from None
    problem = _input_matches(session.get_inputs()[0], card)
    if problem:
        raise AdapterError(f"{path} {MISMATCH_MESSAGE}: {problem}")
    return session, card


def open_torchscript(path: str | Path, *, trusted: bool, card: ModelCard | None = None) -> tuple[Any, ModelCard]:
    """A TorchScript module: code, so loaded only when this app wrote it (its card's sha256) or with consent."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"exported model not found: {path}")
    try:
        card = card or read_card(path)
    except ValueError as exc:
        if not trusted:
            raise AdapterError(trust.refusal(path)) from None
        raise AdapterError(str(exc)) from None
    if not trusted and sha256_file(path) != card.get("file_sha256") and not trust.is_consented(path):
        raise AdapterError(trust.refusal(path))
    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise AdapterError(f"{path} is not a readable TorchScript file: {exc}") from None
    return module, card


class OnnxModule:
    """Calls an ONNX Runtime session like an ``nn.Module``: torch tensors in, a tuple of torch tensors out."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.input_type = session.get_inputs()[0].type

    def raw(self, array: Any) -> list[Any]:
        import numpy as np

        dtype = np.float16 if "float16" in self.input_type else np.float32
        return list(self.session.run(None, {self.input_name: np.ascontiguousarray(array, dtype=dtype)}))

    def __call__(self, tensor: Any) -> tuple[Any, ...]:
        import torch

        outputs = self.raw(tensor.detach().cpu().numpy())
        return tuple(torch.from_numpy(o).to(tensor.device) for o in outputs)


class TorchScriptModule:
    """A loaded TorchScript module with the same raw interface as :class:`OnnxModule`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def raw(self, array: Any) -> list[Any]:
        import torch

        with torch.no_grad():
            outputs = self.module(torch.from_numpy(array))
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        return [o.float().numpy() for o in _flat(outputs)]

    def __call__(self, tensor: Any) -> tuple[Any, ...]:
        import torch

        with torch.no_grad():
            outputs = self.module(tensor.cpu())
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        return tuple(o.to(tensor.device) for o in _flat(outputs))


def _flat(items: Any) -> list[Any]:
    """The tensors of nested tuples, lists and dicts (Ultralytics' eager heads return all three), in order."""
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, (tuple, list)):
        return [items] if hasattr(items, "shape") else []
    return [tensor for item in items for tensor in _flat(item)]


class _FirstOutput:
    """timm's ``model(x)`` returns one tensor: the exported module's first output."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def __call__(self, tensor: Any) -> Any:
        return self.runner(tensor)[0]


class _HuggingFaceOutputs:
    """``model(pixel_values=…)`` → an object with ``logits`` (and ``pred_boxes``), as the processor expects."""

    def __init__(self, runner: Any, names: list[str]) -> None:
        self.runner = runner
        self.names = names

    def __call__(self, pixel_values: Any, **_: Any) -> Any:
        outputs = self.runner(pixel_values)
        return SimpleNamespace(**dict(zip(self.names, outputs, strict=False)))


def open_runner(path: str | Path, *, trusted: bool = False) -> tuple[Any, ModelCard]:
    """The raw runner (``OnnxModule`` / ``TorchScriptModule``) of an exported file, and its card."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        session, card = open_onnx(path)
        return OnnxModule(session), card
    module, card = open_torchscript(path, trusted=trusted)
    return TorchScriptModule(module), card


def load_exported(adapter: Any, path: str | Path, *, trusted: bool = False) -> ModelCard:
    """Make ``adapter`` (of the card's framework) run the exported file with its own pre/post-processing."""
    path = Path(path)
    runner, card = open_runner(path, trusted=trusted)
    if card["task"] != adapter.config.task:
        raise AdapterError(f"{path} is a {card['task']} model; this job's task is {adapter.config.task}")
    if card["framework"] == "timm":
        _as_timm(adapter, runner, card)
    elif card["framework"] == "transformers":
        _as_transformers(adapter, runner, card, path)
    elif card["framework"] == "ultralytics":
        _as_ultralytics(adapter, card, path)
    else:
        raise AdapterError(f"{path}: unknown framework {card['framework']!r} in its model card")
    return card


def _as_timm(adapter: Any, runner: Any, card: ModelCard) -> None:
    import torch

    adapter.class_names = list(card["class_names"])
    adapter.device = "cpu"
    adapter.use_cuda = False
    adapter.model = _FirstOutput(runner)
    adapter.inference_size = int(card["input"]["shape"][-1])
    adapter.mean = torch.tensor(card["normalisation"]["mean"]).view(1, 3, 1, 1) * 255
    adapter.std = torch.tensor(card["normalisation"]["std"]).view(1, 3, 1, 1) * 255


def processor_from_card(card: ModelCard, path: Path) -> Any:
    """The Hugging Face image processor the card describes (its config is stored in the card)."""
    import transformers

    config = dict(card["input"].get("processor") or {})
    processor_class = getattr(transformers, str(config.get("image_processor_type")), None)
    if processor_class is None:
        raise AdapterError(f"{path}: its model card names no image processor this transformers version has "
                           f"({config.get('image_processor_type')!r})")
    return processor_class.from_dict(config)


def _as_transformers(adapter: Any, runner: Any, card: ModelCard, path: Path) -> None:
    adapter.processor = processor_from_card(card, path)
    adapter.class_names = list(card["class_names"])
    adapter.device = "cpu"
    adapter.model = _HuggingFaceOutputs(runner, [o["name"] for o in card["outputs"]])


def _as_ultralytics(adapter: Any, card: ModelCard, path: Path) -> None:
    from adapters.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    adapter._yolo = YOLO(str(path), task=card["task"])
    adapter._inference_task = card["task"]
    adapter.class_names = list(card["class_names"])
