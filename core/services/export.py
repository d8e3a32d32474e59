"""Model export: a job's checkpoint (or a weights file) to ONNX, TorchScript or an Ultralytics format,
with a parity check on the job's validation images, and the checkpoint as a registered MLflow model.

The GUI's Export dialog and ``vision-platform export`` share this path. The framework work runs in an
``export-worker`` subprocess (``adapters/export.py``): this process never imports torch. What it
produced becomes the job's: artifact rows (``export:<format>`` and ``export:<format>:card``), files of
the job's MLflow run (``exports/``), and rows of the R2 outbox like checkpoints. A worker that fails
leaves no file under the final name (it builds in a hidden staging folder) and so no row either.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from core import paths, platform
from core.db.models import Artifact, Checkpoint, Project, TrainingJob
from core.exports import ARTIFACT_KIND_PREFIX, EXPORTS_DIR, card_path, is_exported_model
from core.launch import child_env, subcommand
from core.rundir import RunDir
from core.services import ServiceError, Store

if TYPE_CHECKING:
    from core.settings import Settings

Progress = Callable[[str], None]
Cancelled = Callable[[], bool]  # asked while the worker runs: True kills it
MLFLOW_MODEL_DIR = "mlflow_model"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_VAL_IMAGES = 16


@dataclass(frozen=True)
class FormatChoice:
    """A format the export dialog lists; unavailable ones carry the reason (a missing package)."""

    name: str
    label: str
    available: bool
    reason: str | None
    verified: bool  # this app checks its parity


@dataclass(frozen=True)
class ExportSource:
    """What is exported: a checkpoint file, what it is, and the job it belongs to (if any)."""

    checkpoint: Path
    framework: str
    task: str
    model_name: str
    job_id: int | None = None
    project_id: int | None = None
    kind: str = "best"
    trusted: bool = False
    val_images: tuple[str, ...] = ()
    run_dir: Path | None = None  # the job's run directory


@dataclass
class ExportOutcome:
    file: Path
    card: Path
    parity: dict[str, Any]
    job_id: int | None = None
    artifact_ids: list[int] = field(default_factory=list)
    upload_ids: list[int] = field(default_factory=list)
    mlflow_artifacts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mlflow_model: Path | None = None

    @property
    def verified(self) -> bool:
        return bool(self.parity.get("verified"))


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    model_uri: str
    run_id: str
    onnx_attached: bool


def parity_lines(parity: dict[str, Any]) -> list[str]:
    """The parity numbers as the CLI prints them and the Export dialog shows them."""
    head = "verified" if parity.get("verified") else "NOT verified"
    lines = [f"parity: {head} on {parity.get('images', 0)} validation images — max abs diff "
             f"{parity.get('max_abs_diff', float('nan')):.3g} (allowed {parity.get('allowed_abs_diff', float('nan')):.3g})"]
    lines += [f"  {name}: {value:.4g}" for name, value in (parity.get("agreement") or {}).items()]
    if parity.get("warning"):
        lines.append(f"warning: {parity['warning']}")
    return lines


# -- the worker -------------------------------------------------------------------------------------
def _run_worker(args: list[str], on_progress: Progress | None, cancel: Cancelled | None) -> dict[str, Any]:
    """Run ``export-worker ARGS``; its last ``result`` line, or a ServiceError with its message."""
    process = subprocess.Popen(subcommand("export-worker", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, encoding="utf-8", env=child_env(),
                               **platform.no_console_options())
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(process.stderr or []), daemon=True).start()
    watcher = threading.Thread(target=_kill_on_cancel, args=(process, cancel), daemon=True)
    watcher.start()
    final: dict[str, Any] | None = None
    for line in process.stdout or []:
        message = _decode(line)
        if message.get("type") == "progress" and on_progress is not None:
            on_progress(str(message.get("message")))
        elif message.get("type") in ("result", "error"):
            final = message
    code = process.wait()
    if cancel is not None and cancel():
        raise ServiceError("export cancelled; nothing was written")
    if final is None:
        raise ServiceError(f"the export worker stopped (exit code {code}) without an answer: "
                           + "".join(stderr[-5:]).strip()[-800:])
    if final["type"] == "error":
        raise ServiceError(str(final["message"]))
    return final


def _decode(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _kill_on_cancel(process: subprocess.Popen[str], cancel: Cancelled | None) -> None:
    tick = threading.Event()
    while cancel is not None and process.poll() is None:
        if cancel():
            process.kill()
            return
        tick.wait(0.2)


def list_formats(framework: str) -> list[FormatChoice]:
    """Formats of ``framework`` (asks the worker: Ultralytics lists its exporter's table). Slow: not on the GUI thread."""
    answer = _run_worker(["--list-formats", framework], None, None)
    return [FormatChoice(r["name"], r["label"], bool(r["available"]), r.get("reason"), bool(r["verified"]))
            for r in answer["formats"]]


# -- what to export ----------------------------------------------------------------------------------
def _val_images(run_dir: RunDir) -> tuple[str, ...]:
    """The job's validation images: those of ``val_predictions.json``, else its converted val split."""
    try:
        data = json.loads(run_dir.val_predictions.read_text(encoding="utf-8"))
        listed = [str(item["path"]) for item in data.get("items") or []]
    except (OSError, ValueError, KeyError, TypeError):
        listed = []
    if not listed and run_dir.data.is_dir():
        listed = [str(p) for p in sorted(run_dir.data.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
                  and "val" in p.relative_to(run_dir.data).parts]
    return tuple(p for p in listed if Path(p).is_file())[:MAX_VAL_IMAGES]


def job_source(store: Store, job_id: int, kind: str | None = None) -> ExportSource:
    """The job's best checkpoint (or ``kind``) as an export source."""
    from core.services.checkpoints import job_model

    with store.read() as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise ServiceError(f"no job with id {job_id}: see `vision-platform job list`")
        project_id, model_name, output_dir = job.project_id, job.model_name, job.output_dir
    choice = job_model(store, job_id, kind)
    chosen_kind = kind or ("best" if "best" in choice.label.rsplit("—", 1)[-1] else "last")
    run_dir = RunDir.of(output_dir, job_id)
    return ExportSource(Path(choice.path), choice.framework, str(choice.task), model_name, job_id, project_id,
                        chosen_kind, True, _val_images(run_dir), run_dir.root)


def _job_of_file(store: Store, file: Path) -> int | None:
    with store.read() as session:
        return session.scalars(select(Checkpoint.job_id).where(Checkpoint.path == str(file.resolve()))).first()


def resolve_source(store: Store, spec: str, *, kind: str | None = None, trusted: bool = False,
                   framework: str | None = None, task: str | None = None) -> ExportSource:
    """``JOB_OR_CHECKPOINT``: a job id (``12``/``#12``), one of a job's checkpoint files, or a weights file."""
    number = spec.removeprefix("#")
    if number.isdigit() and not Path(spec).exists():
        return job_source(store, int(number), kind)
    file = Path(spec).expanduser()
    if not file.exists():
        raise ServiceError(f"{spec} is neither a job id nor a checkpoint file")
    job_id = _job_of_file(store, file)
    if job_id is not None:
        source = job_source(store, job_id, kind)
        return source if source.checkpoint.resolve() == file.resolve() else _replace_file(source, file)
    if is_exported_model(file):
        raise ServiceError(f"{file} is already an exported model; export its checkpoint instead")
    from core.services.checkpoints import guess_framework

    chosen = framework or guess_framework(file)
    return ExportSource(file.resolve(), chosen, task or _default_task(chosen), file.stem, trusted=trusted)


def _replace_file(source: ExportSource, file: Path) -> ExportSource:
    kind = "last" if file.name.startswith("last") or file.parent.name == "last" else "best"
    return ExportSource(file.resolve(), source.framework, source.task, source.model_name, source.job_id,
                        source.project_id, kind, True, source.val_images, source.run_dir)


def _default_task(framework: str) -> str:
    return "classify" if framework == "timm" else "detect"


# -- export -----------------------------------------------------------------------------------------
def _out_dir(source: ExportSource) -> Path:
    if source.run_dir is not None:
        return source.run_dir / EXPORTS_DIR
    return paths.data_dir() / EXPORTS_DIR / source.checkpoint.stem


def _request(source: ExportSource, fmt: str, options: dict[str, Any]) -> dict[str, Any]:
    images = options.pop("images", None)
    val_images = [str(p) for p in images] if images else list(source.val_images)
    return {"source": str(source.checkpoint), "framework": source.framework, "task": source.task,
            "model_name": source.model_name, "format": fmt, "out_dir": str(_out_dir(source)),
            "stem": source.kind if source.job_id is not None else source.checkpoint.stem,
            "val_images": val_images, "trusted": source.trusted, **options}


def _image_list(images: list[Path] | None) -> list[str] | None:
    if not images:
        return None
    found = [str(p) for folder in images for p in (sorted(Path(folder).rglob("*")) if Path(folder).is_dir()
                                                   else [Path(folder)]) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise ServiceError(f"no images (jpg, png, bmp, webp, tif) in {', '.join(str(p) for p in images)}")
    return found[:MAX_VAL_IMAGES]


def export_model(store: Store, source: ExportSource, fmt: str, *, dynamic_batch: bool = False, half: bool = False,
                 imgsz: int | None = None, images: list[Path] | None = None, mlflow_model: bool = False,
                 on_progress: Progress | None = None, cancel: Cancelled | None = None,
                 settings: Settings | None = None, fault: str | None = None) -> ExportOutcome:
    """Export ``source`` to ``fmt``, check parity, and record the result as the job's artifacts."""
    if imgsz is not None and not 16 <= imgsz <= 4096:
        raise ServiceError(f"--imgsz {imgsz} is outside 16..4096 pixels")
    options: dict[str, Any] = {"dynamic_batch": dynamic_batch, "half": half, "imgsz": imgsz,
                               "images": _image_list(images), "fail_after_export": fault == "after_export"}
    request = _request(source, fmt, options)
    if mlflow_model:
        request["mlflow_model_dir"] = str(Path(request["out_dir"]) / MLFLOW_MODEL_DIR)
    with tempfile.TemporaryDirectory(prefix="vp-export-request-") as folder:
        request_file = Path(folder) / "request.json"
        request_file.write_text(json.dumps(request), encoding="utf-8")
        answer = _run_worker(["--request", str(request_file)], on_progress, cancel)
    outcome = ExportOutcome(Path(answer["file"]), Path(answer["card"]), dict(answer["parity"]), source.job_id,
                            mlflow_model=Path(answer["mlflow_model"]) if answer.get("mlflow_model") else None)
    if source.job_id is not None:
        _record(store, source, fmt, outcome, settings)
    return outcome


def _record(store: Store, source: ExportSource, fmt: str, outcome: ExportOutcome, settings: Settings | None) -> None:
    assert source.job_id is not None
    outcome.artifact_ids = record_artifacts(store, source.job_id, fmt, outcome.file)
    settings = _settings(store, settings)
    outcome.upload_ids = queue_uploads(store, settings, source.job_id, [outcome.file, outcome.card])
    try:
        outcome.mlflow_artifacts = log_to_mlflow(store, settings, source.job_id, [outcome.file, outcome.card])
    except Exception as exc:  # the export stands; MLflow is bookkeeping (retry: export again)
        outcome.warnings.append(f"not logged to MLflow: {exc}")


def _settings(store: Store, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from core.settings import Settings

    return Settings.load(store)


def record_artifacts(store: Store, job_id: int, fmt: str, exported: Path) -> list[int]:
    """Artifact rows for the exported file and its card (a re-export replaces the rows of the same paths)."""
    rows = [(f"{ARTIFACT_KIND_PREFIX}{fmt}", exported), (f"{ARTIFACT_KIND_PREFIX}{fmt}:card", card_path(exported))]
    with store.write() as session:
        session.execute(delete(Artifact).where(Artifact.job_id == job_id,
                                               Artifact.path.in_([str(path) for _, path in rows])))
        added = [Artifact(job_id=job_id, kind=kind, path=str(path)) for kind, path in rows]
        session.add_all(added)
        session.flush()
        return [int(row.id) for row in added]


def list_exports(store: Store, job_id: int) -> list[tuple[str, str]]:
    """(kind, path) of the job's exported files (cards excluded)."""
    with store.read() as session:
        rows = session.execute(select(Artifact.kind, Artifact.path).where(
            Artifact.job_id == job_id, Artifact.kind.startswith(ARTIFACT_KIND_PREFIX)).order_by(Artifact.id)).all()
    return [(kind, path) for kind, path in rows if not kind.endswith(":card")]


def queue_uploads(store: Store, settings: Settings, job_id: int, files: list[Path]) -> list[int]:
    """Outbox rows for the files (key: the job's checkpoint folder, ``exports/<name>``), like checkpoints."""
    from core.storage.outbox import enqueue_upload
    from core.storage.r2url import checkpoint_key

    project_id = _project_id(store, job_id)
    return [enqueue_upload(store, job_id=job_id, checkpoint_id=None, local_path=file, bucket=settings.r2_bucket,
                           key=checkpoint_key(project_id, job_id, f"{EXPORTS_DIR}/{file.name}"))
            for file in files if file.is_file()]


def _project_id(store: Store, job_id: int) -> int:
    with store.read() as session:
        project_id = session.scalar(select(TrainingJob.project_id).where(TrainingJob.id == job_id))
    if project_id is None:
        raise ServiceError(f"no job with id {job_id}")
    return int(project_id)


def _run_id(store: Store, job_id: int) -> str | None:
    with store.read() as session:
        return session.scalar(select(TrainingJob.mlflow_run_id).where(TrainingJob.id == job_id))


def log_to_mlflow(store: Store, settings: Settings, job_id: int, files: list[Path]) -> list[str]:
    """Log the files to the job's MLflow run under ``exports/`` (none when the job has no run)."""
    run_id = _run_id(store, job_id)
    if not run_id:
        return []
    from core.tracking import MlflowTracker

    return MlflowTracker(settings=settings).log_artifacts(run_id, [(file, EXPORTS_DIR) for file in files])


# -- MLflow model registry ----------------------------------------------------------------------------
def registered_model_name(project_name: str) -> str:
    """The project's name as an MLflow registered-model name (no '/', ':' or other separators)."""
    cleaned = re.sub(r"[^\w .-]+", "_", project_name).strip(" ._") or "project"
    return cleaned[:200]


def _project_name(store: Store, job_id: int) -> str:
    with store.read() as session:
        name = session.scalar(select(Project.name).join(TrainingJob, TrainingJob.project_id == Project.id)
                              .where(TrainingJob.id == job_id))
    if name is None:
        raise ServiceError(f"no job with id {job_id}")
    return str(name)


def register_model(store: Store, job_id: int, *, on_progress: Progress | None = None,
                   cancel: Cancelled | None = None, settings: Settings | None = None) -> RegisteredVersion:
    """The job's best checkpoint as an MLflow model of its run, registered under the project's name
    (one version per job: asking again returns the same version), with its verified ONNX attached."""
    with store.read() as session:
        job = session.get(TrainingJob, job_id)
        status = job.status if job is not None else None
    if status is None:
        raise ServiceError(f"no job with id {job_id}")
    if status != "completed":
        raise ServiceError(f"job {job_id} is {status}: only a completed job's best checkpoint is registered")
    settings = _settings(store, settings)
    run_id = _run_id(store, job_id) or _ensure_run(store, settings, job_id)
    name = registered_model_name(_project_name(store, job_id))
    from core.tracking import MlflowTracker

    tracker = MlflowTracker(settings=settings)
    existing = _existing_version(tracker, name, job_id)
    if existing is not None:
        return existing
    outcome = export_model(store, job_source(store, job_id, "best"), "onnx", mlflow_model=True,
                           on_progress=on_progress, cancel=cancel, settings=settings)
    assert outcome.mlflow_model is not None
    attached = outcome.verified
    if attached:  # only a verified ONNX travels with the registered model
        (outcome.mlflow_model / "onnx").mkdir(exist_ok=True)
        for file in (outcome.file, outcome.card):
            (outcome.mlflow_model / "onnx" / file.name).write_bytes(file.read_bytes())
    if on_progress is not None:
        on_progress(f"registering the model as {name!r}")
    return _create_version(tracker, name, job_id, run_id, outcome.mlflow_model, attached)


def _ensure_run(store: Store, settings: Settings, job_id: int) -> str:
    from core.tracking import MlflowTracker, sync_job

    result = sync_job(MlflowTracker(settings=settings), store, job_id)
    if not result.run_id:
        raise ServiceError(f"job {job_id} has no MLflow run and none could be created")
    return str(result.run_id)


def _existing_version(tracker: Any, name: str, job_id: int) -> RegisteredVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = tracker.client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for version in versions:
        if (version.tags or {}).get("vision_platform.job_id") == str(job_id):
            return RegisteredVersion(name, str(version.version), f"models:/{name}/{version.version}",
                                     str(version.run_id), (version.tags or {}).get("onnx") == "verified")
    return None


def _create_version(tracker: Any, name: str, job_id: int, run_id: str, folder: Path,
                    onnx_attached: bool) -> RegisteredVersion:
    from mlflow.exceptions import MlflowException

    client = tracker.client
    client.log_artifacts(run_id, str(folder), artifact_path=MLFLOW_MODEL_DIR)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # the project's model exists: this job becomes a new version of it
    source = f"{client.get_run(run_id).info.artifact_uri}/{MLFLOW_MODEL_DIR}"
    tags = {"vision_platform.job_id": str(job_id), "onnx": "verified" if onnx_attached else "none"}
    version = client.create_model_version(name, source, run_id=run_id, tags=tags)
    return RegisteredVersion(name, str(version.version), f"models:/{name}/{version.version}", run_id, onnx_attached)


# -- exported files from elsewhere ----------------------------------------------------------------------
def check_exported(path: str | Path, *, trusted: bool = False) -> dict[str, Any]:
    """Check an exported file against its card in a worker (corrupt, mismatched, untrusted TorchScript);
    returns the card. Raises ServiceError naming the file and the problem."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ServiceError(f"{file}: no such exported model file")
    answer = _run_worker(["--check", str(file), *(["--trust"] if trusted else [])], None, None)
    card: dict[str, Any] = answer["card"]
    return card
