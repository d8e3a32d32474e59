"""The reporter protocol: the only way an adapter talks to the outside world.

Adapters never touch the DB, MLflow or Qt; they call a :class:`Reporter`. In a worker process the
reporter is :class:`JsonLinesReporter` (events on stdout, see ``core.events``); tests may use any
object with these methods.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.events import EventWriter
from core.files import sha256_file

__all__ = ["JsonLinesReporter", "NullReporter", "Reporter", "sha256_file"]


@runtime_checkable
class Reporter(Protocol):
    def status(self, state: str, message: str = "") -> None: ...

    def dataset(self, *, num_classes: int, class_names: list[str]) -> None: ...

    def progress(self, epoch: int, epochs: int, step: int, steps: int | None) -> None: ...

    def metrics(self, values: dict[str, float], *, epoch: int, step: int | None = None, kind: str = "epoch") -> None: ...

    def checkpoint(
        self, kind: str, path: Path, *, epoch: int, metric_name: str | None = None, metric_value: float | None = None,
        sha256: str | None = None,
    ) -> None: ...

    def artifact(self, kind: str, path: Path) -> None: ...

    def warning(self, message: str, path: str | None = None) -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def should_stop(self) -> bool: ...


class NullReporter:
    """Reports nothing (inference, tests): every method is a no-op and nothing asks to stop."""

    def status(self, state: str, message: str = "") -> None: ...
    def dataset(self, *, num_classes: int, class_names: list[str]) -> None: ...
    def progress(self, epoch: int, epochs: int, step: int, steps: int | None) -> None: ...
    def metrics(self, values: dict[str, float], *, epoch: int, step: int | None = None, kind: str = "epoch") -> None: ...
    def checkpoint(self, kind: str, path: Path, *, epoch: int, metric_name: str | None = None,
                   metric_value: float | None = None, sha256: str | None = None) -> None: ...
    def artifact(self, kind: str, path: Path) -> None: ...
    def warning(self, message: str, path: str | None = None) -> None: ...
    def log(self, message: str, level: str = "info") -> None: ...

    def should_stop(self) -> bool:
        return False


class JsonLinesReporter:
    """Reports as protocol events. ``stop_file``: its existence is the stop request (cheap ``stat``)."""

    def __init__(self, writer: EventWriter | None = None, stop_file: Path | None = None) -> None:
        self.writer = writer or EventWriter()
        self.stop_file = stop_file
        self._stopped = False

    def status(self, state: str, message: str = "") -> None:
        self.writer.emit("status", state=state, message=message)

    def dataset(self, *, num_classes: int, class_names: list[str]) -> None:
        self.writer.emit("dataset", num_classes=num_classes, class_names=class_names)

    def progress(self, epoch: int, epochs: int, step: int, steps: int | None) -> None:
        self.writer.emit("progress", epoch=epoch, epochs=epochs, step=step, steps=steps)

    def metrics(self, values: dict[str, float], *, epoch: int, step: int | None = None, kind: str = "epoch") -> None:
        clean = {name: float(value) for name, value in values.items() if value is not None}
        self.writer.emit("metrics", kind=kind, epoch=epoch, step=step, values=clean)

    def checkpoint(
        self, kind: str, path: Path, *, epoch: int, metric_name: str | None = None, metric_value: float | None = None,
        sha256: str | None = None,
    ) -> None:
        """``sha256`` when the caller hashed the bytes it wrote already; otherwise the file is hashed."""
        path = Path(path)
        self.writer.emit(
            "checkpoint",
            kind=kind,
            path=str(path.resolve()),
            epoch=epoch,
            sha256=sha256 or sha256_file(path),
            size=path.stat().st_size,
            metric_name=metric_name,
            metric_value=metric_value,
        )

    def artifact(self, kind: str, path: Path) -> None:
        self.writer.emit("artifact", kind=kind, path=str(Path(path).resolve()))

    def warning(self, message: str, path: str | None = None) -> None:
        self.writer.emit("warning", message=message, path=path)

    def log(self, message: str, level: str = "info") -> None:
        self.writer.emit("log", level=level, message=message)

    def should_stop(self) -> bool:
        if not self._stopped and self.stop_file is not None and os.path.exists(self.stop_file):
            self._stopped = True
        return self._stopped

    def request_stop(self) -> None:
        self._stopped = True
