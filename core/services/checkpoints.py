"""Checkpoints and weights: a job's best/last, the models the Inference page offers, R2/S3 upload and
download, and importing a weights file — for the GUI and ``vision-platform checkpoint``.

Trust is decided here, by content (``core.trust``): a file whose sha256 is a checkpoint row (this app
wrote it) or a recorded consent (the user trusted it when importing) loads as trusted, and the
inference worker checks that the file still has that content. Anything else that is not safetensors
needs the user's consent: ``--trust`` on the command line, a dialog naming the file in the app.
Imported weights are copied under the data dir, so a job never depends on a file the user may move or
delete; consents are ``app_settings`` rows keyed ``trusted_weights:<sha256>``, mirrored into the
manifest training workers read.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core import exports, paths, trust
from core.db.models import AppSetting, Artifact, Checkpoint, TrainingJob
from core.files import sha256_file
from core.jobs import store as job_store
from core.rundir import CHECKPOINT_KINDS, checkpoint_folder_of
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
    sha256: str | None = None  # the content the database vouches for (this app wrote it / consented)
    task: str | None = None  # what the job trained, when known
    job_id: int | None = None
    consented: bool = False  # the user trusts this file for this load (``--trust``, the app's dialog)

    @property
    def trusted(self) -> bool:
        return self.consented or self.sha256 is not None

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
    """The framework whose declared checkpoint patterns match ``path`` best (``core.frameworks``),
    else the first registered one; loading tries the other matching frameworks after it."""
    from core.frameworks import CatalogError, declared_catalog, framework_for_file

    try:
        catalog = declared_catalog()
    except CatalogError as exc:
        raise ServiceError(f"cannot tell which framework reads {path}: {exc}") from None
    found = framework_for_file(path, catalog) or next(iter(catalog), None)
    if found is None:
        raise ServiceError(f"no framework is available to read {path}")
    return found


def file_choice(path: str | Path, *, trusted: bool = False) -> ModelChoice:
    """A weights file the user picked: untrusted unless they consent (or :func:`vouch` knows its content)."""
    file = Path(path)
    return ModelChoice(f"File: {file.name}", str(file), guess_framework(file), consented=trusted)


def _job_choice(job_id: int, name: str | None, framework: str, task: str, kind: str, path: str,
                epoch: int | None, metric: str, sha256: str | None) -> ModelChoice:
    detail = ", ".join(part for part in (f"epoch {epoch}" if epoch else "", metric) if part)
    label = f"#{job_id} {name or 'job'} — {kind}" + (f" ({detail})" if detail else "")
    return ModelChoice(label, path, framework, sha256, task, job_id)


# -- trust -------------------------------------------------------------------------------------------
CONSENT_KEY_PREFIX = "trusted_weights:"


def _consent_key(sha256: str) -> str:
    return f"{CONSENT_KEY_PREFIX}{sha256}"


def is_known_content(store: Store, sha256: str) -> bool:
    """Whether this app wrote a file with this sha256 (a checkpoint row) or the user consented to it."""
    with store.read() as session:
        written = session.execute(select(Checkpoint.id).where(Checkpoint.sha256 == sha256).limit(1)).first()
        return written is not None or session.get(AppSetting, _consent_key(sha256)) is not None


def consented_files(store: Store) -> dict[str, str]:
    """Path of each consented import -> its sha256."""
    with store.read() as session:
        rows = session.execute(select(AppSetting.key, AppSetting.value)
                               .where(AppSetting.key.startswith(CONSENT_KEY_PREFIX))).all()
    found: dict[str, str] = {}
    for key, value in rows:
        record = json.loads(value or "{}")
        if isinstance(record, dict) and record.get("path"):
            found[str(record["path"])] = key.removeprefix(CONSENT_KEY_PREFIX)
    return found


def record_consent(store: Store, sha256: str, path: Path) -> None:
    """Remember that the user trusts this content (and tell training workers, via the manifest)."""
    record = {"path": str(path), "name": path.name, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with store.write() as session:
        session.merge(AppSetting(key=_consent_key(sha256), value=json.dumps(record)))
    trust.write_manifest(consented_files(store).values())


def vouch(store: Store, choice: ModelChoice) -> ModelChoice:
    """``choice`` with the sha256 the database vouches for, when its file's content is known.

    Hashes the file: call it from a worker thread."""
    if choice.trusted or not Path(choice.path).is_file():
        return choice
    sha256 = sha256_file(Path(choice.path))
    return replace(choice, sha256=sha256) if is_known_content(store, sha256) else choice


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
                    Checkpoint.metric_value, Checkpoint.sha256)
             .join(Checkpoint, Checkpoint.job_id == TrainingJob.id)
             .where(Checkpoint.kind.in_(CHECKPOINT_KINDS))
             .order_by(TrainingJob.id.desc(), Checkpoint.kind))
    if project_id is not None:
        query = query.where(TrainingJob.project_id == project_id)
    with store.read() as session:
        rows = session.execute(query).all()
    choices = [_job_choice(job_id, name, framework, task, kind, path, epoch, format_metric(m_name, m_value), sha)
               for job_id, name, framework, task, status, kind, path, epoch, m_name, m_value, sha in rows
               if status != "running" and Path(path).is_file()]
    choices += _export_choices(store, project_id)
    consented = consented_files(store)
    choices += [_imported_choice(file, consented) for file in imported_weights()]
    return choices


def _export_choices(store: Store, project_id: int | None) -> list[ModelChoice]:
    """The jobs' ONNX exports (an ONNX file holds no code: it needs no consent), newest job first."""
    query = (select(Artifact.job_id, Artifact.path, TrainingJob.name)
             .join(TrainingJob, TrainingJob.id == Artifact.job_id)
             .where(Artifact.kind == f"{exports.ARTIFACT_KIND_PREFIX}onnx")
             .order_by(Artifact.job_id.desc(), Artifact.id.desc()))
    if project_id is not None:
        query = query.where(TrainingJob.project_id == project_id)
    with store.read() as session:
        rows = session.execute(query).all()
    return [choice for job_id, path, name in rows if (choice := _export_choice(job_id, name, Path(path)))]


