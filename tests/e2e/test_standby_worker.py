"""A standby worker (``core.jobs.spawn``): started before its job exists, handed its run directory,
it trains like a plain worker; nothing it wrote while waiting is lost; one that is gone is replaced
by a plain worker; one that is never handed over ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import config_from_dict
from core.db.engine import Store
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from core.jobs.spawn import STANDBY_FLAG, StandbyWorker, is_worker_of, worker_command
from core.rundir import RunDir
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow

CONFIG = {"model": "test_resnet", "epochs": 1, "batch_size": 8, "image_size": 32, "learning_rate": 0.005, "seed": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours") / "data"
    make_imagefolder(root, classes=("red", "green"), per_class=12, size=32)
    return root


class _Hellos:
    """The pids of the workers that said hello (the ones that trained the job)."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def __call__(self, job_id: int, event: dict[str, Any]) -> None:
        if event["type"] == "hello":
            self.pids.append(event["pid"])


def _job(store: Store, dataset: Path, tmp_path: Path) -> tuple[int, Path]:
    config = {"dataset": str(dataset), **CONFIG}
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(config))
    return job_store.create_job(store, config_from_dict(config)), job_file


def test_a_standby_worker_trains_the_job_it_is_handed(store: Store, dataset: Path, tmp_path: Path) -> None:
    job_id, job_file = _job(store, dataset, tmp_path)
    standby = StandbyWorker.start(job_file)
    assert standby is not None
    hellos = _Hellos()
    try:
        with open(standby.early_log, "a", encoding="utf-8") as early:  # as an import warning would be
            early.write("written while waiting for a job\n")
        assert JobRunner(store, on_event=hellos).run(job_id, standby=standby) == "completed"
    finally:
        standby.discard()
    job = job_store.get_job(store, job_id)
    assert hellos.pids == [standby.process.pid]
    assert job_store.latest_checkpoint(store, job_id, "best") is not None
    log = RunDir.of(job.output_dir, job_id).log.read_text(encoding="utf-8")
    assert log.index("=== worker start") < log.index("written while waiting for a job") < log.index("saved best.pt")
    assert not standby.early_log.exists()


def test_a_standby_that_is_gone_is_replaced_by_a_plain_worker(store: Store, dataset: Path, tmp_path: Path) -> None:
    job_id, job_file = _job(store, dataset, tmp_path)
    standby = StandbyWorker.start(job_file)
    assert standby is not None
    hellos = _Hellos()
    standby.process.kill()
    standby.process.wait(60)
    with open(standby.early_log, "a", encoding="utf-8") as early:
        early.write("last words of the standby\n")
    try:
        assert JobRunner(store, on_event=hellos).run(job_id, standby=standby) == "completed"
    finally:
        standby.discard()
    job = job_store.get_job(store, job_id)
    assert len(hellos.pids) == 1 and hellos.pids != [standby.process.pid]
    assert "last words of the standby" in RunDir.of(job.output_dir, job_id).log.read_text(encoding="utf-8")


def test_a_standby_never_handed_over_ends(tmp_path: Path) -> None:
    standby = StandbyWorker.start(tmp_path / "no-such-config.yaml")  # a bad hint: it waits all the same
    assert standby is not None
    standby.discard()
    assert standby.process.poll() is not None
    assert not standby.early_log.exists()


def test_which_process_is_a_run_dir_s_worker(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "job_1"
    run_dir.mkdir(parents=True)
    assert is_worker_of(worker_command(run_dir, resume=False), "/", str(run_dir))
    assert not is_worker_of(worker_command(tmp_path / "runs" / "job_2", resume=False), str(run_dir), str(run_dir))
    standby = ["python", "-m", "vision_platform", "worker", STANDBY_FLAG, "--early-log", "x.log"]
    assert is_worker_of(standby, str(run_dir), str(run_dir))  # handed over: it works in its run dir
    assert not is_worker_of(standby, str(tmp_path), str(run_dir))
    assert not is_worker_of(["python", "-c", "pass", str(run_dir)], str(run_dir), str(run_dir))


def test_a_standby_answers_what_the_models_helper_would(dataset: Path, tmp_path: Path) -> None:
    from core.frameworks import FrameworkInfo, listed_framework

    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({"dataset": str(dataset), **CONFIG}))
    standby = StandbyWorker.start(job_file)
    assert standby is not None
    try:
        payload = standby.describe("timm", "*", "test_resnet")
        assert standby.describe("no-such-framework", "*", None) is None  # the caller asks the helper
    finally:
        standby.discard()
    assert payload is not None
    assert FrameworkInfo.from_payload(payload) == listed_framework("timm", "test_resnet")
