"""Reliability: a real worker (tiny timm run) meets a full disk, a locked database and a stdout flood.

Each fault is real or injected at the real write (``enospc_at`` in ``adapters/faults.py`` and the
runner, ``core.files.inject_disk_full``), switched on at a moment the test chooses while the worker is
held (``tests/helpers/holds.py``), so what happens is decided by construction, not by the machine's
speed. The outcomes asserted are the ones the reliability matrix promises: the job ends ``failed``
with "disk full (path, N MB free)", the previous checkpoint loads and matches its DB row, the
database passes ``integrity_check``, no metric row is lost or written twice, the worker is stopped.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch

from core.config import config_from_dict
from core.db.engine import Store, open_store
from core.files import sha256_file
from core.jobs import store as job_store
from core.jobs.runner import STRAY_LOG_LIMIT_BYTES, JobRunner
from core.jobs.spool import SPOOL_FILE, read_spool
from core.rundir import RunDir
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.slow

# 72 images, ~57 for training at batch 8 = 7 batches an epoch: global batch 9 is inside epoch 2,
# after epoch 1's checkpoint; 11 is later in epoch 2, before its end.
EPOCH_2_BATCH = 9
LATER_IN_EPOCH_2 = 11
DISK_FULL = re.compile(r"^disk full \((?P<path>.+), (?P<free>\d+) MB free\)$")
# Every batch slower than the 0.1 s step-report interval: each one reports (progress + metrics).
EVERY_STEP_REPORTS = "slow_step=0.12"


@pytest.fixture(scope="module")
def colour_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours") / "data"
    make_imagefolder(root, classes=("red", "green", "blue"), per_class=24, size=32)
    return root


def _create_job(store: Store, dataset: Path, epochs: int = 2) -> int:
    config = config_from_dict({"dataset": str(dataset), "model": "test_resnet", "epochs": epochs, "batch_size": 8,
                               "image_size": 32, "seed": 5})
    return job_store.create_job(store, config)


class _Run:
    """JobRunner.run in a thread, with every event the runner read (the ground truth for "nothing lost")."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.status: str | None = None
        runner = JobRunner(store, on_event=lambda _job, event: self.events.append(event), term_seconds=30)
        self.thread = threading.Thread(target=lambda: setattr(self, "status", runner.run(job_id)))
        self.thread.start()

    def finish(self) -> str | None:
        self.thread.join(300)
        assert not self.thread.is_alive(), "the runner did not finish"
        return self.status

    def metric_keys(self) -> Counter[tuple[str, int, int | None]]:
        return Counter((e["kind"], int(e["epoch"]), e.get("step")) for e in self.events if e["type"] == "metrics")


def _db_metric_keys(store: Store, job_id: int) -> Counter[tuple[str, int, int | None]]:
    return Counter((row.kind, row.epoch, row.step) for row in job_store.metric_rows(store, job_id))


def _integrity(store: Store) -> str:
    with sqlite3.connect(store.db_file) as raw:
        return str(raw.execute("PRAGMA integrity_check").fetchone()[0])


def _assert_epoch_1_checkpoint_intact(store: Store, job_id: int) -> None:
    """The checkpoint saved before the fault: its DB row says epoch 1, the file loads and hashes to it."""
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 1
    assert sha256_file(Path(last.path)) == last.sha256
    assert torch.load(last.path, map_location="cpu", weights_only=True)["epoch"] == 1
    assert not list(Path(last.path).parent.glob(".*.tmp")), "a failed save left its temp file"


def _hold_after_epoch_1(store: Store, job_id: int, holds: Holds) -> None:
    wait_until(lambda: holds.is_held(EPOCH_2_BATCH) and job_store.latest_checkpoint(store, job_id, "last") is not None,
               "the worker held in epoch 2, epoch 1's checkpoint recorded")


