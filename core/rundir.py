"""The names of the files in a job's run directory, written down once.

A run directory is shared by three parties that never import each other's code paths: the runner
(writes ``args.yaml`` and ``job.json``, appends ``worker.log``, watches ``STOP``), the worker and its
adapter (write ``weights/`` and ``val_predictions.json``) and the app (shows the log, reads the
predictions). :class:`RunDir` is the one place that names those files, as Ultralytics' trainer
names ``wdir``/``best``/``last`` once. Layout::

    job_<id>/
        STOP                   exists = stop requested (cancel, the GUI or the runner)
        args.yaml              the effective, validated job config
        job.json               job id, project id, resume flag (``core.contracts.JobInfo``)
        worker.log             worker stderr and the readable events
        val_predictions.json   per-image validation predictions of the best model
        weights/best.pt, weights/last.pt, …
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from core import paths
from core.contracts import JobInfo

CheckpointKind = Literal["best", "last"]
CHECKPOINT_KINDS: tuple[CheckpointKind, ...] = get_args(CheckpointKind)

STOP_FILE = "STOP"
ARGS_FILE = "args.yaml"
JOB_INFO_FILE = "job.json"
LOG_FILE = "worker.log"
VAL_PREDICTIONS_FILE = "val_predictions.json"
WEIGHTS_DIR = "weights"
DATA_DIR = "data"  # the dataset converted for the framework (Ultralytics)
CHECKPOINT_FILES: dict[CheckpointKind, str] = {"best": "best.pt", "last": "last.pt"}
VERIFIED_LAST_FILE = "last.verified.pt"  # an atomic copy of Ultralytics' in-place last.pt
BEST_INFO_FILE = "best.json"  # epoch and metric of best.pt
RESUME_FILE = "resume_from.pt"
RESULTS_CSV = "results.csv"  # Ultralytics' per-epoch table


def checkpoint_file_name(kind: str) -> str:
    """``best.pt`` / ``last.pt`` for those kinds; other kinds keep their own name (``<kind>.pt``)."""
    return CHECKPOINT_FILES.get(kind, f"{kind}.pt")  # type: ignore[call-overload]


@dataclass(frozen=True)
class RunDir:
    """One job's run directory; every property is a path, nothing is created until asked."""

    root: Path

    @classmethod
    def for_job(cls, job_id: int) -> RunDir:
        return cls(paths.job_dir(job_id))

    @classmethod
    def of(cls, output_dir: str | Path | None, job_id: int) -> RunDir:
        """The job row's ``output_dir`` when set, else the default folder for ``job_id``."""
        return cls(Path(output_dir)) if output_dir else cls.for_job(job_id)

    @property
    def stop(self) -> Path:
        return self.root / STOP_FILE

    @property
    def args(self) -> Path:
        return self.root / ARGS_FILE

    @property
    def job_info(self) -> Path:
        return self.root / JOB_INFO_FILE

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    @property
    def val_predictions(self) -> Path:
        return self.root / VAL_PREDICTIONS_FILE

    @property
    def data(self) -> Path:
        return self.root / DATA_DIR

    @property
    def results_csv(self) -> Path:
        return self.root / RESULTS_CSV

    @property
    def wdir(self) -> Path:
        return self.root / WEIGHTS_DIR

    @property
    def best(self) -> Path:
        return self.wdir / CHECKPOINT_FILES["best"]

    @property
    def last(self) -> Path:
        return self.wdir / CHECKPOINT_FILES["last"]

    @property
    def verified_last(self) -> Path:
        return self.wdir / VERIFIED_LAST_FILE

    @property
    def best_info(self) -> Path:
        return self.wdir / BEST_INFO_FILE

    @property
    def resume_from(self) -> Path:
        return self.wdir / RESUME_FILE

    def checkpoint(self, kind: CheckpointKind) -> Path:
        return self.wdir / CHECKPOINT_FILES[kind]

    def sweep_temp_files(self) -> list[Path]:
        """Remove the temp files of atomic writes a killed worker left in ``wdir`` (``.NAME.*.tmp``,
        see ``core.files.atomic_write_bytes``); the files under their final names are untouched."""
        swept = sorted(self.wdir.glob(".*.tmp")) if self.wdir.is_dir() else []
        for path in swept:
            path.unlink(missing_ok=True)
        return swept

    def write_job_info(self, info: JobInfo) -> None:
        self.job_info.write_text(json.dumps(info), encoding="utf-8")

    def read_job_info(self) -> JobInfo:
        """What the runner wrote; an empty mapping for a run dir without ``job.json`` (a bare worker)."""
        if not self.job_info.exists():
            return {}
        info: JobInfo = json.loads(self.job_info.read_text(encoding="utf-8"))
        return info


assert set(CHECKPOINT_FILES) == set(CHECKPOINT_KINDS), "every checkpoint kind has a file name"
