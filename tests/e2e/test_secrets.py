"""Secrets stay with the process that uses them, and nothing the app writes holds them in clear.

A real tiny training run through the ``vision-platform`` executable, with R2/AWS keys in its
environment and an MLflow tracking URI with ``user:password@`` in the settings, logging to a real
``mlflow server`` on 127.0.0.1 whose store lives in the data dir. Then every file under the data dir
(the SQLite files, run dirs with worker.log / args.yaml / job.json, the MLflow store and artifacts)
and every line the CLI printed is searched, as raw bytes, for the secret strings.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.tracking import mlflow_db_template  # noqa: F401  (a fixture)
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECRET = f"sk-LEAKCHECK-{uuid.uuid4().hex}"
PASSWORD = f"pw-LEAKCHECK-{uuid.uuid4().hex}"
USER = "vpuser"
SECRET_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "R2_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD",
                "MLFLOW_TRACKING_USERNAME")
TRACKING_SECRETS_FILE = "tracking_credentials.json"  # the 0600 fallback store: where the password belongs


def test_child_env_drops_secrets_unless_a_child_asks(vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 15: workers, helpers and `mlflow ui` get no credentials; a child that needs one names it."""
    from core.launch import child_env

    for name in SECRET_NAMES:
        monkeypatch.setenv(name, SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{USER}:{PASSWORD}@127.0.0.1:5000")
    env = child_env()
    assert not set(SECRET_NAMES) & set(env)
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert not any(SECRET in value or PASSWORD in value for value in env.values())
    assert child_env(keep_secrets=("AWS_SECRET_ACCESS_KEY",))["AWS_SECRET_ACCESS_KEY"] == SECRET


def test_a_tracking_password_is_kept_out_of_settings_and_given_to_mlflow_only(
        vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 15: the settings row holds `user:***@`; the tracker connects without credentials in
    the URI and hands the login to MLflow's own variables of this process."""
    from core.db.engine import open_store
    from core.settings import Settings
    from core.tracking import MlflowTracker

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    store = open_store()
    Settings(mlflow_tracking_uri=f"https://{USER}:{PASSWORD}@mlflow.example.com/").save(store)
    with sqlite3.connect(vp_home / "vision_platform.db") as db:
        stored = db.execute("select value from app_settings where key = 'mlflow_tracking_uri'").fetchone()[0]
    assert stored == f'"https://{USER}:***@mlflow.example.com/"'
    loaded = Settings.load(store)
    assert loaded.mlflow_tracking_uri == f"https://{USER}:***@mlflow.example.com/"
    tracker = MlflowTracker(settings=loaded)
    assert tracker.uri == loaded.mlflow_tracking_uri and tracker._connect_uri == "https://mlflow.example.com/"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == USER and os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD


# -------------------------------------------------------------------------------- the real run
def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VP_FAULT"}
    env.update(VP_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    return env


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], capture_output=True, text=True,
                          timeout=300, env=_env(home), cwd=str(ROOT))


@pytest.fixture
def mlflow_server(vp_home: Path, mlflow_db_template: Path, tmp_path: Path) -> Iterator[FaultProxy]:  # noqa: F811
    """A real `mlflow server` on 127.0.0.1 (store in the data dir), behind a proxy that records headers."""
    import shutil

    from core.launch import child_env
    from core.tracking.cli import free_port, wait_until_listening

    shutil.copy(mlflow_db_template, vp_home / "mlflow.db")
    port = free_port()
    artifacts = vp_home / "mlflow" / "artifacts"
    artifacts.mkdir(parents=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{vp_home / 'mlflow.db'}",
               "--default-artifact-root", artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    env = {**child_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(tmp_path / "mlflow-server.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        assert wait_until_listening(port, server, timeout=300), (tmp_path / "mlflow-server.log").read_text()
        with FaultProxy(port, mode="503", count=0) as proxy:  # no faults: records each connection's first request
            yield proxy
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _worker_of(train: subprocess.Popen[str]) -> psutil.Process:
    workers = [p for p in psutil.Process(train.pid).children(recursive=True) if "worker" in p.cmdline()]
    assert len(workers) == 1, [p.cmdline() for p in workers]
    return workers[0]


def _files_with_secrets(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [s for s in (SECRET, PASSWORD) if s.encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@pytest.mark.slow
def test_nothing_leaks_from_a_real_run(vp_home: Path, tmp_path: Path, mlflow_server: FaultProxy) -> None:
    """matrix row 15: after a real tiny run with keys in the environment and a tracking password in the
    settings, no file of the data dir (DB, run dir, logs, MLflow store) and no CLI output holds a
    secret; the worker's environment has none; MLflow got the login, sent beside the URI."""
    data = make_imagefolder(tmp_path / "colours", classes=("red", "green"), per_class=6, size=32)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 4,
                                   "image_size": 32, "seed": 1, "name": "leak check"}))
    outputs = [_cli(vp_home, "settings", "set", "sync_enabled", "false"),
               _cli(vp_home, "settings", "set", "mlflow_tracking_uri",
                    f"http://{USER}:{PASSWORD}@127.0.0.1:{mlflow_server.port}")]
    assert [o.returncode for o in outputs] == [0, 0], [o.stderr for o in outputs]
    assert f"{USER}:***@127.0.0.1" in outputs[1].stdout

    holds = Holds(tmp_path / "holds", 1)
    train = subprocess.Popen([sys.executable, "-m", "vision_platform", "train", str(job)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                             env=_env(vp_home, VP_FAULT=holds.fault_spec, AWS_ACCESS_KEY_ID=SECRET,
                                      AWS_SECRET_ACCESS_KEY=SECRET, R2_SECRET_ACCESS_KEY=SECRET))
    try:
        wait_until(lambda: holds.is_held(1), "the worker to be held at its first batch", timeout=300)
        worker_env = _worker_of(train).environ()
        holds.release_all()
        out, err = train.communicate(timeout=600)
    finally:
        if train.poll() is None:
            holds.release_all()
            train.kill()
            train.communicate()
    assert train.returncode == 0, err
    assert not set(SECRET_NAMES) & set(worker_env)
    assert not any(SECRET in v or PASSWORD in v for v in worker_env.values())

    with sqlite3.connect(vp_home / "mlflow.db") as db:
        assert db.execute("select status from runs").fetchall() == [("FINISHED",)]
        assert db.execute("select count(*) from metrics").fetchone()[0] > 0
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert any(r.headers.get("authorization") == f"Basic {login}" for r in mlflow_server.requests)

    for printed in [out, err, *(o.stdout + o.stderr for o in outputs)]:
        assert SECRET not in printed and PASSWORD not in printed
    assert (vp_home / "runs").is_dir() and any((vp_home / "runs").rglob("worker.log"))
    assert _files_with_secrets(vp_home) == {TRACKING_SECRETS_FILE: [PASSWORD]}
    assert stat.S_IMODE((vp_home / TRACKING_SECRETS_FILE).stat().st_mode) == 0o600
