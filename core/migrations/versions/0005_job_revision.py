"""``training_jobs.revision``: a change counter, so a jobs list reads only the rows that changed.

The Jobs page refreshes every second. Without a marker it re-read every unfinished job each time
(with 2,500 queued jobs, ~100–200 ms of a worker thread holding the GIL while the window paints).
Every insert or update of a job row now sets its ``revision`` above every other row's, by triggers,
so every writer is covered: the runner, the queue, the tracking listener, raw SQL, another process.
A reader keeps the highest revision it has seen and asks for the rows above it
(``core.services.jobs.job_changes``). Existing rows take their id as their revision.

SQLite runs no trigger from inside a trigger's own update (``recursive_triggers`` is off by default),
and the ``WHEN`` guard leaves an update that sets the revision itself alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_NEXT = "(SELECT COALESCE(MAX(revision), 0) + 1 FROM training_jobs)"
TRIGGERS = {
    "training_jobs_revision_on_insert": f"""
        CREATE TRIGGER training_jobs_revision_on_insert AFTER INSERT ON training_jobs
        BEGIN
            UPDATE training_jobs SET revision = {_NEXT} WHERE id = NEW.id;
        END""",
    "training_jobs_revision_on_update": f"""
        CREATE TRIGGER training_jobs_revision_on_update AFTER UPDATE ON training_jobs
        WHEN NEW.revision = OLD.revision
        BEGIN
            UPDATE training_jobs SET revision = {_NEXT} WHERE id = NEW.id;
        END""",
}


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE training_jobs SET revision = id")
    op.create_index("ix_training_jobs_revision", "training_jobs", ["revision"])
    for sql in TRIGGERS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_training_jobs_revision", table_name="training_jobs")
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("revision")
