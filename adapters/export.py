"""Export worker: ``vision-platform export-worker --request FILE`` (and ``--list-formats FRAMEWORK``).

Why a worker: export needs the framework (torch, timm, Ultralytics, transformers) and the app never
imports those. The export service writes a request JSON and reads this worker's stdout: one JSON
object per line, ``{"type": "progress", "message": …}`` while it works, then one
``{"type": "result", …}`` (or ``{"type": "error", "message": …}``).

Steps: load the checkpoint with its adapter's own code, export it (ONNX opset ``ONNX_OPSET`` with
the TorchScript-based exporter, which runs offline on the CPU; TorchScript by tracing; Ultralytics
through its own exporter, which also embeds its metadata), run the parity check on the job's real
validation images against the PyTorch model (``core.exports`` documents the tolerance), write the
model card, and only then move file and card into place. Everything is produced in a hidden staging
folder beside the target: an export that fails half-way leaves nothing under the final names.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, cast

from adapters.base import AdapterError
from adapters.export_models import Subject, load_subject
from adapters.export_parity import parity_check
from core import platform
from core.exports import (
    CARD_FORMAT,
    PARITY_FORMATS,
    ModelCard,
    card_path,
    export_file_name,
)
from core.files import atomic_write_bytes, sha256_file

STAGING_PREFIX = ".export-"
# Ultralytics formats beyond ONNX/TorchScript -> the module its exporter needs (None: a vendor SDK
# or device toolchain this app cannot check for; listed greyed with that reason).
ULTRALYTICS_NEEDS: dict[str, str | None] = {
    "openvino": "openvino", "engine": "tensorrt", "coreml": "coremltools", "coreai": "coremltools",
    "saved_model": "tensorflow", "pb": "tensorflow", "edgetpu": "tensorflow", "litert": "ai_edge_litert",
    "paddle": "paddle", "mnn": "MNN", "ncnn": "ncnn", "imx": "model_compression_toolkit", "rknn": "rknn",
    "executorch": "executorch", "axelera": None, "deepx": None, "qnn": None, "hailo": None,
    "ascend": None, "xilinx": None,
}


class Progress:
    """Progress and result lines on the protocol stream (framework prints go to stderr)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __call__(self, message: str) -> None:
        self.send({"type": "progress", "message": message})

    def send(self, payload: dict[str, Any]) -> None:
        self.stream.write(json.dumps(payload) + "\n")
        self.stream.flush()


# -- formats --------------------------------------------------------------------------------------
def _module_missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def _format_row(name: str, label: str, missing: str | None, verified: bool) -> dict[str, Any]:
    reason = f"needs the {missing} package (not installed)" if missing else None
    return {"name": name, "label": label, "available": missing is None, "reason": reason, "verified": verified}


def list_formats(framework: str) -> list[dict[str, Any]]:
    """Formats for ``framework``: ONNX and TorchScript for all; for Ultralytics, its exporter's table."""
    rows = [_format_row("onnx", "ONNX", "onnx" if _module_missing("onnx") else None, True),
            _format_row("torchscript", "TorchScript", None, True)]
    if framework != "ultralytics":
        return rows
    from adapters.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics.engine.exporter import export_formats

    table = export_formats()
    for label, name, cpu in zip(table["Format"], table["Argument"], table["CPU"], strict=True):
        if name in ("-", *PARITY_FORMATS):
            continue
        rows.append(_ultralytics_row(name, label, bool(cpu)))
    return rows


def _ultralytics_row(name: str, label: str, cpu: bool) -> dict[str, Any]:
    needed = ULTRALYTICS_NEEDS.get(name)
    if needed is None:
        row = _format_row(name, label, None, False)
        row.update(available=False, reason="needs its vendor's SDK and toolchain (not installed)")
        return row
    row = _format_row(name, label, needed if _module_missing(needed) else None, False)
    if row["available"] and not cpu and not _cuda():
        row.update(available=False, reason="needs a CUDA GPU")
    return row


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


