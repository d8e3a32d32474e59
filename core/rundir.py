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
        weights/best.pt, weights/last.pt, …   single-file checkpoints (timm, Ultralytics)
        weights/best/, weights/last/           folder checkpoints (transformers ``save_pretrained``:
                                               config, safetensors, processor); the row names the
                                               folder's ``model.safetensors``, the folder is the model
        trainer/checkpoint-N/                  transformers' ``Trainer`` state for resuming
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
CHECKPOINT_DIRS: dict[CheckpointKind, str] = {"best": "best", "last": "last"}  # folder checkpoints
FOLDER_CHECKPOINT_FILE = "model.safetensors"  # the file of a folder checkpoint that its row names
TRAINER_DIR = "trainer"  # transformers' Trainer checkpoints (weights, optimizer, scheduler, RNG)
VERIFIED_LAST_FILE = "last.verified.pt"  # an atomic copy of Ultralytics' in-place last.pt
BEST_INFO_FILE = "best.json"  # epoch and metric of best.pt
RESUME_FILE = "resume_from.pt"
RESULTS_CSV = "results.csv"  # Ultralytics' per-epoch table


def checkpoint_file_name(kind: str) -> str:
    """``best.pt`` / ``last.pt`` for those kinds; other kinds keep their own name (``<kind>.pt``)."""
    return CHECKPOINT_FILES.get(kind, f"{kind}.pt")  # type: ignore[call-overload]


def checkpoint_folder_of(path: str | Path) -> Path | None:
    """The model folder of a folder checkpoint whose row names ``path`` (``weights/best/model.safetensors``
    → ``weights/best``); None for a single-file checkpoint (``weights/best.pt``)."""
    folder = Path(path).parent
    is_folder_checkpoint = folder.name in CHECKPOINT_DIRS.values() and folder.parent.name == WEIGHTS_DIR
    return folder if is_folder_checkpoint else None


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

    @property
    def trainer(self) -> Path:
        return self.root / TRAINER_DIR

    def checkpoint(self, kind: CheckpointKind) -> Path:
        return self.wdir / CHECKPOINT_FILES[kind]

    def checkpoint_dir(self, kind: CheckpointKind) -> Path:
        """A folder checkpoint (``weights/best``): the model a framework saves as a folder."""
        return self.wdir / CHECKPOINT_DIRS[kind]

    def checkpoint_dir_swap(self, kind: CheckpointKind) -> tuple[Path, Path]:
        """(staging, old) beside ``checkpoint_dir(kind)``: a new folder is written into staging, the
        current one renamed to old, staging renamed into place — a kill never leaves half a model."""
        name = CHECKPOINT_DIRS[kind]
        return self.wdir / f".{name}.saving", self.wdir / f".{name}.old"

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


assert set(CHECKPOINT_FILES) == set(CHECKPOINT_KINDS) == set(CHECKPOINT_DIRS), "every kind has a file and a folder name"