def _export_choice(job_id: int, name: str | None, path: Path) -> ModelChoice | None:
    try:
        card = exports.read_card(path)
    except ValueError:
        return None  # the file or its card is gone: nothing to offer
    verdict = "verified" if card["parity"].get("verified") else "not verified"
    label = f"#{job_id} {name or 'job'} — ONNX export ({verdict})"
    return ModelChoice(label, str(path), card["framework"], card["file_sha256"], card["task"], job_id)


def _imported_choice(file: Path, consented: dict[str, str]) -> ModelChoice:
    return ModelChoice(f"Imported: {file.name}", str(file), guess_framework(file), consented.get(str(file)))


def _local_file(info: CheckpointInfo) -> Path | None:
    """The checkpoint's file here: its own path, else a verified copy downloaded into the cache (for a
    folder checkpoint, the file its row names inside a complete downloaded copy of the folder)."""
    if info.exists:
        return Path(info.path)
    if info.sha256:
        from core.storage.client import cached_object
        from core.storage.folders import cached_checkpoint_file

        if checkpoint_folder_of(info.path) is not None:
            return cached_checkpoint_file(info.sha256, Path(info.path).name)
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
                               info.epoch, format_metric(info.metric_name, info.metric_value), info.sha256)
    if kind and kind not in by_kind or not by_kind:
        raise ServiceError(f"job {job_id} has no {kind or 'best or last'} checkpoint yet "
                           "(the first one is written at the end of its first epoch)")
    raise ServiceError(f"job {job_id}'s {kind or 'best and last'} checkpoint files are not on this computer: "
                       f"download one (`vision-platform checkpoint download {job_id}`)")


