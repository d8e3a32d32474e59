"""How a training worker process is started: at once for a known run directory, or ahead of it.

``worker --run-dir DIR`` is the plain way (the queue, resume, tests). A worker spends seconds
importing torch and its framework before it can read a single image, and ``vision-platform train``
spends about half a second of its own (pydantic, SQLAlchemy, config, checks, the job's row) before it
knows the run directory. A :class:`StandbyWorker` overlaps the two: it is started first, imports the
framework the config names (``--warm-config``, a hint only: the job's own ``args.yaml`` is what it
trains with), and waits for a line on stdin naming its run directory (:meth:`StandbyWorker.hand_over`).
Having imported the framework, it can also answer what the ``models`` helper would (the adapter's
``describe`` payload, :meth:`StandbyWorker.describe`): preflight then needs no second framework import
in a helper process.

Once handed over it is the same worker as a plain one: events on stdout, the stop file, SIGTERM and
the parent watchdog, its own process group, the run directory as its working directory. What it wrote
on stderr while waiting (import warnings) is kept in a temporary file that the worker appends to the
run's ``worker.log`` when it takes its run directory, so nothing is lost. A standby that is never
handed over ends at EOF on stdin (:meth:`StandbyWorker.discard`, or its parent's exit).

This module imports nothing heavy: the CLI starts the standby before its own imports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from core import platform
from core.launch import child_env, subcommand

STANDBY_FLAG = "--standby"
EARLY_LOG_FLAG = "--early-log"
WARM_CONFIG_FLAG = "--warm-config"
DESCRIBE_TIMEOUT_S = 300  # a cold framework import on a slow disk (as core.frameworks' helper allows)


def worker_command(run_dir: Path, *, resume: bool) -> list[str]:
    """The command line that starts a worker for ``run_dir`` (frozen app or Python install)."""
    return subcommand("worker", "--run-dir", str(run_dir), *(["--resume"] if resume else []))


def standby_command(early_log: Path, warm_config: Path | None) -> list[str]:
    """A worker that warms up, then reads requests on stdin (below) until it is handed a run dir."""
    hint = [WARM_CONFIG_FLAG, str(warm_config)] if warm_config is not None else []
    return subcommand("worker", STANDBY_FLAG, EARLY_LOG_FLAG, str(early_log), *hint)


# The lines a standby reads on stdin (one definition, both ends): any number of describe requests,
# answered with one line each on stdout, then the handover of its run directory.
def handover_line(run_dir: Path, *, resume: bool) -> str:
    return json.dumps({"run_dir": str(run_dir), "resume": resume}) + "\n"


def describe_line(framework: str, pattern: str, pretrained_pattern: str | None) -> str:
    return json.dumps({"describe": framework, "pattern": pattern, "pretrained": pretrained_pattern}) + "\n"


def read_request(line: str) -> dict[str, Any]:
    """A request line as a dict: ``run_dir`` + ``resume`` (the handover) or ``describe`` + ``pattern``
    + ``pretrained``."""
    request = json.loads(line)
    if not isinstance(request, dict) or not ("run_dir" in request or "describe" in request):
        raise ValueError(f"not a standby worker request: {line[:200]!r}")
    return request


def is_worker_of(command: list[str], cwd: str | None, run_dir: str) -> bool:
    """Whether a process with this command line and working directory is the worker of ``run_dir``:
    a plain worker names it; a standby names none, but works in it once handed over."""
    if "worker" not in command:
        return False
    if "--run-dir" in command:
        return str(run_dir) in command
    return STANDBY_FLAG in command and cwd is not None and Path(cwd).resolve() == Path(run_dir).resolve()


def start_worker_process(command: list[str], *, stdin: Any, stderr: IO[bytes] | int, cwd: Path | None) -> subprocess.Popen[str]:
    """Every worker's pipes and process: events on a text stdout, its own process group (a stop
    kills its data loaders too), the app's child environment, and bound to end with the app (on
    Windows its Job Object; a failure to bind is logged, the worker's parent watchdog remains)."""
    process = subprocess.Popen(
        command,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=child_env(),
        cwd=str(cwd) if cwd is not None else None,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        **platform.new_process_group_options(),
    )
    problem = platform.bind_child_to_app(process)
    if problem:
        logging.getLogger(__name__).warning("worker %s may outlive the app: %s", process.pid, problem)
    return process


class StandbyWorker:
    """A worker process started before its job exists; hand it over once, or discard it."""

    def __init__(self, process: subprocess.Popen[str], early_log: Path) -> None:
        self.process = process
        self.early_log = early_log
        self.handed_over = False

    @classmethod
    def start(cls, warm_config: Path | None = None) -> StandbyWorker | None:
        """Start one; None when it cannot be (the job then starts a plain worker, nothing is lost)."""
        try:
            handle, name = tempfile.mkstemp(prefix="vp-standby-", suffix=".log")
        except OSError:
            return None
        early_log = Path(name)
        try:
            with os.fdopen(handle, "ab") as log:
                process = start_worker_process(standby_command(early_log, warm_config), stdin=subprocess.PIPE,
                                               stderr=log, cwd=None)
        except OSError:
            early_log.unlink(missing_ok=True)
            return None
        return cls(process, early_log)

    def describe(self, framework: str, pattern: str, pretrained_pattern: str | None,
                 timeout: float = DESCRIBE_TIMEOUT_S) -> dict[str, Any] | None:
        """The adapter's ``describe`` payload, as ``vision-platform models`` prints it, from this worker
        (it answers once its warm-up imports are done); None when it cannot answer: the caller asks
        the helper instead. A standby that does not answer in ``timeout`` is discarded."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if self.handed_over or stdin is None or stdout is None or self.process.poll() is not None:
            return None
        answer: list[str] = []
        try:
            stdin.write(describe_line(framework, pattern, pretrained_pattern))
            stdin.flush()
        except OSError:
            return None
        reader = threading.Thread(target=lambda: answer.append(stdout.readline()), daemon=True, name="standby-describe")
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.discard()
            return None
        try:
            reply = json.loads(answer[0]) if answer and answer[0].strip() else {}
        except json.JSONDecodeError:
            return None
        payload = reply.get("describe") if isinstance(reply, dict) else None
        return payload if isinstance(payload, dict) else None

    def hand_over(self, run_dir: Path, *, resume: bool, log: IO[bytes]) -> subprocess.Popen[str] | None:
        """Give the waiting worker its run directory; None if it is gone (its output joins ``log``)."""
        stdin = self.process.stdin
        if self.handed_over or stdin is None or self.process.poll() is not None:
            self._keep_early_log(log)
            return None
        try:
            stdin.write(handover_line(run_dir, resume=resume))
            stdin.close()  # from here on its stdin is at EOF, like a plain worker's
        except OSError:
            self.discard()
            self._keep_early_log(log)
            return None
        self.handed_over = True
        return self.process

    def discard(self) -> None:
        """End a standby that was not handed over: it holds nothing worth keeping, so it is killed
        (it may be importing for seconds before it reads stdin)."""
        if not self.handed_over:
            with contextlib.suppress(OSError):
                self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        self.early_log.unlink(missing_ok=True)  # the worker moved it into worker.log (or never will)

    def _keep_early_log(self, log: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            log.write(self.early_log.read_bytes())
            log.flush()
