"""A damaged database at start: checked after an unclean shutdown, moved aside, rebuilt from run folders.

Real SQLite files damaged the way they get damaged (overwritten with garbage, truncated, a page
scribbled over), real run folders written with the runner's file names, real processes killed with
``Popen.kill`` to leave an unclean shutdown, and the real CLI in a subprocess.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from core.config import config_from_dict
from core.db.engine import Store, close_all_stores, open_store
from core.db.recovery import DataStoreRecovered, quick_check
from core.db.sessions import DataStoreError, sessions_dir
from core.files import atomic_write_bytes, sha256_file
from core.jobs import store as job_store
from core.rundir import RunDir
from tests.fixtures.tracking import persist

ROOT = Path(__file__).resolve().parents[2]
CORRUPT_NAME = re.compile(r"^vision_platform\.db\.corrupt-\d{8}-\d{6}$")

# A process that opens the store, writes, checkpoints the WAL into the file, then waits to be killed:
# its open marker stays behind, as after a crash or a power cut.
_HOLDER = """
import sys
from core.db.engine import open_store
from core.db.models import TrainingMetric
store = open_store()
with store.write() as session:
    session.add_all([TrainingMetric(job_id=int(sys.argv[1]), epoch=i, loss=0.5, extra_metrics='{"a": %d}' % i)
                     for i in range(int(sys.argv[2]))])
import sqlite3
sqlite3.connect(store.db_file).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def data_dir(vp_home: Path) -> Iterator[Path]:
    yield vp_home
    close_all_stores()


def _db(home: Path) -> Path:
    return home / "vision_platform.db"


def _rows(db_file: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_file)) as connection:
        return list(connection.execute(sql))


def make_run(store: Store, project: str = "Default", kinds: tuple[str, ...] = ("best", "last")) -> tuple[int, dict[str, str]]:
    """A job as the runner leaves it: its row, args.yaml and job.json, checkpoints and their rows."""
    config = config_from_dict({"dataset": "/data/cats", "epochs": 3, "project": project, "model": "resnet18"})
    job_id = job_store.create_job(store, config, status="completed")
    job = job_store.get_job(store, job_id)
    run = RunDir.of(job.output_dir, job_id)
    run.args.write_text(job.config_yaml or "", encoding="utf-8")
    run.write_job_info({"job_id": job_id, "project_id": job.project_id, "resume": False})
    digests: dict[str, str] = {}
    events = []
    for epoch, kind in enumerate(kinds, start=1):
        path = run.checkpoint(kind)  # type: ignore[arg-type]
        atomic_write_bytes(path, os.urandom(2048) + kind.encode())
        digests[kind] = sha256_file(path)
        events.append({"v": 1, "type": "checkpoint", "t": 0, "kind": kind, "path": str(path), "epoch": epoch,
                       "sha256": digests[kind], "size": path.stat().st_size})
    persist(store, job_id, events)
    return job_id, digests


