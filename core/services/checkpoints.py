"""Checkpoints and weights: a job's best/last, the models the Inference page offers, R2/S3 upload and
download, and importing a weights file — for the GUI and ``vision-platform checkpoint``.

Job checkpoints were written by this app and load as trusted; a file from elsewhere loads untrusted
first (the inference worker says when it needs confirmation). Imported weights are copied under the
data dir, so a job never depends on a file the user may move or delete.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core import paths
from core.db.models import Checkpoint, TrainingJob
from core.files import sha256_file
from core.jobs import store as job_store
from core.rundir import CHECKPOINT_KINDS
from core.services import ServiceError, Store
from core.services.jobs import format_metric, job_detail

if TYPE_CHECKING:
    from core.settings import Settings

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint row, and whether its file is on this computer."""

    id: int
    job_id: int
    kind: str
    epoch: int | None
    metric_name: str | None
    metric_value: float | None
    size_bytes: int | None
    sha256: str | None
    path: str
    r2_url: str | None
    sync_state: str
    exists: bool

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ModelChoice:
    """A model the Inference page (and ``predict``) can load."""

    label: str
    path: str
    framework: str
    trusted: bool
    task: str | None = None  # what the job trained, when known
    job_id: int | None = None

    @property
    def key(self) -> str:
        """Identifies the choice in the picker (a string: it round-trips through Qt item data)."""
        return f"{self.framework}:{self.path}"


# -- listing -----------------------------------------------------------------------------------------
def _info(row: Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(row.id, row.job_id, row.kind, row.epoch, row.metric_name, row.metric_value, row.size_bytes,
                          row.sha256, row.path, row.r2_url, row.sync_state, Path(row.path).is_file())


def list_checkpoints(store: Store, job_id: int) -> list[CheckpointInfo]:
    """The job's checkpoints (best, last), with whether each file exists here."""
    job_detail(store, job_id)  # a clear error for an unknown job
    return [_info(row) for row in job_store.checkpoints(store, job_id)]


def guess_framework(path: Path) -> str:
    """Ultralytics for YOLO names (and files inside an Ultralytics run), timm otherwise."""
    name = path.name.lower()
    if name.startswith(("yolo", "rtdetr")) or "ultralytics" in str(path).lower():
        return "ultralytics"
    return "timm"


def file_choice(path: str | Path, *, trusted: bool = False) -> ModelChoice:
    """A weights file the user picked (untrusted unless they say so)."""
    file = Path(path)
    return ModelChoice(f"File: {file.name}", str(file), guess_framework(file), trusted)


def _job_choice(job_id: int, name: str | None, framework: str, task: str, kind: str, path: str,
                epoch: int | None, metric: str) -> ModelChoice:
    detail = ", ".join(part for part in (f"epoch {epoch}" if epoch else "", metric) if part)
    label = f"#{job_id} {name or 'job'} — {kind}" + (f" ({detail})" if detail else "")
    return ModelChoice(label, path, framework, True, task, job_id)


def imported_weights() -> list[Path]:
    """Weights files imported into the data dir, by name."""
    folder = paths.weights_dir()
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in WEIGHT_SUFFIXES)


def model_choices(store: Store, project_id: int | None = None) -> list[ModelChoice]:
    """Finished jobs' checkpoints (newest job first; of one project or all) then imported weights.

    Reads the store and checks files: call it from a worker thread.
    """
    query = (select(TrainingJob.id, TrainingJob.name, TrainingJob.framework, TrainingJob.task_type,
                    TrainingJob.status, Checkpoint.kind, Checkpoint.path, Checkpoint.epoch, Checkpoint.metric_name,
                    Checkpoint.metric_value)
             .join(Checkpoint, Checkpoint.job_id == TrainingJob.id)
             .where(Checkpoint.kind.in_(CHECKPOINT_KINDS))
             .order_by(TrainingJob.id.desc(), Checkpoint.kind))
    if project_id is not None:
        query = query.where(TrainingJob.project_id == project_id)
    with store.read() as session:
        rows = session.execute(query).all()
    choices = [_job_choice(job_id, name, framework, task, kind, path, epoch, format_metric(m_name, m_value))
               for job_id, name, framework, task, status, kind, path, epoch, m_name, m_value in rows
               if status != "running" and Path(path).is_file()]
    choices += [ModelChoice(f"Imported: {file.name}", str(file), guess_framework(file), True)
                for file in imported_weights()]
    return choices


def _local_file(info: CheckpointInfo) -> Path | None:
    """The checkpoint's file here: its own path, else a verified copy downloaded into the cache."""
    if info.exists:
        return Path(info.path)
    if info.sha256:
        from core.storage.client import cached_object

        return cached_object(info.sha256)
    return None


