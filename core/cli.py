"""Headless command line: ``vision-platform train|jobs|show|cancel|resume|extend|dataset|…``.

Every GUI action has a twin here, using the same config YAML. (The GUI itself and the worker
sub-commands are dispatched by ``vision_platform.launcher``.)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.events import describe_event
from core.jobs.spawn import StandbyWorker

# pydantic and SQLAlchemy (~0.3 s) are imported where used: `train` starts its worker before them.
if TYPE_CHECKING:
    from core.config import JobConfig
    from core.db.engine import Store
    from core.frameworks import Catalog
    from core.jobs.listeners import JobListener


def _store() -> Store:
    # Jobs and MLflow runs a killed runner left running end as interrupted / KILLED (mlflow is
    # imported only if there are any); the same start-up service as the desktop app's.
    from core.services.settings import finish_leftover_work, open_data_store

    store = open_data_store()
    finish_leftover_work(store, uploads=False)
    return store


# ---------------------------------------------------------------------------------------- train
class _ProgressPrinter:
    """A one-line progress bar on a terminal; plain lines when piped (CI logs, files)."""

    def __init__(self, stream: Any = sys.stdout) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.lock = threading.Lock()
        self.last_line_len = 0

    def _bar(self, fraction: float, width: int = 30) -> str:
        filled = int(round(width * max(0.0, min(1.0, fraction))))
        return "[" + "#" * filled + "-" * (width - filled) + "]"

    def __call__(self, job_id: int, event: dict[str, Any]) -> None:
        with self.lock:
            kind = event.get("type")
            if kind == "progress" and self.tty:
                steps = event.get("steps") or 1
                line = f"epoch {event['epoch']}/{event['epochs']} {self._bar(event['step'] / steps)} {event['step']}/{steps}"
                self.stream.write("\r" + line.ljust(self.last_line_len))
                self.last_line_len = len(line)
                self.stream.flush()
            elif kind != "error":  # errors are reported once, at the end, with the log path
                text = describe_event(event)
                if text is not None:
                    self._line(text)

    def _line(self, text: str) -> None:
        if self.tty and self.last_line_len:
            self.stream.write("\r" + " " * self.last_line_len + "\r")
            self.last_line_len = 0
        self.stream.write(text + "\n")
        self.stream.flush()


def run_job_in_foreground(store: Store, job_id: int) -> str:
    """Run one queued job here, printing progress; Ctrl+C asks the worker to stop gracefully.

    Returns once tracking and uploads have finished too (bounded); :func:`run_and_report` reports the
    job's end first."""
    status, listeners = _run_with_listeners(store, job_id)
    _finish_background_work(listeners, announce=False)
    return status


def run_and_report(store: Store, job_id: int, standby: StandbyWorker | None = None) -> int:
    """Run the job, print its end ("job N completed") as soon as its state is final, then wait for
    MLflow and checkpoint uploads and say how long they took: upload time is not job time."""
    status, listeners = _run_with_listeners(store, job_id, standby)
    code = _report_end(store, job_id, status)
    _finish_background_work(listeners, announce=True)
    return code


def _run_with_listeners(store: Store, job_id: int, standby: StandbyWorker | None = None) -> tuple[str, list[JobListener]]:
    """The job's final state, and its listeners (tracking, sync), which may still be working."""
    from core.jobs import store as job_store
    from core.jobs.queue import default_listeners
    from core.jobs.runner import JobRunner

    listeners = default_listeners(store)
    runner = JobRunner(store, listeners=listeners, on_event=_ProgressPrinter())
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(_signum: int, _frame: Any) -> None:
        print("\nstopping… (the current batch finishes, last.pt is kept)", file=sys.stderr)
        job_store.stop_file_for(job_id).touch()

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        status = runner.run(job_id, standby=standby)
    except BaseException:
        _finish_background_work(listeners, announce=False)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    return status, listeners


def _finish_background_work(listeners: list[JobListener], *, announce: bool) -> None:
    """Close the listeners: MLflow's last metrics and artifacts, checkpoint uploads (bounded wait)."""
    started = time.perf_counter()
    if announce and listeners:
        names = " and ".join(getattr(listener, "work_name", type(listener).__name__) for listener in listeners)
        print(f"finishing {names}…", end="", flush=True)
    for listener in listeners:
        try:
            listener.close(10.0)
        except Exception:
            logging.getLogger(__name__).exception("listener close failed")
    if announce and listeners:
        print(f" done in {time.perf_counter() - started:.1f} s", flush=True)


