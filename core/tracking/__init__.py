"""Experiment tracking (MLflow): one experiment per project, one run per job.

Importing this package never imports mlflow (seconds of start-up); the classes import it on first use.
"""

from __future__ import annotations

from core.tracking.listener import (
    JobSyncResult,
    MlflowListener,
    jobs_with_metric_gaps,
    open_run_markers,
    resend_metrics,
    sync_job,
    terminate_orphaned_runs,
)
from core.tracking.mlflow_logger import (
    RUN_STATUS_FOR_JOB,
    MlflowTracker,
    default_tracking_uri,
    experiment_name,
    run_name,
    tracking_uri,
)

__all__ = [
    "RUN_STATUS_FOR_JOB",
    "JobSyncResult",
    "MlflowListener",
    "MlflowTracker",
    "default_tracking_uri",
    "experiment_name",
    "jobs_with_metric_gaps",
    "open_run_markers",
    "resend_metrics",
    "run_name",
    "sync_job",
    "terminate_orphaned_runs",
    "tracking_uri",
]
