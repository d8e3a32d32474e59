"""Worker-side commands (run as subprocesses of the app or the runner; never typed by users).

``worker --run-dir DIR [--resume]``  trains one job: reads the config and job info of the run dir
    (``core.rundir.RunDir``: ``args.yaml``, ``job.json``),
    writes protocol events (``core.events``) on stdout, logs on stderr.
``models FRAMEWORK [PATTERN]``        prints a JSON list of model names (for the GUI's pickers).
``sysinfo``                           prints JSON: devices (CPU, GPUs with memory), framework versions.
``infer-worker``                      a warm inference process (see ``adapters.inference_server``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from core.config import ConfigError, load_config
from core.events import EventWriter
from core.launch import apply_offline_env
from core.reporter import JsonLinesReporter
from core.rundir import RunDir


def _watch_parent(original_parent: int) -> None:
    """Die with the supervising process: an orphaned worker would hold the GPU with nobody listening."""
    while True:
        time.sleep(1.0)
        if os.getppid() != original_parent:
            os._exit(70)


def _exit_now(code: int) -> NoReturn:
    """End the training worker without the interpreter's teardown.

    After a run, tearing down torch and Ultralytics took 2-4 s here (native finalisation, no Python
    frames), and the job only reads as finished when the worker has exited. By this point every event
    line is flushed, checkpoints are fsynced by their atomic writes, the checkpoint saver thread has
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


def run_worker(run_dir: Path, resume: bool) -> int:
    files = RunDir(run_dir)
    # Protocol events own stdout; everything else (framework prints, warnings) must go to stderr.
    event_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    writer = EventWriter(event_stream)
    reporter = JsonLinesReporter(writer, stop_file=files.stop)
    # SIGTERM asks for a graceful stop between batches; the runner escalates to SIGKILL if ignored.
    signal.signal(signal.SIGTERM, lambda *_: reporter.request_stop())
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    from adapters.base import AdapterError
    from adapters.registry import get_adapter_class

    try:
        config = load_config(files.args)
        job_info = files.read_job_info()
        writer.emit("hello", pid=os.getpid(), framework=config.framework, protocol=1)
        adapter_class = get_adapter_class(config.framework)
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


def list_models_command(framework: str, pattern: str) -> int:
    from adapters.registry import get_adapter_class

    adapter_class = get_adapter_class(framework)
    models = adapter_class.list_models(pattern)
    # Which of them have pretrained weights on disk (a cache look-up per model, no download).
    pretrained = [name for name in models[:2000] if adapter_class.pretrained_available(name)]
    payload: dict[str, Any] = {"framework": framework, "tasks": list(adapter_class.tasks), "models": models,
                               "pretrained": pretrained}
    print(json.dumps(payload))
    return 0


def sysinfo_command() -> int:
    info: dict[str, Any] = {"devices": [{"id": "cpu", "name": "CPU", "memory_bytes": None}], "versions": {}}
    try:
        import torch

        info["versions"]["torch"] = torch.__version__
        if torch.cuda.is_available():
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                info["devices"].append({"id": f"cuda:{index}", "name": props.name, "memory_bytes": props.total_memory})
    except Exception as exc:  # an app without a working torch still opens
        info["error"] = f"torch unavailable: {exc}"
    print(json.dumps(info))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-platform")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--run-dir", required=True, type=Path)
    worker.add_argument("--resume", action="store_true")
    models = sub.add_parser("models")
    models.add_argument("framework")
    models.add_argument("pattern", nargs="?", default="*")
    sub.add_parser("sysinfo")
    sub.add_parser("infer-worker")
    args = parser.parse_args(argv)
    # Before any framework import, whoever started us: nothing waits on the network or reports usage.
    apply_offline_env(os.environ)
    if args.command == "worker":
        code = run_worker(args.run_dir.resolve(), args.resume)
        _exit_now(code)
    if args.command == "models":
        return list_models_command(args.framework, args.pattern)
    if args.command == "sysinfo":
        return sysinfo_command()
    if args.command == "infer-worker":
        from adapters.inference_server import serve

        return serve()
    return 2
