"""One desktop app per data folder (an OS lock naming its holder), and no job run twice by two runners.

Real processes hold the lock and race for the job; the race is made deterministic by construction:
every contender has read the job as queued before any of them claims it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import config_from_dict
from core.db.engine import close_all_stores, open_store
from core.jobs import store as job_store
from core.platform import FileLock, ProcessIdentity, read_lock_text
from core.services import ServiceError
from core.services.settings import claim_data_folder

ROOT = Path(__file__).resolve().parents[2]

_APP = """
import sys
from core.services.settings import claim_data_folder
lock = claim_data_folder()
print("ready", flush=True)
sys.stdin.readline()
"""

_CONTENDER = """
import os, sys
from core.db.engine import open_store
from core.jobs import store as job_store
store = open_store()
job_id = job_store.next_queued_job(store)
print(f"seen {job_id}", flush=True)
sys.stdin.readline()
print("claimed" if job_store.claim_job(store, job_id) else "refused", os.getpid(), flush=True)
"""


@pytest.fixture
def data_dir(vp_home: Path) -> Iterator[Path]:
    yield vp_home
    close_all_stores()


def _python(home: Path, code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "VP_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def start_app_holder(home: Path) -> subprocess.Popen[str]:
    """A process that holds the data folder's app lock, as a running desktop app does."""
    proc = _python(home, _APP)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.reliability(row=32, fault="a second app on the same data folder")
def test_second_app_is_refused_naming_the_first_and_a_killed_one_leaves_no_stale_lock(data_dir: Path) -> None:
    """matrix row 32: the second instance is refused with the first one's pid and command; the OS drops
    the lock of a killed app, so the next start takes it."""
    holder = start_app_holder(data_dir)
    try:
        with pytest.raises(ServiceError) as refused:
            claim_data_folder()
        message = str(refused.value)
        assert f"process {holder.pid} ({sys.executable} -c" in message
        assert str(data_dir) in message
    finally:
        holder.kill()
        holder.wait(30)
    lock = claim_data_folder()
    try:
        written = ProcessIdentity.from_json(read_lock_text(lock.path))
        assert written == ProcessIdentity.current()
    finally:
        lock.release()


@pytest.mark.reliability(row=32, fault="a read-only CLI command while the app holds the data folder")
def test_cli_reads_beside_a_running_app(data_dir: Path) -> None:
    """matrix row 32: `vision-platform jobs` runs beside the app that holds the lock."""
    job_store.create_job(open_store(), config_from_dict({"dataset": "/data/cats", "model": "resnet18"}))
    holder = start_app_holder(data_dir)
    try:
        env = {**os.environ, "VP_HOME": str(data_dir)}
        result = subprocess.run([sys.executable, "-m", "vision_platform", "jobs"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "resnet18" in result.stdout
    finally:
        holder.kill()
        holder.wait(30)


def test_file_lock_is_exclusive_per_open_file(tmp_path: Path) -> None:
    """matrix row 32: the platform lock refuses a second holder, also within one process."""
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire()
    first.write_text("holder")
    assert not second.try_acquire()
    assert read_lock_text(tmp_path / "x.lock") == "holder"
    first.release()
    assert second.try_acquire()
    second.release()


@pytest.mark.reliability(row=32, fault="three runners racing for one queued job")
def test_runners_that_all_saw_the_job_queued_claim_it_once(data_dir: Path) -> None:
    """matrix row 32 (and row 6): three processes read the same queued job, then all claim it: exactly
    one wins, and the row names the winner."""
    store = open_store()
    job_id = job_store.create_job(store, config_from_dict({"dataset": "/data/cats", "model": "resnet18"}))
    contenders = [_python(data_dir, _CONTENDER) for _ in range(3)]
    try:
        for proc in contenders:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == f"seen {job_id}"
        for proc in contenders:  # everyone has seen it queued: now all claim
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        outcomes = [proc.communicate(timeout=120)[0].split() for proc in contenders]
    finally:
        for proc in contenders:
            proc.kill()
            proc.wait(30)
    winners = [int(pid) for outcome, pid in outcomes if outcome == "claimed"]
    assert len(winners) == 1, outcomes
    assert sorted(outcome for outcome, _pid in outcomes) == ["claimed", "refused", "refused"]
    job = job_store.get_job(store, job_id)
    assert (job.status, job.runner_pid) == ("running", winners[0])
