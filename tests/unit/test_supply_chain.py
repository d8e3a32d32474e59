"""The hash lock is what CI installs (matrix row 33: supply-chain drift).

``make setup`` installs ``requirements.lock`` with ``--require-hashes``; these tests keep that lock
honest: every line carries a sha256, its versions are ``constraints.txt``'s, the environment the
tests run in holds exactly the locked releases, and the torch/torchvision hashes are those of the
wheels on this machine's local index (pip takes them from disk, so a lock with PyPI's hashes would
refuse them). A test that fails here says: run ``make lock`` (after checking why it drifted).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
BUILD_BACKEND = {"setuptools", "wheel"}  # locked for the no-isolation editable install
LOCAL_WHEELS = ("torch", "torchvision")
_ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n\s+--hash=sha256:([0-9a-f]{64})$", re.M)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(path: Path = LOCK) -> dict[str, tuple[str, str]]:
    return {_norm(name): (version, sha) for name, version, sha in _ENTRY.findall(path.read_text(encoding="utf-8"))}


def _lock_installed() -> Path:
    """The lock set-up installed here: scripts/lock_check.py's choice (.venv/lock-in-use; on Windows or
    macOS a lock made for that computer), else requirements.lock (`make setup`)."""
    in_use = ROOT / ".venv" / "lock-in-use"
    return ROOT / in_use.read_text(encoding="utf-8").strip() if in_use.is_file() else LOCK


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.strip()
    return pins


@pytest.mark.reliability(row=33, fault="a requirement line without a sha256 or a malformed lock entry")
def test_every_locked_line_is_pinned_with_a_sha256() -> None:
    entries = [line for line in LOCK.read_text(encoding="utf-8").splitlines() if line and not line.startswith(("#", " "))]
    assert len(entries) == len(_lock()) > 100, "a lock line without ==version and --hash=sha256"
    setup = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes" in setup and "-r $(LOCK)" in setup and "--only-binary :all:" in setup


@pytest.mark.reliability(row=33, fault="lock and constraints.txt disagree on a version")
def test_lock_versions_are_the_constraints() -> None:
    pins, lock = _constraints(), _lock()
    unpinned = sorted(set(lock) - set(pins) - BUILD_BACKEND)
    differ = sorted(f"{n}: lock {lock[n][0]} != constraints {pins[n]}" for n in set(lock) & set(pins)
                    if lock[n][0] != pins[n])
    assert unpinned == [] and differ == [], f"run `make lock`: not in constraints.txt {unpinned}; {differ}"


@pytest.mark.reliability(row=33, fault="the test environment holds another release than the lock")
def test_the_environment_has_the_locked_releases() -> None:
    """Every locked distribution is installed at its locked version (tools a developer added on top,
    e.g. a packager, are not the lock's business: CI's venv is built from the lock alone)."""
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = sorted(f"{name}: installed {installed.get(name, 'nothing')}, locked {version}"
                   for name, (version, _sha) in _lock(_lock_installed()).items()
                   if name not in BUILD_BACKEND and installed.get(name) != version)
    assert drift == [], f"the environment is not the lock (run `make lock` or `make setup`): {drift}"


def _local_index_dirs() -> list[Path]:
    """The file:// indexes and find-links folders pip is configured with (``pip config list``)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         timeout=60).stdout
    urls = re.findall(r"file://(/\S+?)['\s]", out) + re.findall(r"find-links='(/[^']+)'", out)
    return [Path(u).parent if u.rstrip("/").endswith("simple") else Path(u) for u in urls]


def _local_wheel(name: str, version: str) -> Path | None:
    prefix = f"{name}-{version}-"
    for folder in _local_index_dirs():
        for candidate in [*folder.glob(prefix + "*.whl"), *folder.glob("files/" + prefix + "*.whl")]:
            return candidate
    return None


@pytest.mark.reliability(row=33, fault="torch/torchvision lock hashes vs the local disk wheels pip installs")
@pytest.mark.parametrize("name", LOCAL_WHEELS)
def test_local_wheel_hashes_are_locked(name: str) -> None:
    version, locked = _lock()[name]
    wheel = _local_wheel(name, version)
    if wheel is None:
        pytest.skip(f"no local index with {name} {version} on this machine")
    digest = hashlib.sha256()
    with open(wheel, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == locked, f"{wheel}: sha256 differs from requirements.lock"
