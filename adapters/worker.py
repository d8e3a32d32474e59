"""Worker-side commands (run as subprocesses of the app or the runner; never typed by users).

``worker --run-dir DIR [--resume]``  trains one job: reads the config and job info of the run dir
    (``core.rundir.RunDir``: ``args.yaml``, ``job.json``),
    writes protocol events (``core.events``) on stdout, logs on stderr.
``worker --standby --early-log F [--warm-config YAML]``  the same worker, started before its job
    exists: imports the framework the config names, then reads its run dir on stdin
    (``core.jobs.spawn``).
``models [FRAMEWORK [PATTERN]]``      prints what the adapters declare (tasks, defaults, config keys …)
                                      and the model names (for the GUI's pickers and preflight).
``sysinfo``                           prints JSON: devices (CPU, GPUs with memory), framework versions.
``infer-worker``                      a warm inference process (see ``adapters.inference_server``).
``export-worker --request FILE``      exports a checkpoint, checks parity (see ``adapters.export``).
``augment-preview --request FILE --out DIR``  augmented training samples as PNGs (the Train page's
                                      preview, see ``adapters.augment_preview``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any, NoReturn

from core import gc_policy, platform
from core.config import ConfigError, load_config
from core.events import EventWriter
from core.jobs.spawn import EARLY_LOG_FLAG, STANDBY_FLAG, WARM_CONFIG_FLAG, read_request
from core.launch import apply_offline_env
from core.reporter import JsonLinesReporter
from core.rundir import RunDir


def _watch_parent(parent: platform.ProcessIdentity | None) -> None:
    """Die with the supervising process: an orphaned worker would hold the GPU with nobody listening."""
    while True:
        time.sleep(1.0)
        if not platform.parent_alive(parent):
            os._exit(70)


def _exit_now(code: int) -> NoReturn:
    """End the training worker without the interpreter's teardown.

    After a run, tearing down torch and Ultralytics took 2-4 s here (native finalisation, no Python
    frames), and the job only reads as finished when the worker has exited. By this point every event
    line is flushed, checkpoints are fsynced by their atomic writes, the checkpoint writer thread has
    been joined and no framework thread is left (checked: only the main thread and our daemon
    watchdog run), so logs are flushed and the process ends at once.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _take_stdout_for_events() -> IO[str]:
    """Protocol events own stdout; everything else (framework prints, warnings) goes to stderr."""
    event_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return event_stream


def _start_parent_watchdog() -> None:
    threading.Thread(target=_watch_parent, args=(platform.parent_identity(),), daemon=True,
                     name="parent-watchdog").start()


