"""Application settings (non-secret), stored as JSON rows in the ``app_settings`` table.

Secrets (R2 keys) never go here: see ``core.storage.credentials`` (OS keyring, 0600 file fallback).
Environment variables override stored values for the design document's names (``MLFLOW_TRACKING_URI``,
``AWS_S3_ENDPOINT_URL``, ``R2_BUCKET``), so a headless run can be configured without the GUI.
An MLflow URI with ``user:password@`` is kept masked (``user:***@``), here and in memory: the password
goes to the credentials store on save, and is looked up only by the code that talks to MLflow.

The memory budget (``memory_budget_mb``) is the one setting a training worker needs: the runner
writes it into the run's ``job.json`` and the worker resolves it with :func:`memory_budget_bytes`
(automatic: a share of the memory free when the job starts). So this module imports the database
only inside the functions that use it: a worker can import it without SQLAlchemy.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import psutil

from core.files import MB

if TYPE_CHECKING:
    from core.db.engine import Store

AUTO_MEMORY_SHARE = 0.5  # memory_budget_mb 0: this share of the memory available when a job starts


def memory_budget_bytes(setting_mb: int, available_bytes: int | None = None) -> int:
    """A job's budget for decoded images: ``setting_mb``, or with 0 (automatic) a share of the memory
    available now (``available_bytes`` when given)."""
    if setting_mb > 0:
        return setting_mb * MB
    available = psutil.virtual_memory().available if available_bytes is None else available_bytes
    return int(available * AUTO_MEMORY_SHARE)


def total_memory_mb() -> int:
    """This computer's memory, in MB (the largest budget that makes sense)."""
    return int(psutil.virtual_memory().total // MB)


@dataclass
class Settings:
    # Storage (R2 / S3). Keys are in the keyring, not here.
    r2_endpoint_url: str = ""
    r2_bucket: str = "vision-platform-prod"
    r2_region: str = "auto"
    # Tracking
    mlflow_tracking_uri: str = ""  # empty: sqlite:///<data dir>/mlflow.db
    tracking_enabled: bool = True
    # Behaviour
    offline_mode: bool = True  # no downloads of weights or data
    default_device: str = "auto"
    max_concurrent_jobs: int = 1
    sync_enabled: bool = True  # upload checkpoints when credentials exist
    # Training data: decoded images are held in memory up to this budget, else streamed from disk.
    memory_budget_mb: int = 0  # 0: automatic (AUTO_MEMORY_SHARE of the memory free at job start)

    @classmethod
    def load(cls, store: Store) -> Settings:
        from core.db.models import AppSetting
        from core.storage.credentials import mask_uri

        values: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        with store.read() as session:
            for row in session.query(AppSetting).all():
                if row.key in known and row.value is not None:
                    values[row.key] = json.loads(row.value)
        settings = cls(**values)
        env_overrides = {
            "mlflow_tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"),
            "r2_endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL"),
            "r2_bucket": os.environ.get("R2_BUCKET"),
        }
        for key, value in env_overrides.items():
            if value:
                setattr(settings, key, value)
        settings.mlflow_tracking_uri = mask_uri(settings.mlflow_tracking_uri)
        return settings

    def save(self, store: Store) -> None:
        """Store every field; a tracking password goes to the credentials store, the URI masked."""
        from core.db.models import AppSetting
        from core.storage.credentials import remember_tracking_password

        self.mlflow_tracking_uri = remember_tracking_password(self.mlflow_tracking_uri)
        with store.write() as session:
            for key, value in asdict(self).items():
                session.merge(AppSetting(key=key, value=json.dumps(value)))
