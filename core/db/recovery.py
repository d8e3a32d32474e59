"""A damaged database: detect it, move it aside, rebuild what the run folders still know.

When: after an unclean shutdown (an open marker of a dead process, :mod:`core.db.sessions`) the
store is checked with ``PRAGMA quick_check`` before use; and whenever opening or migrating it fails
with SQLite's "corrupt" or "not a database" error, whatever the markers say.

What is kept: nothing is deleted. The damaged file and its ``-wal``/``-shm`` are renamed to
``vision_platform.db.corrupt-YYYYmmdd-HHMMSS`` (+ ``-wal``/``-shm``) beside it, for the user or a
``sqlite3 .recover``. A fresh store is then filled from the run folders, which the runner and the
workers write independently of the database (:class:`core.rundir.RunDir`):

- a job per ``job_<id>/`` with a readable ``args.yaml`` (its config) and ``job.json`` (its id), under
  its old id (so its run folder stays its own) and in its project by name, as ``interrupted``:
  its final state lived only in the database;
- its checkpoints (``weights/best.pt``, ``weights/last.pt``, or a ``weights/<kind>/`` folder's
  ``.safetensors``) with the sha256 and size of the file as it is now, and best's epoch and metric
  from ``best.json`` when the adapter wrote one.

Per-epoch metrics, registered datasets, settings and the upload queue have no copy outside the
database; the report (:meth:`RecoveryReport.message`) says so, with where the damaged file went.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.db.sessions import DataStoreError

if TYPE_CHECKING:
    from core.db.engine import Store

CORRUPT_SUFFIX = ".corrupt-"
CORRUPT_STAMP = "%Y%m%d-%H%M%S"
SIDE_FILES = ("-wal", "-shm")
QUICK_CHECK_ROWS = 5  # problems quoted in the report
# SQLite's primary result codes for a damaged file (extended codes keep them in the low byte).
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
CORRUPTION_CODES = (SQLITE_CORRUPT, SQLITE_NOTADB)
CHECK_TIMEOUT_S = 30.0
REBUILT_NOTE = ("Rebuilt from its run folder after the database was found damaged: its final state, metrics "
                "and uploads were not recoverable.")


class DataStoreRecovered(DataStoreError):
    """The store was damaged and has been rebuilt; the message is the :class:`RecoveryReport`."""

    def __init__(self, report: RecoveryReport) -> None:
        super().__init__(report.message())
        self.report = report


# -- detection -------------------------------------------------------------------------------------
def _sqlite_error(exc: BaseException | None) -> sqlite3.DatabaseError | None:
    """The sqlite3 error behind ``exc`` (SQLAlchemy wraps it as ``orig``, Alembic as a cause)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sqlite3.DatabaseError):
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the file is damaged or not a database (not "locked", "no disk")."""
    error = _sqlite_error(exc)
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in CORRUPTION_CODES


def quick_check(db_file: Path) -> str | None:
    """None when ``PRAGMA quick_check`` says ok; else what is wrong, in SQLite's words.

    Not ``integrity_check``: quick_check finds damaged pages and records in O(N), without
    cross-checking every index against its table (O(N log N)), so a start stays short.
    """
    if not db_file.exists():
        return None
    try:
        # Read-only: closing it must not checkpoint a -wal into a damaged file, nor delete the -wal.
        connection = sqlite3.connect(f"{db_file.as_uri()}?mode=ro", uri=True, timeout=CHECK_TIMEOUT_S)
        try:
            rows = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        return str(exc)
    if rows == ["ok"]:
        return None
    return "; ".join(rows[:QUICK_CHECK_ROWS]) + (f" (and {len(rows) - QUICK_CHECK_ROWS} more)" if len(rows) > QUICK_CHECK_ROWS else "")


# -- the report ------------------------------------------------------------------------------------
@dataclass
class RecoveryReport:
    db_file: Path
    problem: str
    moved_to: Path
    runs_dir: Path
    jobs: list[int] = field(default_factory=list)
    checkpoints: int = 0
    skipped: list[str] = field(default_factory=list)  # "job_7: args.yaml is missing"

    def message(self) -> str:
        skipped = f" Not rebuilt: {'; '.join(self.skipped)}." if self.skipped else ""
        return (
            f"The database {self.db_file} was damaged ({self.problem}). It was moved aside to {self.moved_to} "
            f"(with its -wal/-shm files, if any) and a fresh database was built from the run folders in "
            f"{self.runs_dir}: {len(self.jobs)} job(s) and {self.checkpoints} checkpoint(s) (pickle .pt files "
            f"ask for your consent again before they load). Rebuilt jobs are marked interrupted: their final state was lost.{skipped} "
            "Per-epoch metrics, registered datasets, settings and the upload queue were only in the database: "
            "register the datasets and check Settings again."
        )


# -- moving aside ----------------------------------------------------------------------------------
def move_aside(db_file: Path, now: float | None = None) -> Path:
    """Rename the database and its -wal/-shm to ``<name>.corrupt-<stamp>``; returns the new main path."""
    stamp = time.strftime(CORRUPT_STAMP, time.localtime(now if now is not None else time.time()))
    target = db_file.with_name(f"{db_file.name}{CORRUPT_SUFFIX}{stamp}")
    serial = 1
    while target.exists():  # two repairs within one second
        target = db_file.with_name(f"{db_file.name}{CORRUPT_SUFFIX}{stamp}-{serial}")
        serial += 1
    for suffix in SIDE_FILES:
        side = Path(f"{db_file}{suffix}")
        if side.exists():
            os.replace(side, f"{target}{suffix}")
    os.replace(db_file, target)
    return target


# -- rebuilding from run folders -------------------------------------------------------------------
@dataclass(frozen=True)
class _FoundJob:
    job_id: int
    config: Any  # core.config.JobConfig
    config_yaml: str
    run_dir: Path


def _read_run_dir(folder: Path) -> _FoundJob:
    """The job a run folder describes; ValueError saying what is missing or unreadable."""
    import yaml

    from core.config import ConfigError, config_from_dict
    from core.rundir import RunDir

    run = RunDir(folder)
    if not run.args.is_file():
        raise ValueError(f"{run.args.name} is missing")
    try:
        info = run.read_job_info()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{run.job_info.name} is unreadable ({exc})") from None
    job_id = info.get("job_id") or _id_from_name(folder)
    text = run.args.read_text(encoding="utf-8", errors="replace")
    try:
        config = config_from_dict(yaml.safe_load(text) or {}, source=str(run.args))
    except (ConfigError, yaml.YAMLError) as exc:
        raise ValueError(f"{run.args.name} is not a valid job config ({str(exc).splitlines()[0]})") from None
    return _FoundJob(int(job_id), config, text, folder)


def _id_from_name(folder: Path) -> int:
    digits = folder.name.removeprefix("job_")
    if not digits.isdigit():
        raise ValueError("job.json is missing and the folder name has no job id")
    return int(digits)


def _checkpoint_file(folder: Path, kind: str) -> Path | None:
    """``weights/<kind>.pt``, or the weights file of a ``weights/<kind>/`` model folder."""
    from core.rundir import RunDir, checkpoint_file_name

    wdir = RunDir(folder).wdir
    single = wdir / checkpoint_file_name(kind)
    if single.is_file():
        return single
    model_folder = wdir / kind
    files = sorted(model_folder.glob("*.safetensors")) if model_folder.is_dir() else []
    return files[0] if files else None


def _best_info(folder: Path) -> dict[str, Any]:
    from core.rundir import RunDir

    path = RunDir(folder).best_info
    try:
        info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    except OSError:
        return None


def _add_job(session: Any, found: _FoundJob, project_id: int, user_id: int) -> Any:
    from core.db.models import TrainingJob
    from core.rundir import RunDir

    config, run = found.config, RunDir(found.run_dir)
    job = TrainingJob(
        id=found.job_id, project_id=project_id, user_id=user_id, name=config.display_name(),
        framework=config.framework, model_name=config.model, task_type=config.task, dataset_path=config.dataset,
        dataset_format=config.dataset_format, epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=config.learning_rate, status="interrupted", config_yaml=found.config_yaml,
        output_dir=str(found.run_dir), created_at=_mtime(run.args), started_at=_mtime(run.job_info),
        completed_at=_mtime(run.log if run.log.exists() else run.args), error_message=REBUILT_NOTE,
    )
    session.add(job)
    return job


def _add_checkpoints(session: Any, job: Any, folder: Path) -> int:
    from core.db.models import Checkpoint
    from core.files import sha256_file
    from core.rundir import CHECKPOINT_KINDS

    added = 0
    best = _best_info(folder)
    for kind in CHECKPOINT_KINDS:
        path = _checkpoint_file(folder, kind)
        if path is None:
            continue
        extra = best if kind == "best" else {}
        # A pickle rebuilt from a file on disk is not vouched for: the database that recorded this app
        # writing it is gone, so loading it asks for consent again (core.trust). Safetensors are safe.
        vouched = sha256_file(path) if path.suffix == ".safetensors" else None
        session.add(Checkpoint(job_id=job.id, kind=kind, path=str(path.resolve()), sha256=vouched,
                               size_bytes=path.stat().st_size, epoch=extra.get("epoch"),
                               metric_name=extra.get("metric_name"), metric_value=extra.get("metric_value")))
        if kind == "best" and extra.get("metric_name"):
            job.best_metric_name, job.best_metric_value = extra["metric_name"], extra.get("metric_value")
        added += 1
    return added


def _project_id(session: Any, name: str, user_id: int) -> int:
    from sqlalchemy import select

    from core.db.models import Project

    project_id = session.scalars(select(Project.id).where(Project.name == name)).first()
    if project_id is None:
        project = Project(user_id=user_id, name=name, description="Rebuilt from run folders")
        session.add(project)
        session.flush()
        project_id = project.id
    return int(project_id)


def rebuild_from_run_dirs(store: Store, runs_dir: Path, report: RecoveryReport) -> None:
    """Fill a fresh store with the jobs and checkpoints the run folders describe (see the module doc)."""
    from sqlalchemy import select

    from core.db.models import User

    folders = sorted(runs_dir.glob("job_*"), key=lambda p: (len(p.name), p.name)) if runs_dir.is_dir() else []
    for folder in folders:
        if not folder.is_dir():
            continue
        try:
            found = _read_run_dir(folder)
        except (OSError, ValueError) as exc:
            report.skipped.append(f"{folder.name}: {exc}")
            continue
        if found.job_id in report.jobs:
            report.skipped.append(f"{folder.name}: its job.json names job {found.job_id}, already rebuilt")
            continue
        with store.write() as session:
            user_id = int(session.scalars(select(User.id).order_by(User.id)).first() or 0)
            job = _add_job(session, found, _project_id(session, found.config.project, user_id), user_id)
            session.flush()
            report.checkpoints += _add_checkpoints(session, job, folder)
        report.jobs.append(found.job_id)
