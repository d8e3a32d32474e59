"""The warm inference worker: ``vision-platform infer-worker``.

A long-lived subprocess that keeps one model loaded between images, so the GUI's canvas pays the
framework import and model load once. It reads one JSON request per line on stdin and answers one
JSON line per request on stdout (logs go to stderr):

    {"id": 1, "op": "load", "framework": "timm", "checkpoint": PATH, "trusted": false, "sha256": null,
     "device": "auto"}
        → {"id": 1, "ok": true, "task": "classify", "class_names": [...], "load_ms": 812.0}
    {"id": 2, "op": "predict", "image": PATH, "conf": 0.01, "iou": 0.7, "top_k": 5}
        → {"id": 2, "ok": true, "result": {...adapter.run_inference() result...}}
    {"id": 3, "op": "ping"} → {"id": 3, "ok": true}
    {"id": 4, "op": "quit"} → exits

Errors never kill the worker: {"id": N, "ok": false, "error": "<message a user can act on>"}.

Trust (``core.trust``): this process never reads the database, so core decides. ``trusted: true``
with a ``sha256`` means "core vouches for the file with this content" (a checkpoint this app wrote,
an import the user consented to): the worker hashes the file first and, if it changed since, loads it
as untrusted. ``trusted: true`` without a hash is the user's consent to this one load.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from adapters.base import AdapterError, TrainingAdapter
from core import gc_policy
from core.config import config_from_dict
from core.exports import is_exported_model
from core.files import sha256_file
from core.reporter import NullReporter


class InferenceSession:
    def __init__(self) -> None:
        self.adapter: TrainingAdapter | None = None
        self.work_dir = Path(tempfile.mkdtemp(prefix="vp-infer-"))

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        from adapters.registry import get_adapter_class

        framework = request.get("framework") or "timm"
        checkpoint = Path(request["checkpoint"])
        if not checkpoint.is_file():
            raise AdapterError(f"checkpoint not found: {checkpoint}")
        trusted = _trusted(checkpoint, request)
        if is_exported_model(checkpoint):  # ONNX / TorchScript: framework and task come from its model card
            return self._load_exported(checkpoint, request, trusted)
        adapter_class = get_adapter_class(framework)
        task = request.get("task")
        if not task:
            # A YOLO checkpoint knows its task (detect/segment/pose/classify); timm is always classify.
            reader = getattr(adapter_class, "checkpoint_task", None)
            task = reader(checkpoint, trusted=trusted) if reader else adapter_class.tasks[0]
        config = config_from_dict(
            {"dataset": str(checkpoint.parent), "framework": framework, "task": task,
             "device": request.get("device") or "auto"},
            source="inference",
        )
        started = time.perf_counter()
        adapter = adapter_class(config, self.work_dir, _SilentReporter())
        adapter.load_checkpoint(checkpoint, trusted=trusted)
        self.adapter = adapter
        return {"task": config.task, "class_names": list(getattr(adapter, "class_names", []) or []),
                "load_ms": (time.perf_counter() - started) * 1000}

    def _load_exported(self, exported: Path, request: dict[str, Any], trusted: bool) -> dict[str, Any]:
        """An exported model behind its framework's adapter (same pre/post-processing; adapters.export_runtime)."""
        from adapters.export_runtime import load_exported
        from adapters.registry import get_adapter_class
        from core.exports import read_card

        try:
            card = read_card(exported)
        except ValueError as exc:
            raise AdapterError(str(exc)) from None
        config = config_from_dict({"dataset": str(exported.parent), "framework": card["framework"],
                                   "task": card["task"], "device": "cpu"}, source="inference")
        started = time.perf_counter()
        adapter = get_adapter_class(card["framework"])(config, self.work_dir, _SilentReporter())
        load_exported(adapter, exported, trusted=trusted)
        self.adapter = adapter
        return {"task": card["task"], "class_names": list(card["class_names"]),
                "load_ms": (time.perf_counter() - started) * 1000}

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.adapter is None:
            raise AdapterError("no model is loaded; pick a checkpoint first")
        image: str | bytes = request["image"]
        options = {k: request[k] for k in ("conf", "iou", "top_k") if k in request}
        return {"result": self.adapter.run_inference(image, **options)}


def _trusted(checkpoint: Path, request: dict[str, Any]) -> bool:
    """Core's decision, held to the content it vouched for (the file may have changed since)."""
    if not request.get("trusted"):
        return False
    vouched = request.get("sha256")
    return vouched is None or sha256_file(checkpoint) == vouched


class _SilentReporter(NullReporter):
    """Inference reports nothing (the answer is the response line); logs go to stderr."""

    def log(self, message: str, level: str = "info") -> None:
        print(f"[{level}] {message}", file=sys.stderr)


def serve() -> int:
    # Answers own stdout; anything a framework prints must not corrupt the protocol.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    session = InferenceSession()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            op = request.get("op")
            if op == "quit":
                break
            if op == "ping":
                payload: dict[str, Any] = {}
            elif op == "load":
                with gc_policy.paused():  # the framework's import and the model: long-lived, no collection meanwhile
                    payload = session.load(request)
            elif op == "predict":
                payload = session.predict(request)
            else:
                raise AdapterError(f"unknown request {op!r}")
            response = {"id": request_id, "ok": True, **payload}
        except (AdapterError, ValueError, OSError) as exc:
            response = {"id": request_id, "ok": False, "error": str(exc)}
        except Exception as exc:
            traceback.print_exc()
            response = {"id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(response) + "\n")
        out.flush()
    return 0