def _start_holder(home: Path, job_id: int, metrics: int) -> subprocess.Popen[str]:
    env = {**os.environ, "VP_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(job_id), str(metrics)], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(30)


def _cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VP_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "vision_platform", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _assert_rebuilt(home: Path, jobs: dict[int, dict[str, str]]) -> None:
    db_file = _db(home)
    assert quick_check(db_file) is None
    rebuilt = _rows(db_file, "select id, status, model_name, error_message from training_jobs order by id")
    assert [(row[0], row[1], row[2]) for row in rebuilt] == [(job_id, "interrupted", "resnet18") for job_id in sorted(jobs)]
    assert all("Rebuilt from its run folder" in str(row[3]) for row in rebuilt)
    rows = _rows(db_file, "select job_id, kind, sha256, path from checkpoints")
    assert {(row[0], row[1]) for row in rows} == {(job_id, kind) for job_id, digests in jobs.items() for kind in digests}
    for job_id, kind, sha256, path in rows:
        assert sha256_file(Path(path)) == jobs[job_id][kind]  # the job's own files, found again
        # Not vouched for: whether this app wrote a pickle was recorded only in the lost database.
        assert sha256 is None if str(path).endswith(".pt") else sha256 == jobs[job_id][kind]


@pytest.mark.reliability(row=7, fault="database file overwritten with garbage; the CLI starts")
def test_garbage_database_cli_says_so_moves_it_aside_and_rebuilds(data_dir: Path) -> None:
    """matrix row 7: a garbage file at start: the CLI prints `error: …` (no traceback), exits 2, the file is
    moved aside with a timestamp and jobs and checkpoints are rebuilt from the run folders."""
    store = open_store()
    first, first_digests = make_run(store)
    second, second_digests = make_run(store, project="Birds", kinds=("last",))
    broken = RunDir.for_job(job_store.create_job(store, config_from_dict({"dataset": "/d"})))
    broken.root.mkdir(parents=True, exist_ok=True)  # a run folder the runner never filled: no args.yaml
    close_all_stores()
    garbage = b"this is not an SQLite database " * 200
    _db(data_dir).write_bytes(garbage)

    result = _cli(data_dir, "jobs")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: The database"), result.stderr
    assert "Traceback" not in result.stderr
    moved = [p for p in data_dir.iterdir() if CORRUPT_NAME.match(p.name)]
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    assert str(moved[0]) in result.stderr
    assert "2 job(s) and 3 checkpoint(s)" in result.stderr
    assert f"{broken.root.name}: args.yaml is missing" in result.stderr
    _assert_rebuilt(data_dir, {first: first_digests, second: second_digests})
    projects = {row[0] for row in _rows(_db(data_dir), "select name from projects")}
    assert projects == {"Default", "Birds"}

    again = _cli(data_dir, "jobs")
    assert again.returncode == 0, again.stderr
    assert "resnet18" in again.stdout


@pytest.mark.reliability(row=7, fault="database truncated after the process writing it was killed")
def test_truncated_database_after_a_kill_is_moved_aside_with_its_wal(data_dir: Path) -> None:
    """matrix row 7: a real store truncated to half after a killed writer: moved aside (with -wal/-shm)
    and rebuilt; the report says where the damaged file went."""
    store = open_store()
    job_id, digests = make_run(store)
    close_all_stores()
    holder = _start_holder(data_dir, job_id, metrics=4000)
    _kill(holder)
    db_file = _db(data_dir)
    size = db_file.stat().st_size
    with open(db_file, "r+b") as handle:
        handle.truncate(size // 2)
    side_files = [suffix for suffix in ("-wal", "-shm") if Path(f"{db_file}{suffix}").exists()]

    with pytest.raises(DataStoreRecovered) as raised:
        open_store()
    report = raised.value.report
    assert CORRUPT_NAME.match(report.moved_to.name)
    assert report.moved_to.stat().st_size == size // 2
    for suffix in side_files:
        assert Path(f"{report.moved_to}{suffix}").exists()
    assert str(report.moved_to) in str(raised.value)
    assert report.jobs == [job_id]
    _assert_rebuilt(data_dir, {job_id: digests})
    assert open_store().recovery is report  # the rebuilt store, kept for the rest of the process
    assert [p.name for p in sessions_dir(db_file).glob("*.json")] == [f"{os.getpid()}-{int(open_store()._marker.me.create_time * 1000)}.json"]  # type: ignore[union-attr]


def _scribble_on_last_page(db_file: Path) -> None:
    """Overwrite the b-tree header of the file's last page (a training_metrics page) with garbage."""
    header = db_file.read_bytes()[:100]
    page_size = int.from_bytes(header[16:18], "big")
    pages = db_file.stat().st_size // page_size
    with open(db_file, "r+b") as handle:
        handle.seek((pages - 1) * page_size)
        handle.write(b"\xfe" * 64)


@pytest.mark.reliability(row=7, fault="power cut: a page damaged, the writer gone without closing the store")
def test_quick_check_runs_after_an_unclean_shutdown_only(data_dir: Path) -> None:
    """matrix row 7: damage that opening does not notice (a metrics page) is found by `PRAGMA quick_check`,
    which runs because a killed process left its open marker; after a clean close it is not run."""
    store = open_store()
    job_id, digests = make_run(store)
    close_all_stores()
    holder = _start_holder(data_dir, job_id, metrics=4000)
    holder.communicate("\n", timeout=60)  # a clean exit: the marker is removed
    db_file = _db(data_dir)
    _scribble_on_last_page(db_file)
    assert quick_check(db_file) is not None
    clean = open_store()
    assert clean.recovery is None  # clean shutdown: no check, the store opens as before
    close_all_stores()

    holder = _start_holder(data_dir, job_id, metrics=0)  # opens the (still damaged) store, then dies
    _kill(holder)
    with pytest.raises(DataStoreRecovered) as raised:
        open_store()
    report = raised.value.report
    assert report.problem == quick_check(report.moved_to)  # only the dead process's marker made the difference
    _assert_rebuilt(data_dir, {job_id: digests})


@pytest.mark.reliability(row=32, fault="damaged database while another process still has it open")
def test_damaged_database_in_use_by_a_live_process_is_not_moved(data_dir: Path) -> None:
    """matrix row 7 and 32: a damaged file that a live process holds open is left in place; the error
    names that process."""
    store = open_store()
    job_id, _ = make_run(store)
    close_all_stores()
    holder = _start_holder(data_dir, job_id, metrics=1)
    try:
        _db(data_dir).write_bytes(b"garbage " * 1000)
        with pytest.raises(DataStoreError) as raised:
            open_store()
        assert not isinstance(raised.value, DataStoreRecovered)
        assert f"process {holder.pid} (" in str(raised.value)
        assert _db(data_dir).read_bytes() == b"garbage " * 1000
        assert not [p for p in data_dir.iterdir() if CORRUPT_NAME.match(p.name)]
    finally:
        _kill(holder)