# -- export ---------------------------------------------------------------------------------------
def _staging(out_dir: Path) -> Path:
    """A fresh staging folder named after this process; leftovers of exports whose process is gone
    (killed) are removed, a concurrent export's folder is left alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{STAGING_PREFIX}*"):
        if not platform.process_alive(_staging_owner(stale), None):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir))


def _staging_owner(folder: Path) -> int | None:
    """The pid in ``.export-PID-xxxx`` (None for an older, unnamed folder: nobody owns it)."""
    owner = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
    return int(owner) if owner.isdigit() else None


def _export_file(subject: Subject, fmt: str, staged: Path, request: dict[str, Any], progress: Progress) -> Path:
    if fmt not in PARITY_FORMATS and subject.framework != "ultralytics":
        raise AdapterError(f"{subject.framework} models export to {', '.join(PARITY_FORMATS)}; {fmt!r} is an "
                           "Ultralytics format")
    progress(f"exporting {subject.framework} {subject.task} model to {fmt}")
    return subject.export(fmt, staged, dynamic=bool(request.get("dynamic_batch")), half=bool(request.get("half")))


def _card(subject: Subject, fmt: str, exported: Path, request: dict[str, Any], parity: Any) -> ModelCard:
    card: dict[str, Any] = {
        "format": CARD_FORMAT, "export_format": fmt, "file": exported.name, "file_sha256": sha256_file(exported),
        "framework": subject.framework, "task": subject.task, "model_name": subject.model_name,
        "class_names": list(subject.class_names), **subject.card_fields(fmt, bool(request.get("dynamic_batch"))),
        "source_checkpoint": str(request["source"]), "source_sha256": sha256_file(Path(request["source"])),
        "parity": parity,
    }
    if fmt == "onnx":
        card["opset"] = subject.opset
    return cast(ModelCard, card)


def _place(staged_file: Path, card: ModelCard, target: Path) -> Path:
    """Card first, then the file: a loader finds a file only when its card is already there."""
    atomic_write_bytes(card_path(target), json.dumps(card, indent=2).encode("utf-8"))
    if staged_file.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    os.replace(staged_file, target)
    return target


def run_export(request: dict[str, Any], progress: Progress) -> dict[str, Any]:
    fmt = str(request["format"])
    if request.get("half") and not _cuda():
        raise AdapterError("--half needs a CUDA GPU: ONNX Runtime and TorchScript run float16 only on a GPU here")
    subject = load_subject(request, progress)
    out_dir = Path(request["out_dir"])
    staged = _staging(out_dir)
    try:
        exported = _export_file(subject, fmt, staged, request, progress)
        parity = parity_check(subject, exported, fmt, request.get("val_images") or [], progress,
                              half=bool(request.get("half")))
        card = _card(subject, fmt, exported, request, parity)
        if request.get("fail_after_export"):  # fault hook for the "fails half-way" test
            raise AdapterError("export stopped by the test fault hook after writing the file")
        model_dir = _mlflow_model(subject, request, staged, progress)
        target = _place(exported, card, out_dir / export_file_name(str(request["stem"]), fmt))
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {"type": "result", "file": str(target), "card": str(card_path(target)), "parity": card["parity"],
            "sha256": card["file_sha256"], "mlflow_model": model_dir}


def _mlflow_model(subject: Subject, request: dict[str, Any], staged: Path, progress: Progress) -> str | None:
    """The checkpoint as an MLflow model folder, built in staging and moved to ``mlflow_model_dir``."""
    target = request.get("mlflow_model_dir")
    if not target:
        return None
    progress("saving the checkpoint as an MLflow model")
    from adapters.export_mlflow import save_mlflow_model

    built = save_mlflow_model(subject, staged / "mlflow_model", request.get("val_images") or [])
    shutil.rmtree(target, ignore_errors=True)
    os.replace(built, target)
    return str(target)


def check_exported(path: Path, *, trusted: bool) -> dict[str, Any]:
    """Open the file as the inference worker would (card, integrity, input, consent); its card."""
    from adapters.export_runtime import open_runner

    _runner, card = open_runner(path, trusted=trusted)
    return dict(card)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-platform export-worker")
    parser.add_argument("--request", type=Path)
    parser.add_argument("--list-formats", metavar="FRAMEWORK")
    parser.add_argument("--check", type=Path, help="check an exported file against its model card")
    parser.add_argument("--trust", action="store_true", help="with --check: load a TorchScript file from elsewhere")
    args = parser.parse_args(argv)
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # framework prints must not corrupt the protocol
    sys.stdout = sys.stderr
    progress = Progress(stream)
    try:
        if args.list_formats:
            progress.send({"type": "result", "formats": list_formats(args.list_formats)})
            return 0
        if args.check:
            progress.send({"type": "result", "card": check_exported(args.check, trusted=args.trust)})
            return 0
        request = json.loads(args.request.read_text(encoding="utf-8"))
        progress.send(run_export(request, progress))
    except AdapterError as exc:
        progress.send({"type": "error", "message": str(exc)})
        return 2
    except Exception as exc:
        traceback.print_exc()
        progress.send({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0