def _report_end(store: Store, job_id: int, status: str) -> int:
    from core.jobs import store as job_store

    job = job_store.get_job(store, job_id)
    print(f"job {job_id} {status}", end="")
    if job.best_metric_name and job.best_metric_value is not None:
        print(f" — best {job.best_metric_name} = {job.best_metric_value:.4f}", end="")
    print(flush=True)  # a pipe reader (CI log, a script) learns the end now, not after the uploads
    if status == "failed":
        print(f"error: {job.error_message}", file=sys.stderr)
        if job.error_traceback:
            print(job.error_traceback, file=sys.stderr)
        print(f"log: {Path(job.output_dir or '') / 'worker.log'}", file=sys.stderr)
    return 0 if status == "completed" else 1


def cmd_train(args: argparse.Namespace) -> int:
    # The worker first: it imports torch and the framework (seconds) while this process reads the
    # config, checks the dataset and queues the job; then it is handed the job's run dir.
    standby = StandbyWorker.start(Path(args.config).absolute())
    try:
        return _queue_and_run(args.config, standby)
    finally:
        if standby is not None:
            standby.discard()


def _queue_and_run(config_file: Path, standby: StandbyWorker | None) -> int:
    from core.config import ConfigError, load_config
    from core.jobs import store as job_store
    from core.jobs.preflight import preflight
    from core.services import ServiceError

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = _store()
    try:
        config = _with_local_dataset(store, config)
    except KeyboardInterrupt:
        print("\ndownload cancelled; nothing was added to the cache", file=sys.stderr)
        return 130
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warming = _warm_up_tracking(store)
    problems = preflight(config, catalog=lambda: _catalog_from(standby, config))
    for problem in problems:
        print(f"{problem.severity}: {problem.message}", file=sys.stderr)
    if any(p.severity == "error" for p in problems):
        if warming is not None:  # never exit while MLflow may be creating its store's tables
            warming.join()
        return 2
    from core.services.jobs import queue_job

    job_id = queue_job(store, config)
    print(f"job {job_id}: {config.display_name()} ({config.framework}/{config.model}), run dir {job_store.get_job(store, job_id).output_dir}")
    return run_and_report(store, job_id, standby)


def _with_local_dataset(store: Store, config: JobConfig) -> JobConfig:
    """An ``r2://`` dataset is fetched into the app's download cache (or found there) before the job is
    queued, with a progress bar; the job then names the local copy (workers never reach the network).
    Ctrl+C stops the download (KeyboardInterrupt) and leaves nothing partial in the cache."""
    from core.storage.r2url import is_r2_url

    if not is_r2_url(config.dataset):
        return config
    from core.commands import print_warning
    from core.services.datasets import fetch_r2_dataset
    from core.settings import Settings

    bar = _DownloadBar(config.dataset)
    try:
        local, downloaded = fetch_r2_dataset(config.dataset, Settings.load(store), progress=bar, notice=print_warning)
    finally:
        bar.close()
    print(f"dataset {config.dataset}: {'downloaded to' if downloaded else 'cached in'} {local}", flush=True)
    return config.model_copy(update={"dataset": str(local)})


