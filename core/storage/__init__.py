"""R2 / S3 storage: verified uploads through a persistent outbox, cached verified downloads.

Importing this package never imports boto3 or keyring (start-up time); they load on first use.
"""

from __future__ import annotations

from core.storage.errors import MAX_CHECKPOINT_BYTES, MAX_DATASET_BYTES, StorageError
from core.storage.r2url import checkpoint_key, dataset_key, make_r2_url, parse_r2_url

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_DATASET_BYTES",
    "StorageError",
    "checkpoint_key",
    "dataset_key",
    "make_r2_url",
    "parse_r2_url",
]
