"""Sync states, declared once: of an upload row (the outbox) and of a checkpoint's copy in the bucket.

An upload goes ``pending`` → ``uploading`` → ``synced`` | ``failed``; a checkpoint is ``local`` until
its upload is queued, then follows its upload. No database or boto3 import here: views may use it.
"""

from __future__ import annotations

from typing import Literal, get_args

UploadState = Literal["pending", "uploading", "synced", "failed"]
UPLOAD_STATES: tuple[UploadState, ...] = get_args(UploadState)
UNFINISHED_UPLOAD_STATES: tuple[UploadState, ...] = ("pending", "uploading", "failed")  # not in the bucket yet

CheckpointSyncState = Literal["local", "pending", "synced", "failed"]
CHECKPOINT_SYNC_STATES: tuple[CheckpointSyncState, ...] = get_args(CheckpointSyncState)

assert set(UNFINISHED_UPLOAD_STATES) == set(UPLOAD_STATES) - {"synced"}, "every upload is synced or unfinished"
assert set(CHECKPOINT_SYNC_STATES) - {"local"} <= set(UPLOAD_STATES), "a queued checkpoint follows its upload"
