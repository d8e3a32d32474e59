"""``vision-platform train job.yaml`` with an ``r2://`` dataset: downloaded before the job is queued (a
folder prefix or a .zip) into the download cache the Datasets page uses, reused when unchanged; a
cancelled download leaves nothing in the cache. Against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.db.engine import open_store
from core.jobs import store as job_store
from core.services import ServiceError
from core.services import datasets as datasets_service
from core.settings import Settings
from core.storage import client as storage_client
from core.storage.client import objects_dir
from tests.cli.conftest import CliResult
from tests.e2e.test_timm_training import run_cli as run_cli_process
from tests.fixtures.s3server import SeaweedFS
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.s3
PREFIX = "datasets/colours/"


@pytest.fixture
def r2_env(s3: SeaweedFS, vp_home: Path, monkeypatch: pytest.MonkeyPatch,
           run_cli: Callable[..., CliResult]) -> SeaweedFS:
    """Keys and endpoint in the environment, downloads allowed in Settings (offline mode off)."""
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("R2_BUCKET", s3.bucket)
    assert run_cli("settings", "set", "offline_mode", "false").code == 0
    return s3


def upload_folder(s3: SeaweedFS, folder: Path, prefix: str) -> dict[str, bytes]:
    """The folder's files as objects under ``prefix``; every other one without sha256 metadata (as a
    tool other than this app uploads them: the MD5 ETag checks those)."""
    client, files = s3.client(), {}
    for number, file in enumerate(sorted(f for f in folder.rglob("*") if f.is_file())):
        data = file.read_bytes()
        metadata = {"sha256": hashlib.sha256(data).hexdigest()} if number % 2 else {}
        client.put_object(Bucket=s3.bucket, Key=prefix + file.relative_to(folder).as_posix(), Body=data,
                          Metadata=metadata)
        files[file.relative_to(folder).as_posix()] = data
    return files


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {f.relative_to(folder).as_posix(): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def cache_entries() -> list[str]:
    return sorted(p.name for p in datasets_service.download_dir().iterdir())


class GetCounter:
    """Counts GetObject requests of the clients the service makes (a botocore event hook)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gets = 0
        original = storage_client.client_from_settings

        def counting(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            client.meta.events.register("before-send.s3.GetObject", self._count)
            return client

        monkeypatch.setattr(storage_client, "client_from_settings", counting)

    def _count(self, **_kwargs: Any) -> None:
        self.gets += 1


def test_folder_prefix_downloads_once_then_the_cache_is_reused(r2_env: SeaweedFS, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_imagefolder(tmp_path / "colours", per_class=4, size=16)
    files = upload_folder(r2_env, source, PREFIX)
    counter = GetCounter(monkeypatch)
    settings = Settings.load(open_store())
    url = f"r2://{r2_env.bucket}/{PREFIX.rstrip('/')}"  # with or without the trailing slash

    local, downloaded = datasets_service.fetch_r2_dataset(url, settings)
    assert downloaded and counter.gets == len(files) and folder_contents(local) == files
    assert local.parent == datasets_service.download_dir()
    again, downloaded = datasets_service.fetch_r2_dataset(url + "/", settings)
    assert (again, downloaded, counter.gets) == (local, False, len(files))  # no transfer at all

    # The Datasets page registers the same URL from the same cache entry.
    opened = datasets_service.register_dataset(open_store(), 1, url, settings=settings)
    assert opened.info is not None and Path(opened.info.path) == local and len(opened.index.images) == 12

    # A changed object is a changed dataset: downloaded again, into a new cache entry.
    r2_env.client().put_object(Bucket=r2_env.bucket, Key=PREFIX + "red/extra.png", Body=files["red/red_000.png"])
    changed, downloaded = datasets_service.fetch_r2_dataset(url, settings)
    assert downloaded and changed != local and "red/extra.png" in folder_contents(changed)


def test_zip_dataset_and_a_cancelled_download_leave_nothing_partial(r2_env: SeaweedFS, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("colours/red/a.png", os.urandom(3 * 1024 * 1024))  # several chunks
        archive.writestr("colours/blue/b.png", b"b")
    r2_env.client().put_object(Bucket=r2_env.bucket, Key="datasets/colours.zip", Body=buffer.getvalue())
    settings = Settings.load(open_store())
    url = f"r2://{r2_env.bucket}/datasets/colours.zip"

    def interrupt(received: int, total: int) -> None:
        raise KeyboardInterrupt  # what Ctrl+C raises in the CLI's main thread, between chunks

    with pytest.raises(KeyboardInterrupt):
        datasets_service.fetch_r2_dataset(url, settings, progress=interrupt)
    assert cache_entries() == [] and list(objects_dir().iterdir()) == []

    local, downloaded = datasets_service.fetch_r2_dataset(url, settings)
    assert downloaded and (local / "colours" / "blue" / "b.png").read_bytes() == b"b"
    assert list(objects_dir().iterdir()) == []  # the extracted folder is the cache entry, not the zip too
    assert datasets_service.fetch_r2_dataset(url, settings) == (local, False)

    with pytest.raises(ServiceError, match="no objects under this prefix"):
        datasets_service.fetch_r2_dataset(f"r2://{r2_env.bucket}/datasets/nothing", settings)


def test_train_refuses_clearly_when_offline_mode_is_on(r2_env: SeaweedFS, tmp_path: Path,
                                                      run_cli: Callable[..., CliResult]) -> None:
    assert run_cli("settings", "set", "offline_mode", "true").code == 0
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": f"r2://{r2_env.bucket}/{PREFIX}", "model": "test_resnet"}))
    result = run_cli("train", str(job))
    assert result.code == 2 and "Offline mode is on" in result.err
    assert job_store.list_jobs(open_store()) == []


def test_train_offline_uses_the_cached_copy_and_says_so(r2_env: SeaweedFS, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       run_cli: Callable[..., CliResult]) -> None:
    """Downloaded once, then offline: ``train`` uses the cached copy without a transfer and warns on
    stderr. Stopped after the dataset step: no worker, no training."""
    upload_folder(r2_env, make_imagefolder(tmp_path / "colours", per_class=2, size=16), PREFIX)
    url = f"r2://{r2_env.bucket}/{PREFIX}"
    local, _ = datasets_service.fetch_r2_dataset(url, Settings.load(open_store()))
    assert run_cli("settings", "set", "offline_mode", "true").code == 0
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": url, "model": "test_resnet"}))
    judged: list[Any] = []

    def stop_after_the_dataset(config: Any, **_kwargs: Any) -> list[Any]:
        from core.jobs.preflight import Problem

        judged.append(config)
        return [Problem("error", "stopped by the test")]

    import core.cli
    import core.jobs.preflight

    monkeypatch.setattr(core.cli.StandbyWorker, "start", classmethod(lambda _cls, *_args: None))
    monkeypatch.setattr(core.jobs.preflight, "preflight", stop_after_the_dataset)
    assert run_cli("settings", "set", "tracking_enabled", "false").code == 0
    result = run_cli("train", str(job))
    assert result.code == 2 and f"dataset {url}: cached in {local}" in result.out
    assert f"warning: Offline mode is on: using the copy of {url} cached in {local}" in result.err
    assert [config.dataset for config in judged] == [str(local)]
    assert job_store.list_jobs(open_store()) == []


def test_dataset_register_offline_uses_the_cached_copy_and_says_so(r2_env: SeaweedFS, tmp_path: Path,
                                                                   run_cli: Callable[..., CliResult]) -> None:
    """The Datasets page's twin: ``dataset register r2://…`` offline registers the complete cached copy
    and warns on stderr, as the page's banner does."""
    upload_folder(r2_env, make_imagefolder(tmp_path / "colours", per_class=2, size=16), PREFIX)
    url = f"r2://{r2_env.bucket}/{PREFIX}"
    local, _ = datasets_service.fetch_r2_dataset(url, Settings.load(open_store()))
    assert run_cli("settings", "set", "offline_mode", "true").code == 0
    result = run_cli("dataset", "register", url)
    assert result.code == 0, result.err
    assert f"warning: Offline mode is on: using the copy of {url} cached in {local}" in result.err
    assert [info.path for info in datasets_service.list_datasets(open_store())] == [str(local)]


def test_ctrl_c_during_the_download_queues_nothing_and_keeps_nothing(
        r2_env: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., CliResult]) -> None:
    upload_folder(r2_env, make_imagefolder(tmp_path / "colours", per_class=4, size=16), PREFIX)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": f"r2://{r2_env.bucket}/{PREFIX}", "model": "test_resnet"}))

    def ctrl_c(self: Any, received: int, total: int) -> None:
        raise KeyboardInterrupt

    import core.cli

    monkeypatch.setattr(core.cli._DownloadBar, "__call__", ctrl_c)
    result = run_cli("train", str(job))
    assert result.code == 130 and "download cancelled" in result.err
    assert cache_entries() == [] and job_store.list_jobs(open_store()) == []


@pytest.mark.slow
def test_train_job_yaml_with_an_r2_dataset_trains_on_the_local_copy(r2_env: SeaweedFS, vp_home: Path,
                                                                    tmp_path: Path) -> None:
    files = upload_folder(r2_env, make_imagefolder(tmp_path / "colours", per_class=8, size=32), PREFIX)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": f"r2://{r2_env.bucket}/{PREFIX}", "model": "test_resnet", "epochs": 1,
                                   "batch_size": 8, "image_size": 32, "seed": 1}))
    first = run_cli_process("train", str(job), home=vp_home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "job 1 completed" in first.stdout
    line = next(text for text in first.stdout.splitlines() if text.startswith("dataset r2://"))
    local = Path(line.split(" downloaded to ", 1)[1])
    assert local.parent == vp_home / "cache" / "downloads" and folder_contents(local) == files

    store = open_store()
    trained = job_store.get_job(store, 1)
    args = yaml.safe_load((Path(trained.output_dir or "") / "args.yaml").read_text())
    assert args["dataset"] == str(local) and trained.num_classes == 3
    assert {c.kind for c in job_store.checkpoints(store, 1)} == {"best", "last"}

    second = run_cli_process("train", str(job), home=vp_home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"dataset r2://{r2_env.bucket}/{PREFIX}: cached in {local}" in second.stdout
    assert "job 2 completed" in second.stdout
