"""The worker event protocol, version 1.

A training worker writes one JSON object per line on stdout and nothing else there (its logging
goes to stderr, which the runner appends to the job's ``worker.log``). Every event has:

    {"v": 1, "type": <type>, "t": <unix time, float>, ...fields}

Types and their fields:

``hello``       pid, framework, protocol (= 1) — first line, before any work.
``status``      state ("preparing" | "training" | "validating" | "saving"), message.
``dataset``     num_classes, class_names — the dataset was read (fills ``training_jobs.num_classes``).
``progress``    epoch (1-based), epochs, step (1-based within the epoch), steps (per epoch, may be null).
``metrics``     kind ("step" | "epoch" | "test"), epoch, step (global step or null), values {name: float}.
                Names follow the design document: "train/loss", "val/loss", "val/accuracy",
                "val/top5", "lr", "val/map50" …; "loss", "accuracy" and "lr" also fill the
                original schema's columns of ``training_metrics``.
                "test": sent at most once, after a completed run whose dataset has a ``test``
                split: the best checkpoint evaluated on it, ``epoch`` = the best checkpoint's epoch,
                names as validation's with ``test/`` ("test/accuracy", "test/map50_95" …). Stored
                as a ``training_metrics`` row of kind "test" (its original columns stay empty) and
                logged to MLflow under those names; never part of the per-epoch curves. Added
                within version 1: a runner that predates it stores the row and ignores the kind.
``checkpoint``  kind ("best" | "last"), path, epoch, sha256, size, metric_name, metric_value.
``artifact``    kind ("plot" | "confusion_matrix" | "results" | …), path.
``warning``     message, optional path (a file that was skipped, for example).
``log``         level, message.
``error``       message, traceback — the job failed; a ``done`` follows only if the worker can.
``done``        status ("completed" | "cancelled"), epochs_completed, best_metric_name, best_metric_value.

The stream ends at ``done``. A worker that exits without ``done`` has crashed: the runner records
its exit status and the tail of its log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

PROTOCOL_VERSION = 1
TEST_METRICS_KIND = "test"  # the ``metrics`` kind of the test-split evaluation (see above)
EVENT_TYPES = frozenset(
    {"hello", "status", "dataset", "progress", "metrics", "checkpoint", "artifact", "warning", "log", "error", "done"}
)


class ProtocolError(ValueError):
    pass


def encode_event(event_type: str, **fields: Any) -> str:
    if event_type not in EVENT_TYPES:
        raise ProtocolError(f"unknown event type {event_type!r}")
    payload = {"v": PROTOCOL_VERSION, "type": event_type, "t": time.time(), **fields}
    return json.dumps(payload, separators=(",", ":"), allow_nan=True)


def decode_event(line: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not a JSON event: {line[:200]!r}") from exc
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        raise ProtocolError(f"not a worker event: {line[:200]!r}")
    if event.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"worker speaks protocol v{event.get('v')}, runner speaks v{PROTOCOL_VERSION}")
    return event


class EventWriter:
    """Writes events to a text stream, one per line, flushed, thread-safe."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def emit(self, event_type: str, **fields: Any) -> None:
        line = encode_event(event_type, **fields)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def describe_event(event: dict[str, Any]) -> str | None:
    """One human-readable line for the events a person wants to read (terminal, worker.log, log pane);
    None for the ones that are only data (progress, step metrics, hello)."""
    kind = event.get("type")
    if kind == "metrics" and event.get("kind") in ("epoch", TEST_METRICS_KIND):
        values = "  ".join(f"{k}={v:.4g}" for k, v in sorted((event.get("values") or {}).items()))
        if event.get("kind") == TEST_METRICS_KIND:
            return f"test split (best checkpoint, epoch {event.get('epoch')}): {values}"
        return f"epoch {event.get('epoch')}: {values}"
    if kind == "status":
        return f"{event.get('state')}: {event.get('message', '')}"
    if kind == "warning":
        where = f" ({event['path']})" if event.get("path") else ""
        return f"warning: {event.get('message')}{where}"
    if kind == "checkpoint":
        return f"saved {event.get('kind')}.pt (epoch {event.get('epoch')})"
    if kind == "log":
        level = event.get("level", "info")
        return str(event.get("message")) if level == "info" else f"{level}: {event.get('message')}"
    if kind == "error":
        return f"error: {event.get('message')}"
    return None
