"""Shared test set-up: every test gets its own data dir (VP_HOME), so no test touches the user's."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The network guard (tests/netguard): this process and every Python subprocess a test starts (workers,
# the CLI, `mlflow ui`: they inherit PYTHONPATH and the log's name) refuse and log any connection or
# name lookup that leaves the machine; `_no_network_leaves_the_machine` fails the test that caused one.
NETGUARD = ROOT / "tests" / "netguard"
NETGUARD_LOG = Path(tempfile.mkdtemp(prefix="vp-netguard-")) / "attempts.log"
NETGUARD_LOG.touch()
os.environ["VP_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(NETGUARD), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
sys.path.insert(0, str(NETGUARD))
import vp_netguard  # noqa: E402

vp_netguard.install()

# One S3 server (SeaweedFS on 127.0.0.1) per test session, for every layer that needs it.
from tests.fixtures.s3server import s3, seaweedfs  # noqa: E402, F401

# Which test covers which row of the reliability matrix; with VP_RELIABILITY_REPORT=PATH the outcomes
# are written there for docs/reliability.md (tests/reliability/plugin.py, `make test`).
pytest_plugins = ["tests.reliability.plugin"]


def network_attempts_since(offset: int) -> str:
    """What the network guard logged after ``offset`` bytes of its log (empty when nothing left)."""
    with open(NETGUARD_LOG, encoding="utf-8") as handle:
        handle.seek(offset)
        return handle.read()


@pytest.fixture(autouse=True)
def _no_network_leaves_the_machine() -> Iterator[None]:
    """Fail a test if it, or a process it started, tried to reach or resolve a non-loopback host."""
    offset = NETGUARD_LOG.stat().st_size
    yield
    attempts = network_attempts_since(offset)
    if attempts:
        pytest.fail("tried to leave the machine (tests/netguard):\n" + attempts[:4000], pytrace=False)


@pytest.fixture(autouse=True)
def _no_os_keyring() -> Iterator[None]:
    """Never read or write the developer's real keyring from tests (a failing backend instead)."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def vp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "vp_home"
    home.mkdir()
    monkeypatch.setenv("VP_HOME", str(home))
    # Tests never talk to a tracking server or bucket unless they ask for one.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AWS_S3_ENDPOINT_URL", raising=False)
    yield home
    from core.db.engine import close_all_stores

    close_all_stores()


@pytest.fixture
def store(vp_home: Path):  # type: ignore[no-untyped-def]
    from core.db.engine import open_store

    return open_store()
