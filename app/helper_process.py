"""Ask a short-lived helper process for what needs ML frameworks (model lists, GPUs).

The GUI never imports torch/timm/ultralytics: ``vision-platform models FW PATTERN`` and
``vision-platform sysinfo`` run in a QProcess and print one JSON object. Results are cached for the
session, so each question costs one subprocess at most.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

# core.frameworks and core.launch (pydantic, psutil, platformdirs: ~0.2 s of imports) load with the first
# helper call: the main window imports this module, and its first paint waits for everything it imports.


def helper_command(*args: str) -> tuple[str, list[str]]:
    """Program and arguments for a ``vision-platform`` sub-command, as QProcess takes them."""
    from core.launch import subcommand

    program, *arguments = subcommand(*args)
    return program, arguments


def helper_environment() -> QProcessEnvironment:
    """Every child's environment (offline, no telemetry, our packages importable from any folder)."""
    from core.launch import child_env

    env = QProcessEnvironment()
    for name, value in child_env().items():
        env.insert(name, value)
    return env


class HelperCall(QObject):
    """One helper subprocess; emits ``succeeded(dict)`` or ``failed(str)`` exactly once."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, *args: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.args = args
        self.process = QProcess(self)
        self.process.setProcessEnvironment(helper_environment())
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self._done = False

    def start(self) -> None:
        program, arguments = helper_command(*self.args)
        self.process.start(program, arguments)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish_failed(f"could not start the helper: {self.process.errorString()}")

    def _on_finished(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        stdout = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", errors="replace")
        stderr = bytes(self.process.readAllStandardError().data()).decode("utf-8", errors="replace")
        from core.frameworks import CatalogError, parse_helper_output

        if exit_code == 0:
            try:
                payload = parse_helper_output(stdout)
            except CatalogError as exc:
                self._finish_failed(str(exc))
                return
            if not self._done:
                self._done = True
                self.succeeded.emit(payload)
            return
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {exit_code}"
        self._finish_failed(last)

    def _finish_failed(self, message: str) -> None:
        if not self._done:
            self._done = True
            self.failed.emit(message)


class HelperService(QObject):
    """Session cache of helper answers. Ask with ``request_*``; answers arrive as signals."""

    models_ready = Signal(str, object)  # framework, its adapter's ``describe()`` payload (declarations + models)
    models_failed = Signal(str, str)  # framework, message
    catalog_ready = Signal(object)  # {framework: declarations payload} of every registered framework
    catalog_failed = Signal(str)
    sysinfo_ready = Signal(object)  # {"devices": [...], "versions": {...}}
    sysinfo_failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models: dict[str, dict[str, Any]] = {}
        self._model_errors: dict[str, str] = {}
        self._sysinfo: dict[str, Any] | None = None
        self._catalog: dict[str, dict[str, Any]] | None = None
        self._calls: dict[str, HelperCall] = {}
        self._closed = False

    # -- cache access -------------------------------------------------------------------------
    def cached_models(self, framework: str) -> dict[str, Any] | None:
        return self._models.get(framework)

    def cached_sysinfo(self) -> dict[str, Any] | None:
        return self._sysinfo

    def cached_catalog(self) -> dict[str, dict[str, Any]] | None:
        """Every framework's declarations (model lists where already fetched), or None before the answer."""
        if self._catalog is None:
            return None
        return {name: self._models.get(name, payload) for name, payload in self._catalog.items()}

    def prime(self, *, sysinfo: dict[str, Any] | None = None, models: dict[str, dict[str, Any]] | None = None,
              catalog: dict[str, dict[str, Any]] | None = None) -> None:
        """Fill the cache with known answers (a second window in one session, or tests)."""
        if sysinfo is not None:
            self._sysinfo = sysinfo
        for framework, payload in (models or {}).items():
            self._models[framework] = payload
        if catalog is not None:
            self._catalog = catalog

    def request_catalog(self) -> None:
        """Which frameworks the adapters offer, with their declarations (one fast helper: no framework
        is imported, no model listed)."""
        if self._catalog is not None:
            self.catalog_ready.emit(self._catalog)
            return
        if "catalog" in self._calls or self._closed:
            return
        call = HelperCall("models", "--declarations", parent=self)
        call.succeeded.connect(self._on_catalog)
        call.failed.connect(self._on_catalog_failed)
        self._calls["catalog"] = call
        call.start()

    def prefetch_usable_models(self) -> None:
        """At start-up: the catalog, then the model lists of the frameworks usable here only (one that
        cannot be imported is reported by the catalog, never asked for a list bound to fail)."""
        def usable(catalog: dict[str, dict[str, Any]]) -> list[str]:
            return [name for name, payload in catalog.items() if not payload.get("error")]

        def on_catalog(catalog: dict[str, dict[str, Any]]) -> None:
            self.catalog_ready.disconnect(on_catalog)
            self.prefetch_models(usable(catalog))

        if self._catalog is not None:
            self.prefetch_models(usable(self._catalog))
            return
        self.catalog_ready.connect(on_catalog)
        self.request_catalog()

    # -- requests -----------------------------------------------------------------------------
    def request_models(self, framework: str) -> None:
        if framework in self._models:
            self.models_ready.emit(framework, self._models[framework])
            return
        if framework in self._model_errors:  # failures are cached too: one subprocess per question
            self.models_failed.emit(framework, self._model_errors[framework])
            return
        key = f"models:{framework}"
        if key in self._calls or self._closed:
            return
        call = HelperCall("models", framework, "*", parent=self)
        call.succeeded.connect(lambda payload, fw=framework: self._on_models(fw, payload))
        call.failed.connect(lambda message, fw=framework: self._on_models_failed(fw, message))
        self._calls[key] = call
        call.start()

    def prefetch_models(self, frameworks: list[str]) -> None:
        """Ask for several frameworks one after the other, in the background.

        Starting a subprocess from a big process costs a fork (100 ms or more under load): better
        early and idle than when the user switches framework.
        """
        pending = [fw for fw in frameworks if fw not in self._models and fw not in self._model_errors]
        if not pending or self._closed:
            return

        def next_one(*_: object) -> None:
            if pending and not self._closed:
                framework = pending.pop(0)
                self.request_models(framework)

        self.models_ready.connect(next_one)
        self.models_failed.connect(next_one)
        next_one()

    def request_sysinfo(self) -> None:
        if self._sysinfo is not None:
            self.sysinfo_ready.emit(self._sysinfo)
            return
        if "sysinfo" in self._calls or self._closed:
            return
        call = HelperCall("sysinfo", parent=self)
        call.succeeded.connect(self._on_sysinfo)
        call.failed.connect(self._on_sysinfo_failed)
        self._calls["sysinfo"] = call
        call.start()

    def shutdown(self) -> None:
        """Stop helpers still running and start no new ones (the app is quitting)."""
        self._closed = True
        for call in list(self._calls.values()):
            if call.process.state() != QProcess.ProcessState.NotRunning:
                call.process.kill()
                call.process.waitForFinished(2000)
        self._calls.clear()

    def _forget(self, key: str) -> None:
        # Not deleteLater(): this runs inside the call's own signal; the finished call (a few per
        # session) stays a child of this service and goes with it.
        self._calls.pop(key, None)

    def _on_models(self, framework: str, payload: dict[str, Any]) -> None:
        self._forget(f"models:{framework}")
        self._models[framework] = payload
        self.models_ready.emit(framework, payload)

    def _on_models_failed(self, framework: str, message: str) -> None:
        self._forget(f"models:{framework}")
        self._model_errors[framework] = message
        self.models_failed.emit(framework, message)

    def _on_catalog(self, payload: dict[str, Any]) -> None:
        self._forget("catalog")
        frameworks = payload.get("frameworks")
        if not isinstance(frameworks, dict):
            self._on_catalog_failed("the helper's answer lists no frameworks")
            return
        self._catalog = frameworks
        self.catalog_ready.emit(frameworks)

    def _on_catalog_failed(self, message: str) -> None:
        self._forget("catalog")
        self.catalog_failed.emit(message)

    def _on_sysinfo(self, payload: dict[str, Any]) -> None:
        self._forget("sysinfo")
        self._sysinfo = payload
        self.sysinfo_ready.emit(payload)

    def _on_sysinfo_failed(self, message: str) -> None:
        self._forget("sysinfo")
        self.sysinfo_failed.emit(message)