def job_model(store: Store, job_id: int, kind: str | None = None) -> ModelChoice:
    """A job's checkpoint as a model to load: ``kind`` best or last, else best when present, else last."""
    detail = job_detail(store, job_id)
    by_kind = {info.kind: info for info in list_checkpoints(store, job_id)}
    for wanted in ([kind] if kind else list(CHECKPOINT_KINDS)):
        info = by_kind.get(wanted)
        file = _local_file(info) if info is not None else None
        if info is not None and file is not None:
            return _job_choice(job_id, detail.name, detail.framework, detail.task, info.kind, str(file),
                               info.epoch, format_metric(info.metric_name, info.metric_value))
    if kind and kind not in by_kind or not by_kind:
        raise ServiceError(f"job {job_id} has no {kind or 'best or last'} checkpoint yet "
                           "(the first one is written at the end of its first epoch)")
    raise ServiceError(f"job {job_id}'s {kind or 'best and last'} checkpoint files are not on this computer: "
                       f"download one (`vision-platform checkpoint download {job_id}`)")


def resolve_model(store: Store, spec: str, *, kind: str | None = None, trusted: bool = False) -> ModelChoice:
    """What ``predict MODEL_OR_JOB`` names: a weights file, a job id (``12`` or ``#12``) or an imported weights name."""
    file = Path(spec).expanduser()
    if file.is_file():
        return file_choice(file, trusted=trusted)
    number = spec.removeprefix("#")
    if number.isdigit():
        return job_model(store, int(number), kind)
    imported = paths.weights_dir() / spec
    if imported.is_file():
        return ModelChoice(f"Imported: {imported.name}", str(imported), guess_framework(imported), True)
    raise ServiceError(f"{spec} is neither a weights file, a job id nor an imported weights name: "
                       "give a path, a job id from `vision-platform job list`, or import the file first")


# -- weights import ----------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and sha256_file(a) == sha256_file(b)


def _free_name(folder: Path, name: str) -> Path:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, number = folder / name, 1
    while candidate.exists():
        candidate, number = folder / f"{stem}-{number}{suffix}", number + 1
    return candidate


def import_weights(source: str | Path) -> Path:
    """Copy a weights file under the data dir; returns the copy. An identical file already there is
    reused; a different one with the same name is kept, and this copy gets a numbered name."""
    file = Path(source).expanduser()
    if not file.is_file():
        raise ServiceError(f"{file}: no such weights file (give the path of a .pt, .pth, .safetensors or .bin file)")
    folder = paths.weights_dir()
    target = folder / file.name
    if file.resolve() == target.resolve():
        return target
    if target.exists():
        if _same_file(file, target):
            return target
        target = _free_name(folder, file.name)
    try:
        shutil.copy2(file, target)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise ServiceError(f"could not copy {file} to {folder}: {exc}; free disk space or check permissions") from None
    return target


# -- R2 / S3 -----------------------------------------------------------------------------------------
def _settings(store: Store, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from core.settings import Settings

    return Settings.load(store)


def upload_checkpoints(store: Store, job_id: int, *, kinds: tuple[str, ...] = CHECKPOINT_KINDS,
                       settings: Settings | None = None) -> list[CheckpointInfo]:
    """Upload the job's checkpoints of ``kinds`` now (retrying failed ones); returns them, synced.

    The one upload path: the outbox rows of ``core.services.sync`` (``sync push``/``sync retry`` use it too)."""
    from core.services.sync import queue_job_uploads, sync_now

    settings = _settings(store, settings)
    present = [info for info in list_checkpoints(store, job_id) if info.kind in kinds]
    if not present:
        raise ServiceError(f"job {job_id} has no {' or '.join(kinds)} checkpoint to upload")
    if not settings.sync_enabled:
        raise ServiceError("cloud sync is turned off: turn it on in Settings to upload checkpoints")
    result = sync_now(store, settings, upload_ids=queue_job_uploads(store, settings, job_id, kinds))
    if result.disabled_reason:
        raise ServiceError(f"not uploaded: {result.disabled_reason}")
    failed = [row for row in result.rows if row.state == "failed"]
    if failed:
        raise ServiceError(f"upload of {failed[0].url} failed: {failed[0].last_error}")
    return [info for info in list_checkpoints(store, job_id) if info.kind in kinds]


def download_url(url: str, *, settings: Settings, expected_sha256: str | None = None,
                 dest: str | Path | None = None) -> Path:
    """Fetch an ``r2://`` checkpoint into the local cache (verified), and copy it to ``dest`` (a folder) if given."""
    from core.storage.client import download_checkpoint
    from core.storage.errors import StorageError

    try:
        cached = download_checkpoint(url, settings=settings, expected_sha256=expected_sha256)
    except (StorageError, ValueError) as exc:
        raise ServiceError(f"could not download {url}: {exc}") from None
    if dest is None:
        return cached
    folder = Path(dest).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(url.rstrip("/")).name
    shutil.copy2(cached, target)
    return target


def download_checkpoint(store: Store, job_id: int, kind: str = "best", *, settings: Settings | None = None,
                        dest: str | Path | None = None) -> Path:
    """Fetch a job's uploaded checkpoint from R2/S3 (see :func:`download_url`)."""
    info = next((i for i in list_checkpoints(store, job_id) if i.kind == kind), None)
    if info is None:
        raise ServiceError(f"job {job_id} has no {kind} checkpoint")
    if not info.r2_url:
        raise ServiceError(f"job {job_id}'s {kind} checkpoint is not in R2/S3: upload it first "
                           f"(`vision-platform checkpoint upload {job_id}`)")
    return download_url(info.r2_url, settings=_settings(store, settings), expected_sha256=info.sha256, dest=dest)
