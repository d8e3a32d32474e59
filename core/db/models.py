"""SQLAlchemy 2 models.

The original schema (users, projects, training_jobs, training_metrics) keeps its column names so that
its queries still read; what a desktop app needs on top (datasets, checkpoints, artifacts, the upload
outbox, settings) sits beside it. Schema changes go through Alembic migrations in ``core/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    jobs: Mapped[list[TrainingJob]] = relationship(back_populates="project", passive_deletes=True)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str | None] = mapped_column(String(32))
    task_type: Mapped[str | None] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(Text)  # r2://… when it was downloaded
    num_images: Mapped[int | None] = mapped_column(Integer)
    num_classes: Mapped[int | None] = mapped_column(Integer)
    class_names: Mapped[str | None] = mapped_column(Text)  # JSON list
    split_config: Mapped[str | None] = mapped_column(Text)  # JSON: strategy, ratio, seed
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrainingJob(Base):
    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    # Model (original schema columns)
    framework: Mapped[str] = mapped_column(String(64), nullable=False)
    model_name: Mapped[str] = mapped_column(String(256), nullable=False)
    task_type: Mapped[str] = mapped_column(String(64), nullable=False)
    # Dataset
    dataset_path: Mapped[str] = mapped_column(Text, nullable=False)
    dataset_format: Mapped[str | None] = mapped_column(String(32))
    num_classes: Mapped[int | None] = mapped_column(Integer)
    # Hyperparameters
    epochs: Mapped[int | None] = mapped_column(Integer)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    # Status
    status: Mapped[str] = mapped_column(String(32), default="pending", nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    # Output
    output_dir: Mapped[str | None] = mapped_column(Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    # --- added in revision 0002 (desktop app) ---
    name: Mapped[str | None] = mapped_column(String(256))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    config_yaml: Mapped[str | None] = mapped_column(Text)  # the effective, validated config
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    current_epoch: Mapped[int | None] = mapped_column(Integer)
    current_step: Mapped[int | None] = mapped_column(Integer)
    steps_per_epoch: Mapped[int | None] = mapped_column(Integer)
    best_metric_name: Mapped[str | None] = mapped_column(String(64))
    best_metric_value: Mapped[float | None] = mapped_column(Float)
    error_traceback: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    runner_pid: Mapped[int | None] = mapped_column(Integer)
    runner_started: Mapped[float | None] = mapped_column(Float)  # process create_time: guards PID reuse
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    resume_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    mlflow_synced_metric_id: Mapped[int | None] = mapped_column(Integer)  # metrics re-sent up to here
    # --- added in revision 0004: the step records (core.jobs.series seq) MLflow confirmed, up to here ---
    mlflow_synced_step_seq: Mapped[int | None] = mapped_column(Integer)
    # --- added in revision 0005: set by triggers above every other row's on each insert and update, so a
    # jobs list reads only the rows that changed (core.services.jobs.job_changes) ---
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", index=True)

    project: Mapped[Project] = relationship(back_populates="jobs")


class TrainingMetric(Base):
    __tablename__ = "training_metrics"
    __table_args__ = (Index("ix_training_metrics_job_epoch", "job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)
    step: Mapped[int | None] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    extra_metrics: Mapped[str | None] = mapped_column(Text)  # JSON of every other named metric
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    # --- added in revision 0002 ---
    kind: Mapped[str] = mapped_column(String(8), default="epoch", nullable=False)  # "step" | "epoch"


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # best | last
    path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    epoch: Mapped[int | None] = mapped_column(Integer)
    metric_name: Mapped[str | None] = mapped_column(String(64))
    metric_value: Mapped[float | None] = mapped_column(Float)
    r2_url: Mapped[str | None] = mapped_column(Text)
    sync_state: Mapped[str] = mapped_column(String(16), default="local", nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Artifact(Base):
    """A file a run produced besides checkpoints (plots, confusion matrix, results CSV)."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Upload(Base):
    """The sync outbox: one row per file that must reach R2/S3. Survives restarts."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_state_next", "state", "next_retry_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"))
    local_path: Mapped[str] = mapped_column(Text, nullable=False)
    bucket: Mapped[str] = mapped_column(String(256), nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_retry_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    multipart_upload_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    # --- added in revision 0003: what resuming ``multipart_upload_id`` after a kill needs ---
    multipart_part_size: Mapped[int | None] = mapped_column(Integer)
    multipart_sha256: Mapped[str | None] = mapped_column(String(64))  # the file the upload was started for
    multipart_etags: Mapped[str | None] = mapped_column(Text)  # JSON {part number: ETag} of finished parts


class AppSetting(Base):
    """Non-secret settings (secrets go to the OS keyring)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)  # JSON


# --- added in revision 0004: step metrics, compact and decimated (``core.jobs.series`` reads and writes) ---
class StepChunk(Base):
    """Up to ``series.CHUNK_RECORDS`` consecutive step records of a job, packed (see core.jobs.series)."""

    __tablename__ = "step_chunks"
    __table_args__ = (Index("ix_step_chunks_job_step", "job_id", "step_last"), {"sqlite_with_rowid": False})

    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq0: Mapped[int] = mapped_column(Integer, primary_key=True)  # the first record's number in the job
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    step_first: Mapped[int] = mapped_column(Integer, nullable=False)
    step_last: Mapped[int] = mapped_column(Integer, nullable=False)
    epoch_last: Mapped[int] = mapped_column(Integer, nullable=False)
    t0: Mapped[float] = mapped_column(Float, nullable=False)
    names: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list: the order of the value columns
    steps: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    epochs: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    times: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    vals: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class StepBucket(Base):
    """min, max and last value of ``level`` consecutive step records of one metric."""

    __tablename__ = "step_buckets"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    x0: Mapped[int] = mapped_column(Integer, nullable=False)
    x1: Mapped[int] = mapped_column(Integer, nullable=False)
    vmin: Mapped[float | None] = mapped_column(Float)
    vmax: Mapped[float | None] = mapped_column(Float)
    vlast: Mapped[float | None] = mapped_column(Float)
