"""Step metrics move from one ``training_metrics`` row each to packed chunks plus decimated buckets.

At a million steps a job's charts took 48 s to open (one ORM object and one JSON parse per row) and
its rows cost ~115 bytes a step. ``step_chunks`` keeps every step record compactly and
``step_buckets`` the min/max/last per bucket that charts read (``core.jobs.series``). Every step row
moves, in its job's row order, and is deleted from ``training_metrics`` in the same transaction;
epoch rows stay. ``training_jobs.mlflow_synced_step_seq`` is MLflow's cursor over the moved records:
the step rows MLflow already confirmed (ids up to ``mlflow_synced_metric_id``) are not sent again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ROWS_PER_READ = 20_000


def upgrade() -> None:
    op.create_table(
        "step_chunks",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq0", sa.Integer(), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("step_first", sa.Integer(), nullable=False),
        sa.Column("step_last", sa.Integer(), nullable=False),
        sa.Column("epoch_last", sa.Integer(), nullable=False),
        sa.Column("t0", sa.Float(), nullable=False),
        sa.Column("names", sa.Text(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("epochs", sa.LargeBinary(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        sa.Column("vals", sa.LargeBinary(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_step_chunks_job_step", "step_chunks", ["job_id", "step_last"])
    op.create_table(
        "step_buckets",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("level", sa.Integer(), primary_key=True),
        sa.Column("bucket", sa.Integer(), primary_key=True),
        sa.Column("x0", sa.Integer(), nullable=False),
        sa.Column("x1", sa.Integer(), nullable=False),
        sa.Column("vmin", sa.Float()),
        sa.Column("vmax", sa.Float()),
        sa.Column("vlast", sa.Float()),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("mlflow_synced_step_seq", sa.Integer()))
    _move_step_rows(op.get_bind())


def _move_step_rows(conn: sa.engine.Connection) -> None:
    from core.jobs import series

    jobs = [row[0] for row in conn.exec_driver_sql(
        "SELECT DISTINCT job_id FROM training_metrics WHERE kind = 'step' ORDER BY job_id").all()]
    for job_id in jobs:
        synced = conn.exec_driver_sql("SELECT mlflow_synced_metric_id FROM training_jobs WHERE id = ?",
                                      (job_id,)).scalar()
        last_id, moved, sent = 0, 0, 0
        while True:
            rows = conn.exec_driver_sql(
                "SELECT id, epoch, step, loss, accuracy, learning_rate, extra_metrics, created_at FROM training_metrics"
                " WHERE job_id = ? AND kind = 'step' AND id > ? ORDER BY id LIMIT ?",
                (job_id, last_id, _ROWS_PER_READ)).all()
            if not rows:
                break
            moved += series.append(conn, job_id, [_record(row) for row in rows])
            sent += sum(1 for row in rows if synced is not None and row[0] <= synced)
            last_id = rows[-1][0]
        conn.exec_driver_sql("DELETE FROM training_metrics WHERE job_id = ? AND kind = 'step'", (job_id,))
        if sent:
            conn.exec_driver_sql("UPDATE training_jobs SET mlflow_synced_step_seq = ? WHERE id = ?", (sent - 1, job_id))


def _record(row: sa.Row) -> tuple[int, int | None, float, dict[str, float]]:
    from datetime import UTC, datetime

    from core.tracking.mlflow_logger import metric_values_from_row

    _id, epoch, step, loss, accuracy, learning_rate, extra, created = row
    stamp = 0.0
    if created:
        moment = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
        stamp = moment.replace(tzinfo=UTC).timestamp()
    return int(epoch or 0), step, stamp, metric_values_from_row(loss, accuracy, learning_rate, extra)


def downgrade() -> None:
    conn = op.get_bind()
    _restore_step_rows(conn)
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("mlflow_synced_step_seq")
    op.drop_table("step_buckets")
    op.drop_table("step_chunks")


def _restore_step_rows(conn: sa.engine.Connection) -> None:
    import json
    import time

    from core.jobs import series

    jobs = [row[0] for row in conn.exec_driver_sql("SELECT DISTINCT job_id FROM step_chunks").all()]
    for job_id in jobs:
        rows = [(job_id, r.epoch, r.step, "step", r.values.get("train/loss", r.values.get("loss")),
                 r.values.get("train/accuracy"), r.values.get("lr", r.values.get("learning_rate")),
                 json.dumps(r.values), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.time)))
                for r in series.iter_records(conn, job_id)]
        if rows:
            conn.exec_driver_sql(
                "INSERT INTO training_metrics (job_id, epoch, step, kind, loss, accuracy, learning_rate, extra_metrics,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