def run_worker(run_dir: Path, resume: bool, event_stream: IO[str] | None = None) -> int:
    """Train the job of ``run_dir``. ``event_stream``: set by a standby worker, which has already
    taken stdout and started its parent watchdog."""
    files = RunDir(run_dir)
    if event_stream is None:
        event_stream = _take_stdout_for_events()
        _start_parent_watchdog()
    writer = EventWriter(event_stream)
    reporter = JsonLinesReporter(writer, stop_file=files.stop)
    # SIGTERM asks for a graceful stop between batches; the runner escalates to SIGKILL if ignored.
    signal.signal(signal.SIGTERM, lambda *_: reporter.request_stop())

    from adapters.base import AdapterError
    from adapters.registry import get_adapter_class

    try:
        config = load_config(files.args)
        job_info = files.read_job_info()
        writer.emit("hello", pid=os.getpid(), framework=config.framework, protocol=1)
        adapter_class = get_adapter_class(config.framework)
        with gc_policy.paused():  # a plain worker imports its framework here (a standby has: a no-op)
            adapter_class.warm_up()
        if config.task not in adapter_class.tasks:
            raise AdapterError(
                f"{config.framework} does not support the task {config.task!r} (it supports: {', '.join(adapter_class.tasks)})"
            )
        adapter = adapter_class(config, run_dir, reporter, resume=resume, job_id=job_info.get("job_id"),
                                project_id=job_info.get("project_id"))
        result = adapter.fit()
    except (AdapterError, ConfigError) as exc:
        writer.emit("error", message=str(exc), traceback=None)
        return 2
    except Exception as exc:
        writer.emit("error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        return 1
    writer.emit(
        "done",
        status=result.status,
        epochs_completed=result.epochs_completed,
        best_metric_name=result.best_metric_name,
        best_metric_value=result.best_metric_value,
    )
    return 0


def _warm_up(warm_config: Path | None) -> None:
    """Import what the job will need while its caller is still preparing it: the framework its config
    names, else torch (every adapter trains with it). A hint only: a problem here is left for the job
    to report, from its own ``args.yaml``."""
    from adapters.registry import get_adapter_class

    try:
        with gc_policy.paused():  # torch + a framework: 0.7 s less with no cyclic collection meanwhile
            if warm_config is not None:
                get_adapter_class(load_config(warm_config).framework).warm_up()
            else:
                import torch  # noqa: F401
    except Exception as exc:
        logging.getLogger(__name__).debug("warm-up skipped: %s", exc)


def _move_output_to(log_file: Path, early_log: Path) -> None:
    """From now on stderr (and stray stdout) go to the run's log, after what was written while waiting."""
    sys.stderr.flush()
    with open(log_file, "ab") as log:
        with contextlib.suppress(OSError):
            log.write(early_log.read_bytes())
            log.flush()
        os.dup2(log.fileno(), sys.stderr.fileno())
        os.dup2(log.fileno(), sys.stdout.fileno())
    with contextlib.suppress(OSError):
        early_log.unlink(missing_ok=True)


def _describe(request: dict[str, Any]) -> dict[str, Any]:
    """The ``models`` helper's answer to a standby's describe request, or why there is none."""
    from adapters.registry import get_adapter_class

    try:
        adapter_class = get_adapter_class(str(request["describe"]))
        return {"describe": adapter_class.describe(request.get("pattern"), pretrained_pattern=request.get("pretrained"))}
    except Exception as exc:
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def run_standby(early_log: Path, warm_config: Path | None) -> int:
    """A worker started before its job exists (``core.jobs.spawn.StandbyWorker``): warm up, answer
    describe requests, then train the run dir it is handed. EOF instead: not needed after all."""
    event_stream = _take_stdout_for_events()
    _start_parent_watchdog()
    _warm_up(warm_config)
    for line in sys.stdin:
        request = read_request(line)
        if "run_dir" not in request:
            event_stream.write(json.dumps(_describe(request)) + "\n")
            continue
        run_dir = Path(request["run_dir"]).resolve()
        _move_output_to(RunDir(run_dir).log, early_log)
        os.chdir(run_dir)  # as a plain worker's: the run dir is where relative outputs land
        return run_worker(run_dir, bool(request.get("resume")), event_stream)
    return 0


def list_models_command(framework: str | None, pattern: str | None, pretrained_pattern: str | None = None) -> int:
    """One framework's payload (``TrainingAdapter.describe``); without a framework, every registered
    framework's declarations (no model listing, no framework import) with the reason for any that
    cannot be used here, as ``{"frameworks": {name: payload}}``."""
    from adapters.registry import describe_all, get_adapter_class

    if framework is None:
        print(json.dumps({"frameworks": describe_all()}))
        return 0
    print(json.dumps(get_adapter_class(framework).describe(pattern, pretrained_pattern=pretrained_pattern)))
    return 0


def sysinfo_command() -> int:
    info: dict[str, Any] = {"devices": [{"id": "cpu", "name": "CPU", "memory_bytes": None}], "versions": {}}
    try:
        import torch

        from adapters.devices import list_devices

        info["versions"]["torch"] = torch.__version__
        info["devices"] = list_devices(torch)
    except Exception as exc:  # an app without a working torch still opens
        info["error"] = f"torch unavailable: {exc}"
    print(json.dumps(info))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["export-worker"]:  # its own options (adapters/export.py)
        apply_offline_env(os.environ)
        from adapters.export import main as export_main

        return export_main(argv[1:])
    if argv[:1] == ["augment-preview"]:  # its own options (adapters/augment_preview.py)
        apply_offline_env(os.environ)
        from adapters.augment_preview import main as preview_main

        return preview_main(argv[1:])
    parser = argparse.ArgumentParser(prog="vision-platform")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    start = worker.add_mutually_exclusive_group(required=True)
    start.add_argument("--run-dir", type=Path)
    start.add_argument(STANDBY_FLAG, action="store_true")
    worker.add_argument("--resume", action="store_true")
    worker.add_argument(EARLY_LOG_FLAG, type=Path)
    worker.add_argument(WARM_CONFIG_FLAG, type=Path)
    models = sub.add_parser("models")
    models.add_argument("framework", nargs="?")
    models.add_argument("pattern", nargs="?", default="*")
    models.add_argument("--declarations", action="store_true", help="the declarations only, no model list")
    models.add_argument("--pretrained", metavar="PATTERN", help="look up pretrained weights for these models only")
    sub.add_parser("sysinfo")
    sub.add_parser("infer-worker")
    args = parser.parse_args(argv)
    if args.command == "worker" and args.standby and args.early_log is None:
        parser.error(f"worker {STANDBY_FLAG} needs {EARLY_LOG_FLAG}")
    # Before any framework import, whoever started us: nothing waits on the network or reports usage.
    apply_offline_env(os.environ)
    if args.command == "worker" and args.standby:
        _exit_now(run_standby(args.early_log, args.warm_config))
    if args.command == "worker":
        code = run_worker(args.run_dir.resolve(), args.resume)
        _exit_now(code)
    if args.command == "models":  # short-lived helpers that import a framework: no collection at all
        with gc_policy.paused():
            return list_models_command(args.framework, None if args.declarations else args.pattern, args.pretrained)
    if args.command == "sysinfo":
        with gc_policy.paused():
            return sysinfo_command()
    if args.command == "infer-worker":
        from adapters.inference_server import serve

        return serve()
    return 2
