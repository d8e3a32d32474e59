"""A worker killed while it writes a checkpoint: the previous generation is intact, the temp file is swept.

matrix row 2. The ``exit_in_checkpoint_write`` fault kills the real worker (``os._exit``: no cleanup)
inside ``atomic_write_bytes``, after the new checkpoint's bytes are in the temp file and before the
rename: exactly the moment a power cut or ``kill -9`` would hit a naive in-place save.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.config import config_from_dict
from core.db.engine import open_store
from core.files import sha256_file
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from core.rundir import RunDir
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow


@pytest.mark.reliability(row=2, fault="worker killed inside the checkpoint's atomic write (temp file written, not renamed)")
def test_kill_during_checkpoint_write_keeps_the_previous_generation(
    vp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """matrix row 2: epoch 1 saves last.pt and best.pt (writes 1 and 2); the worker dies in write 3,
    epoch 2's last.pt. The job fails, last.pt is epoch 1's and loads, its sha256 is the DB row's, the
    stale temp file is removed when the job resumes, and the resumed job completes."""
    data = make_imagefolder(tmp_path / "data", classes=("red", "blue"), per_class=8, size=32)
    store = open_store()
    config = config_from_dict({"dataset": str(data), "model": "test_resnet", "epochs": 2, "batch_size": 4,
                               "image_size": 32})
    job_id = job_store.create_job(store, config)
    monkeypatch.setenv("VP_FAULT", "exit_in_checkpoint_write=3")
    assert JobRunner(store).run(job_id) == "failed"
    monkeypatch.delenv("VP_FAULT")

    run = RunDir(Path(job_store.get_job(store, job_id).output_dir or ""))
    stale = sorted(run.wdir.glob(".*.tmp"))
    assert [p.name.split(".")[1] for p in stale] == ["last"], stale  # the interrupted write's temp file
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 1
    assert sha256_file(run.last) == last.sha256
    assert torch.load(run.last, map_location="cpu", weights_only=True)["epoch"] == 1

    job_store.requeue_for_resume(store, job_id)
    assert JobRunner(store).run(job_id) == "completed"
    assert list(run.wdir.glob(".*.tmp")) == []  # swept (new writes rename their own temp files away)
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2]
