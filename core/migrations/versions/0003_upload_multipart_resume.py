"""Multipart uploads survive a kill: the part size, the file's sha256 and each finished part's ETag.

With ``uploads.multipart_upload_id`` alone a restarted app could only abort what a killed one left;
with these it resumes the upload, sending only the parts the bucket does not hold yet, with the same
part size (R2 requires equal non-final parts across the whole upload).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("multipart_part_size", sa.Integer()))
        batch.add_column(sa.Column("multipart_sha256", sa.String(64)))
        batch.add_column(sa.Column("multipart_etags", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("multipart_etags")
        batch.drop_column("multipart_sha256")
        batch.drop_column("multipart_part_size")
