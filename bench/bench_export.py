"""Exported-model latency (issue 14): one image on the CPU, PyTorch eager vs ONNX Runtime vs TorchScript.

Per framework, one small model (untrained weights: latency does not depend on them), exported the way
``vision-platform export`` exports it (``adapters.export_models.torch_export``; Ultralytics through its
own exporter), the same input tensor for all three, in one process, alternating runtimes per round
after a warm-up; medians are compared. Target: ONNX Runtime <= eager (ratio ORT/eager <= 1.0).

Run: ``python bench/bench_export.py [--rounds 30] [--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import print_table  # noqa: E402


def _timm(folder: Path) -> tuple[Any, Any, list[str]]:
    import timm
    import torch

    from adapters.export_models import _tupled

    model = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    module = _tupled(lambda inner, images: (inner(images),))(model).eval()
    return module, torch.rand(1, 3, 224, 224), ["logits"]


def _transformers(folder: Path) -> tuple[Any, Any, list[str]]:
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from adapters.export_models import _tupled

    config = ViTConfig(image_size=224, patch_size=16, hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                       intermediate_size=768, num_labels=10)  # ViT-Tiny
    model = ViTForImageClassification(config).eval()
    module = _tupled(lambda inner, images: (inner(pixel_values=images).logits,))(model).eval()
    return module, torch.rand(1, 3, 224, 224), ["logits"]


def _yolo(folder: Path) -> tuple[Any, Any, list[str]]:
    import torch

    from adapters.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    yolo = YOLO("yolo11n.yaml")
    weights = folder / "yolo11n.pt"
    yolo.save(str(weights))
    model = YOLO(str(weights)).model.float().eval()
    return model, torch.rand(1, 3, 640, 640), ["output0"]


def _export(name: str, module: Any, example: Any, outputs: list[str], folder: Path) -> tuple[Path, Path]:
    from adapters.export_models import torch_export

    if name == "ultralytics":
        from ultralytics import YOLO

        weights = folder / "yolo11n.pt"
        onnx = YOLO(str(weights)).export(format="onnx", imgsz=640, simplify=False, opset=18, device="cpu",
                                         verbose=False)
        script = YOLO(str(weights)).export(format="torchscript", imgsz=640, device="cpu", verbose=False)
        return Path(onnx), Path(script)
    return (torch_export(module, example, folder / f"{name}.onnx", "onnx", outputs, False),
            torch_export(module, example, folder / f"{name}.torchscript", "torchscript", outputs, False))


def _median_ms(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    for run in runs.values():  # warm-up: first-call allocations, graph optimisation
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(name: str, build: Callable[[Path], tuple[Any, Any, list[str]]], rounds: int,
            threads: int) -> dict[str, float]:
    import onnxruntime as ort
    import torch

    with tempfile.TemporaryDirectory(prefix=f"bench-export-{name}-") as tmp:
        folder = Path(tmp)
        module, example, outputs = build(folder)
        onnx_file, script_file = _export(name, module, example, outputs, folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: example.numpy()}
        scripted = torch.jit.load(str(script_file), map_location="cpu").eval()
        with torch.inference_mode():
            return _median_ms({"eager": lambda: module(example), "onnxruntime": lambda: session.run(None, feed),
                               "torchscript": lambda: scripted(example)}, rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch and ORT (0: torch's default)")
    args = parser.parse_args()
    import torch

    from adapters.ultralytics_env import apply_env

    apply_env()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    rows: list[tuple[str, str, str, str]] = []
    models = {"timm": ("resnet18 224px", _timm), "transformers": ("ViT-Tiny 224px", _transformers),
              "ultralytics": ("yolo11n 640px", _yolo)}
    for name, (label, build) in models.items():
        medians = measure(name, build, args.rounds, threads)
        ratio = medians["onnxruntime"] / medians["eager"]
        rows += [(f"{name} {label}: eager", f"{medians['eager']:.1f} ms", "", ""),
                 (f"{name} {label}: ONNX Runtime", f"{medians['onnxruntime']:.1f} ms", "", ""),
                 (f"{name} {label}: TorchScript", f"{medians['torchscript']:.1f} ms",
                  f"ratio TS/eager {medians['torchscript'] / medians['eager']:.2f}", ""),
                 (f"{name} {label}: ratio ORT/eager", f"{ratio:.2f}", "<= 1.00", "OK" if ratio <= 1.0 else "MISS")]
    print_table(f"Single-image CPU latency, median of {args.rounds} rounds, {threads} threads", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
