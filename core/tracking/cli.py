"""CLI: ``vision-platform mlflow-ui`` and ``vision-platform mlflow-sync``."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from typing import Any

from core import platform
from core.launch import child_env
from core.storage.credentials import mask_uri


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mlflow_ui_command(uri: str, port: int, artifact_root: str | None = None) -> list[str]:
    # ``sys.executable -m mlflow``: the mlflow of this venv, not whatever is first on PATH.
    # One worker: a desktop UI for one user; four (the default) cost seconds of start-up each on 2 cores.
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1"]
    if artifact_root:
        command += ["--default-artifact-root", artifact_root]
    return command


def start_mlflow_ui(uri: str | None = None, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``mlflow ui`` on 127.0.0.1 at a free port pointed at our store; returns (process, URL).

    The GUI button uses the same function (and stops the process when the app quits).
    """
    from core.tracking.mlflow_logger import artifact_root, is_local_store

    store_uri = uri or tracking_uri_from_store()
    if not is_local_store(store_uri):
        raise ValueError(f"the tracking store is a server already ({mask_uri(store_uri)}): open it in a browser")
    chosen = port or free_port()
    env = child_env()  # offline, MLflow's usage telemetry off, no credentials (a local store needs none)
    # MLflow 3's server starts background job consumers (GenAI scorers) in extra processes: about a
    # minute of start-up on 2 cores for features a training bookkeeping UI does not use.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    process = subprocess.Popen(
        mlflow_ui_command(store_uri, chosen, artifact_root()), stdin=subprocess.DEVNULL, env=env, **platform.no_console_options()
    )
    platform.bind_child_to_app(process)  # Windows: the UI server ends with the app (its Job Object)
    return process, f"http://127.0.0.1:{chosen}"


def tracking_uri_from_store() -> str:
    from core.db.engine import open_store
    from core.settings import Settings
    from core.tracking.mlflow_logger import tracking_uri

    return tracking_uri(Settings.load(open_store()))


def wait_until_listening(port: int, process: subprocess.Popen[Any], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    uri = args.backend_store_uri or tracking_uri_from_store()
    try:
        process, url = start_mlflow_ui(uri, args.port)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    port = int(url.rsplit(":", 1)[1])
    print(f"MLflow UI for {mask_uri(uri)}")
    if wait_until_listening(port, process):
        print(f"Open {url}  (Ctrl+C to stop)", flush=True)
    try:
        return int(process.wait() or 0)
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        return 0


def cmd_mlflow_sync(args: argparse.Namespace) -> int:
    """Finish runs left open and re-send metrics MLflow missed (from SQLite)."""
    from core.db.engine import open_store
    from core.settings import Settings
    from core.tracking.listener import jobs_with_metric_gaps, resend_metrics, terminate_orphaned_runs

    store = open_store()
    settings = Settings.load(store)
    finished = terminate_orphaned_runs(store, settings=settings)
    for job_id, status in finished.items():
        print(f"job {job_id}: run ended {status}")
    job_ids = [args.job_id] if args.job_id is not None else jobs_with_metric_gaps(store)
    failures = 0
    for job_id in job_ids:
        try:
            result = resend_metrics(store, job_id, settings=settings)
        except Exception as exc:
            failures += 1
            print(f"job {job_id}: could not re-send ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        print(f"job {job_id}: {result.metric_rows_sent} metric rows re-sent to run {result.run_id}")
    if not finished and not job_ids:
        print("MLflow is up to date")
    return 1 if failures else 0


def register(subparsers: Any) -> None:
    ui = subparsers.add_parser("mlflow-ui", help="open the MLflow UI on this machine's tracking store")
    ui.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    ui.add_argument("--backend-store-uri", default=None, help="default: the app's store (Settings / MLFLOW_TRACKING_URI)")
    ui.set_defaults(handler=cmd_mlflow_ui)

    sync = subparsers.add_parser("mlflow-sync", help="re-send metrics MLflow missed and end runs left open")
    sync.add_argument("job_id", type=int, nargs="?", default=None)
    sync.set_defaults(handler=cmd_mlflow_sync)