def test_checkpoint_write_hits_full_disk_previous_checkpoint_intact(
        vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 5: ENOSPC inside the checkpoint's atomic write (after its data is in the temp file)."""
    store = open_store()
    job_id = _create_job(store, colour_dataset)
    holds = Holds(vp_home / "holds", EPOCH_2_BATCH)
    full = vp_home / "disk_is_full"
    monkeypatch.setenv("VP_FAULT", f"{holds.fault_spec},enospc_at=checkpoint,enospc_while={full}")
    run = _Run(store, job_id)
    _hold_after_epoch_1(store, job_id, holds)
    full.touch()
    holds.release_all()
    assert run.finish() == "failed"

    job = job_store.get_job(store, job_id)
    assert job.status == "failed"
    match = DISK_FULL.match(job.error_message or "")
    assert match, job.error_message
    assert Path(match["path"]) == RunDir.of(job.output_dir, job_id).last
    _assert_epoch_1_checkpoint_intact(store, job_id)
    assert _integrity(store) == "ok"
    assert _db_metric_keys(store, job_id) == run.metric_keys()  # metrics were not affected


def test_metrics_write_hits_full_disk_job_fails_rows_spooled_not_lost(
        vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 5: the database write fails as on a full disk; the runner stops the worker, the job
    fails naming the database, and every metric is either committed once or waiting in the spool."""
    store = open_store()
    job_id = _create_job(store, colour_dataset)
    # Held again later in epoch 2 and never released: only the runner's stop can end the worker, and
    # it ends before epoch 2's checkpoint (whose DB row could not be written) replaces epoch 1's.
    holds = Holds(vp_home / "holds", EPOCH_2_BATCH, LATER_IN_EPOCH_2, extra=EVERY_STEP_REPORTS)
    full = vp_home / "disk_is_full"
    monkeypatch.setenv("VP_FAULT", f"{holds.fault_spec},enospc_at=metrics,enospc_while={full}")
    run = _Run(store, job_id)
    _hold_after_epoch_1(store, job_id, holds)
    worker_pid = job_store.get_job(store, job_id).worker_pid
    full.touch()
    holds.release(EPOCH_2_BATCH)
    assert run.finish() == "failed"

    job = job_store.get_job(store, job_id)
    match = DISK_FULL.match(job.error_message or "")
    assert match and Path(match["path"]) == store.db_file, job.error_message
    assert worker_pid is not None and not psutil.pid_exists(worker_pid)
    assert _integrity(store) == "ok"
    _assert_epoch_1_checkpoint_intact(store, job_id)
    committed = _db_metric_keys(store, job_id)
    spool = RunDir.of(job.output_dir, job_id).root / SPOOL_FILE
    spooled = Counter((e["kind"], int(e["epoch"]), e.get("step")) for e in read_spool(spool) if e["type"] == "metrics")
    assert spooled, "the failed batches are in the spool"
    assert not committed & spooled, "no row of a failed batch was committed"
    assert committed + spooled == run.metric_keys()  # nothing lost, nothing twice


def test_worker_log_full_runner_keeps_supervising_and_stops_the_worker(
        vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 5: ENOSPC on every runner write to worker.log. The worker is held and would never end
    by itself; the runner must not die with it running: it stops it and fails the job."""
    store = open_store()
    job_id = _create_job(store, colour_dataset)
    holds = Holds(vp_home / "holds", 2)  # never released
    monkeypatch.setenv("VP_FAULT", f"{holds.fault_spec},enospc_at=log")
    run = _Run(store, job_id)
    assert run.finish() == "failed"

    job = job_store.get_job(store, job_id)
    match = DISK_FULL.match(job.error_message or "")
    assert match and Path(match["path"]) == RunDir.of(job.output_dir, job_id).log, job.error_message
    hello = [e for e in run.events if e["type"] == "hello"]
    assert hello and not psutil.pid_exists(hello[0]["pid"])
    assert job.worker_pid is None and _integrity(store) == "ok"


def test_database_locked_past_busy_timeout_metrics_spooled_then_written_once(
        vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 6 (and 5's "spool and retry"): another process holds the database's write lock past
    the busy timeout while epoch 1 ends. The batches wait in the spool; once the lock is gone they are
    written in order, and every metric the worker sent is in the database exactly once."""
    import core.db.engine

    monkeypatch.setattr(core.db.engine, "BUSY_TIMEOUT_MS", 200)  # the store below waits 0.2 s, not 30 s
    store = open_store()
    job_id = _create_job(store, colour_dataset)
    holds = Holds(vp_home / "holds", 2, EPOCH_2_BATCH, extra=EVERY_STEP_REPORTS)
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    run = _Run(store, job_id)
    wait_until(lambda: holds.is_held(2) and job_store.get_job(store, job_id).worker_pid, "the worker held at batch 2")
    spool = RunDir.of(job_store.get_job(store, job_id).output_dir, job_id).root / SPOOL_FILE

    locker = sqlite3.connect(store.db_file, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    holds.release(2)
    wait_until(lambda: holds.is_held(EPOCH_2_BATCH) and any(e["type"] == "checkpoint" for e in read_spool(spool)),
               "epoch 1's checkpoint event waiting in the spool")
    assert job_store.latest_checkpoint(store, job_id, "last") is None  # not written while locked
    locker.execute("COMMIT")
    locker.close()
    holds.release(EPOCH_2_BATCH)
    assert run.finish() == "completed"

    keys = _db_metric_keys(store, job_id)
    assert keys == run.metric_keys() and set(keys.values()) == {1}
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2]
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 2 and sha256_file(Path(last.path)) == last.sha256
    assert not spool.exists() and _integrity(store) == "ok"


def test_stdout_flood_is_bounded_and_the_job_completes(
        vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 31: 50 MB of non-event lines on the worker's stdout. The runner's memory stays bounded
    (traced peak far below the flood), worker.log keeps a bounded part and says how much was left out,
    the job still completes."""
    store = open_store()
    job_id = _create_job(store, colour_dataset, epochs=1)
    monkeypatch.setenv("VP_FAULT", "flood_stdout_mb=50")
    events: list[dict[str, Any]] = []
    tracemalloc.start()
    try:
        status = JobRunner(store, on_event=lambda _job, event: events.append(event)).run(job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == "completed"
    assert peak < 16 * 2**20, f"runner peak {peak / 2**20:.1f} MB while reading a 50 MB flood"

    log_file = RunDir.of(job_store.get_job(store, job_id).output_dir, job_id).log
    assert log_file.stat().st_size < STRAY_LOG_LIMIT_BYTES + 2**20
    note = re.search(r"\[stdout\] … (\d+) more lines \(([\d.]+) MB\) of worker output that were not events",
                     log_file.read_text(encoding="utf-8"))
    assert note and float(note[2]) > 40, "the overflow is counted in worker.log"
    assert any(e["type"] == "warning" and "not events" in e.get("message", "") for e in events)
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1]


def _can_mount_tmpfs(folder: Path) -> str | None:
    """None when a tmpfs can be mounted here (root, Linux), else why not."""
    if shutil.which("mount") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a real full disk needs a tmpfs mount: root on Linux"
    probe = folder / "probe"
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"mounting a tmpfs is not permitted here: {done.stderr.strip()}"
    subprocess.run(["umount", str(probe)], check=True)
    return None


def _fill(folder: Path) -> None:
    """Write until the volume is really full (ENOSPC)."""
    block = b"\0" * 2**16
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    small = b"\0" * 512
    with open(folder / "filler2", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(small)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_real_full_disk_under_the_run_directory(vp_home: Path, colour_dataset: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 5: the run directory on a real tmpfs, filled to the last byte after epoch 1. The job
    fails with "disk full (…, 0 MB free)" (the checkpoint save or the runner's worker.log write finds it
    first), the worker is gone, epoch 1's checkpoint and the database are intact."""
    reason = _can_mount_tmpfs(tmp_path)
    if reason:
        pytest.skip(reason)
    store = open_store()
    job_id = _create_job(store, colour_dataset)
    run_dir = RunDir.of(job_store.get_job(store, job_id).output_dir, job_id)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(run_dir.root)], check=True)
    try:
        holds = Holds(vp_home / "holds", EPOCH_2_BATCH)
        monkeypatch.setenv("VP_FAULT", holds.fault_spec)
        run = _Run(store, job_id)
        _hold_after_epoch_1(store, job_id, holds)
        worker_pid = job_store.get_job(store, job_id).worker_pid
        _fill(run_dir.root)
        holds.release_all()
        assert run.finish() == "failed"

        job = job_store.get_job(store, job_id)
        match = DISK_FULL.match(job.error_message or "")
        assert match and Path(match["path"]).is_relative_to(run_dir.root), job.error_message
        assert match["free"] == "0"
        assert worker_pid is not None and not psutil.pid_exists(worker_pid)
        _assert_epoch_1_checkpoint_intact(store, job_id)
        assert _integrity(store) == "ok"
    finally:
        if subprocess.run(["umount", str(run_dir.root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(run_dir.root)], capture_output=True)
