"""Desktop app additions: datasets, checkpoints, artifacts, upload outbox, settings, job bookkeeping.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("format", sa.String(32)),
        sa.Column("task_type", sa.String(64)),
        sa.Column("source_url", sa.Text()),
        sa.Column("num_images", sa.Integer()),
        sa.Column("num_classes", sa.Integer()),
        sa.Column("class_names", sa.Text()),
        sa.Column("split_config", sa.Text()),
        sa.Column("created_at", sa.DateTime()),
    )
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("name", sa.String(256)))
        batch.add_column(sa.Column("dataset_id", sa.Integer()))
        batch.add_column(sa.Column("config_yaml", sa.Text()))
        batch.add_column(sa.Column("created_at", sa.DateTime()))
        batch.add_column(sa.Column("queued_at", sa.DateTime()))
        batch.add_column(sa.Column("current_epoch", sa.Integer()))
        batch.add_column(sa.Column("current_step", sa.Integer()))
        batch.add_column(sa.Column("steps_per_epoch", sa.Integer()))
        batch.add_column(sa.Column("best_metric_name", sa.String(64)))
        batch.add_column(sa.Column("best_metric_value", sa.Float()))
        batch.add_column(sa.Column("error_traceback", sa.Text()))
        batch.add_column(sa.Column("exit_code", sa.Integer()))
        batch.add_column(sa.Column("runner_pid", sa.Integer()))
        batch.add_column(sa.Column("runner_started", sa.Float()))
        batch.add_column(sa.Column("worker_pid", sa.Integer()))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("resume_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("mlflow_synced_metric_id", sa.Integer()))
        batch.create_foreign_key(
            "fk_training_jobs_dataset_id", "datasets", ["dataset_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("training_metrics") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="epoch"))
        batch.create_index("ix_training_metrics_job_epoch", ["job_id", "epoch"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.Integer()),
        sa.Column("epoch", sa.Integer()),
        sa.Column("metric_name", sa.String(64)),
        sa.Column("metric_value", sa.Float()),
        sa.Column("r2_url", sa.Text()),
        sa.Column("sync_state", sa.String(16), nullable=False, server_default="local"),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime()),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE")),
        sa.Column("checkpoint_id", sa.Integer(), sa.ForeignKey("checkpoints.id", ondelete="CASCADE")),
        sa.Column("local_path", sa.Text(), nullable=False),
        sa.Column("bucket", sa.String(256), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.Integer()),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_retry_at", sa.DateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("multipart_upload_id", sa.Text()),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("synced_at", sa.DateTime()),
    )
    op.create_index("ix_uploads_state_next", "uploads", ["state", "next_retry_at"])
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("app_settings")
    op.drop_index("ix_uploads_state_next", "uploads")
    op.drop_table("uploads")
    op.drop_table("artifacts")
    op.drop_table("checkpoints")
    with op.batch_alter_table("training_metrics") as batch:
        batch.drop_index("ix_training_metrics_job_epoch")
        batch.drop_column("kind")
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_constraint("fk_training_jobs_dataset_id", type_="foreignkey")
        for column in (
            "name", "dataset_id", "config_yaml", "created_at", "queued_at", "current_epoch", "current_step",
            "steps_per_epoch", "best_metric_name", "best_metric_value", "error_traceback", "exit_code",
            "runner_pid", "runner_started", "worker_pid", "cancel_requested", "resume_requested",
            "mlflow_synced_metric_id",
        ):
            batch.drop_column(column)
    op.drop_table("datasets")