def resolve_model(store: Store, spec: str, *, kind: str | None = None, trusted: bool = False) -> ModelChoice:
    """What ``predict MODEL_OR_JOB`` names: a weights file, a job id (``12`` or ``#12``) or an imported weights name."""
    file = Path(spec).expanduser()
    if file.is_file():
        return vouch(store, file_choice(file, trusted=trusted))
    number = spec.removeprefix("#")
    if number.isdigit():
        return job_model(store, int(number), kind)
    imported = paths.weights_dir() / spec
    if imported.is_file():
        return replace(_imported_choice(imported, consented_files(store)), consented=trusted)
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


class ConsentRequired(ServiceError):
    """Importing this file needs the user's explicit trust (the message names the file and the risk)."""


def import_weights(store: Store, source: str | Path, *, consent: bool = False) -> Path:
    """Copy a weights file under the data dir; returns the copy. An identical file already there is
    reused; a different one with the same name is kept, and this copy gets a numbered name.

    A pickle-based file (anything but safetensors) that this app did not write needs ``consent``
    (else :class:`ConsentRequired`); its sha256 is then recorded, so later loads need no question."""
    file = Path(source).expanduser()
    if not file.is_file():
        raise ServiceError(f"{file}: no such weights file (give the path of a .pt, .pth, .safetensors or .bin file)")
    if not trust.needs_consent(file):
        return _copy_in(file)
    sha256 = sha256_file(file)
    if not consent and not is_known_content(store, sha256):
        raise ConsentRequired(f"{file} is a pickle-based weights file that this app did not write: loading it can run "
                              "any code stored in it. Import it only if you trust where it came from "
                              "(on the command line: `checkpoint import --trust`).")
    target = _copy_in(file)
    if sha256_file(target) != sha256:  # the source changed while it was copied: not what was trusted
        raise ServiceError(f"{file} changed while it was imported; import it again")
    record_consent(store, sha256, target)
    return target


def _copy_in(file: Path) -> Path:
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
                 dest: str | Path | None = None, main_file: str | None = None) -> Path:
    """Fetch an ``r2://`` checkpoint into the local cache (verified), and copy it to ``dest`` (a folder) if given.

    A URL ending in ``/`` is a folder checkpoint (transformers): every object under it is fetched and
    the folder is returned; ``expected_sha256`` is then that of its ``main_file``."""
    from core.storage.errors import StorageError

    try:
        cached = _download_cached(url, settings, expected_sha256, main_file)
    except (StorageError, ValueError) as exc:
        raise ServiceError(f"could not download {url}: {exc}") from None
    if dest is None:
        return cached
    folder = Path(dest).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(url.rstrip("/")).name
    if cached.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(cached, target)
    else:
        shutil.copy2(cached, target)
    return target


def _download_cached(url: str, settings: Settings, expected_sha256: str | None, main_file: str | None) -> Path:
    from core.storage.client import client_from_settings, download_checkpoint
    from core.storage.errors import MAX_CHECKPOINT_BYTES
    from core.storage.folders import download_checkpoint_folder, is_folder_url

    if not is_folder_url(url):
        return download_checkpoint(url, settings=settings, expected_sha256=expected_sha256)
    return download_checkpoint_folder(client_from_settings(settings), url, main_file=main_file,
                                      main_sha256=expected_sha256, max_bytes=MAX_CHECKPOINT_BYTES)


def download_checkpoint(store: Store, job_id: int, kind: str = "best", *, settings: Settings | None = None,
                        dest: str | Path | None = None) -> Path:
    """Fetch a job's uploaded checkpoint from R2/S3 (see :func:`download_url`)."""
    info = next((i for i in list_checkpoints(store, job_id) if i.kind == kind), None)
    if info is None:
        raise ServiceError(f"job {job_id} has no {kind} checkpoint")
    if not info.r2_url:
        raise ServiceError(f"job {job_id}'s {kind} checkpoint is not in R2/S3: upload it first "
                           f"(`vision-platform checkpoint upload {job_id}`)")
    return download_url(info.r2_url, settings=_settings(store, settings), expected_sha256=info.sha256, dest=dest,
                        main_file=Path(info.path).name)