class _DownloadBar:
    """Bytes received, as a tqdm bar on a terminal (stderr, like ``predict``); silent when piped."""

    def __init__(self, url: str, stream: Any = None) -> None:
        self.url = url
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar: Any = None

    def __call__(self, received: int, total: int) -> None:
        if not self.tty:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=Path(self.url).name,
                            file=self.stream, dynamic_ncols=True)
        self.bar.total = max(total, self.bar.total or 0)
        self.bar.update(received - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _warm_up_tracking(store: Store) -> threading.Thread | None:
    """When tracking is on, import MLflow and open its store in the background (~2 s of CPU): now,
    while this process waits for the worker's framework imports, a core is idle; from the job's start
    on it would compete with the training. The job's MLflow listener then finds both warm."""
    from core.settings import Settings

    settings = Settings.load(store)
    if not settings.tracking_enabled:
        return None

    def warm_up() -> None:
        try:
            from core.tracking import MlflowTracker

            MlflowTracker(settings=settings).client  # noqa: B018 - creating the client opens the store
        except Exception as exc:  # the listener reports an unreachable store itself, once
            logging.getLogger(__name__).debug("MLflow warm-up skipped: %s", exc)

    thread = threading.Thread(target=warm_up, daemon=True, name="mlflow-warm-up")
    thread.start()
    return thread


def _catalog_from(standby: StandbyWorker | None, config: JobConfig) -> Catalog | None:
    """The job's framework as preflight judges it, told by the standby worker, which has imported it
    anyway (the ``models`` helper would import it a second time); None: preflight asks the helper."""
    import glob

    from core.frameworks import FrameworkInfo

    payload = standby.describe(config.framework, "*", glob.escape(config.model)) if standby is not None else None
    return {config.framework: FrameworkInfo.from_payload(payload)} if payload is not None else None


def cmd_resume(args: argparse.Namespace) -> int:
    from core.commands.jobs import cmd_resume as resume

    return resume(args)


# ---------------------------------------------------------------------------------------- inspect
# The older top-level names run the `job …` group's handlers (core/commands/jobs.py).
def cmd_jobs(args: argparse.Namespace) -> int:
    from core.commands.jobs import cmd_list

    return cmd_list(args)


def cmd_show(args: argparse.Namespace) -> int:
    from core.commands.jobs import cmd_show as show

    return show(args)


def cmd_cancel(args: argparse.Namespace) -> int:
    from core.commands.jobs import cmd_cancel as cancel

    return cancel(args)


# Commands defined in this module: parsing them needs none of the command groups registered below
# (~0.1 s of imports that `train` would otherwise pay before its worker starts).
OWN_COMMANDS = frozenset({"train", "jobs", "show", "cancel", "resume", "extend"})


def _own_command(argv: list[str]) -> bool:
    """Whether ``argv`` runs one of :data:`OWN_COMMANDS` (top-level help needs every group)."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            continue
        return arg in OWN_COMMANDS
    return False


def build_parser(*, groups: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vision-platform", description="Train and test vision models offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug information")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="queue and run a job from a config YAML, showing progress")
    train.add_argument("config", type=Path)
    train.set_defaults(handler=cmd_train)

    jobs = sub.add_parser("jobs", help="list jobs with status, epoch and best metric")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs)

    show = sub.add_parser("show", help="a job's config, metrics per epoch and checkpoints")
    show.add_argument("job_id", type=int)
    show.set_defaults(handler=cmd_show)

    cancel = sub.add_parser("cancel", help="stop a queued or running job")
    cancel.add_argument("job_id", type=int)
    cancel.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to stop")
    cancel.set_defaults(handler=cmd_cancel)

    resume = sub.add_parser("resume", help="continue an interrupted, failed or cancelled job from last.pt")
    resume.add_argument("job_id", type=int)
    resume.set_defaults(handler=cmd_resume)

    extend = sub.add_parser("extend", help="train a finished job for N more epochs from last.pt")
    extend.add_argument("job_id", type=int)
    extend.add_argument("--epochs", type=int, required=True)
    extend.set_defaults(handler=cmd_resume)
    if groups:
        _register_groups(sub)
    return parser


def _register_groups(sub: Any) -> None:
    from core.datasets.cli import register as register_dataset
    from core.storage.cli import register as register_storage
    from core.tracking.cli import register as register_tracking

    register_dataset(sub)
    register_tracking(sub)
    register_storage(sub)
    from core.commands.checkpoints import register as register_checkpoints
    from core.commands.jobs import register as register_jobs
    from core.commands.predict import register as register_predict

    register_jobs(sub)
    register_checkpoints(sub)
    register_predict(sub)
    from core.commands.export import register as register_export

    register_export(sub)
    from core.commands.weights import register as register_weights

    register_weights(sub)
    from core.commands.projects import register as register_projects
    from core.commands.settings import register as register_settings

    register_projects(sub)
    register_settings(sub)
    from core.commands.selftest import register as register_selftest

    register_selftest(sub)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(groups=not _own_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = args.handler
    try:
        result: int = handler(args)
    except Exception as exc:
        # Imported here, not at the top: `train` starts its worker before SQLAlchemy is imported.
        from core.db.sessions import DataStoreError

        if not isinstance(exc, DataStoreError):
            raise
        # A damaged database (moved aside and rebuilt), a busy one: no traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result
