"""Choose the hash lock that set-up installs on this computer, making one for it when needed.

``requirements.lock`` pins one wheel file per distribution, with its sha256, for the platform
``tools/lock_requirements.py`` ran on (its header names it: ``# Platform: CPython 3.11.9 on linux
x86_64.``). Wheels are platform files: on Windows, macOS or another Python, pip would stop on the
first package with a hash or "no matching distribution" error, and a user who double-clicked
``scripts\\run.bat`` would get no app. So scripts/setup.sh and scripts\\setup.bat run this first:

- the configured lock (``LOCK``, default ``requirements.lock``) made for this platform, or one without
  a header (made by hand: pip's own check decides), is used as it is;
- otherwise ``requirements-<sys.platform>-<machine>-py<MAJ><MIN>.lock`` beside it (lower case, e.g.
  ``requirements-win32-amd64-py311.lock``), made first with ``tools/lock_requirements.py --output``
  when it is missing or pins other versions than ``constraints.txt`` (the constraints moved on since).

The chosen lock's path goes to ``.venv/lock-in-use`` (one line), which the set-up scripts install with
``--require-hashes``, wheels only, as for the configured lock.

Trust: pip resolves the same versions from ``constraints.txt`` (a distribution only this platform needs,
and that file does not pin, gets the newest release that fits) and the lock records the sha256 of the
very files it chose. That first lock trusts the registry on first use; every later install on this
computer is checked against it, so a file whose bytes change afterwards is refused. Commit it (it is
not git-ignored) to make those hashes the reviewed ones for every computer of this platform.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_IN_USE = Path(".venv") / "lock-in-use"  # relative to the repository root, where the scripts run
HEADER = re.compile(r"^# Platform: CPython (\d+\.\d+)\.\S* on (\S+) (\S+?)\.?$", re.M)
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)", re.M)
NO_WHEEL = re.compile(r"No matching distribution found for (\S+)")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class LockError(Exception):
    """No usable lock for this computer: the message says which file or package, and why."""


def this_platform() -> tuple[str, str, str]:
    """(Python major.minor, sys.platform, machine) as a lock header names them."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}", sys.platform, platform.machine()


def describe(python: str, system: str, machine: str) -> str:
    return f"CPython {python} on {system} {machine}"


def made_for_here(lock_text: str) -> bool:
    found = HEADER.search(lock_text)
    return found is None or found.groups() == this_platform()


def platform_lock(configured: Path) -> Path:
    python, system, machine = this_platform()
    return configured.with_name(f"requirements-{system}-{machine}-py{python.replace('.', '')}.lock".lower())


def _pins(text: str) -> dict[str, str]:
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN.findall(text)}


def stale_pins(lock_text: str, constraints_text: str) -> list[str]:
    """The lock's versions that constraints.txt pins differently (``name lock != constraints``)."""
    wanted = _pins(constraints_text)
    return sorted(f"{name} {version} != {wanted[name]}" for name, version in _pins(lock_text).items()
                  if name in wanted and wanted[name] != version)


def make_lock(path: Path, root: Path, run: Runner) -> None:
    """tools/lock_requirements.py --output PATH, with pip's failure turned into a message naming the
    package and this platform."""
    print(f"making a lock for this computer ({describe(*this_platform())}): {path.name}…", file=sys.stderr)
    done = run([sys.executable, str(root / "tools" / "lock_requirements.py"), "--output", str(path)],
               cwd=root, capture_output=True, text=True)
    if done.returncode == 0 and path.is_file():
        return
    output = f"{done.stdout}\n{done.stderr}".strip()
    missing = NO_WHEEL.search(output)
    if missing:
        raise LockError(f"cannot make {path.name}: there is no wheel of {missing[1]} for {describe(*this_platform())}. "
                        "Use a Python and computer that package supports, or pin a version that has one in "
                        "constraints.txt.")
    lines = output.splitlines()
    said = [line for line in lines if line.lstrip().upper().startswith("ERROR")] or lines[-15:]  # pip's reason
    raise LockError(f"cannot make {path.name} for {describe(*this_platform())}: tools/lock_requirements.py "
                    f"exited with status {done.returncode}.\n" + "\n".join(said))


def choose(configured: Path, root: Path, run: Runner) -> Path:
    """The lock to install here: the configured one if it is this platform's, else this platform's own
    (made first when missing or stale)."""
    try:
        text = configured.read_text(encoding="utf-8")
    except OSError as error:
        raise LockError(f"cannot read the lock {configured}: {error.strerror or error}") from error
    if made_for_here(text):
        return configured
    own = platform_lock(configured)
    if own.is_file():
        stale = stale_pins(own.read_text(encoding="utf-8"), (root / "constraints.txt").read_text(encoding="utf-8"))
        if not stale:
            return own
        print(f"{own.name} pins other versions than constraints.txt ({', '.join(stale[:3])}…)", file=sys.stderr)
    make_lock(own, root, run)
    return own


def main(argv: list[str], root: Path = ROOT, run: Runner | None = None) -> int:
    configured = Path(argv[0] if argv else "requirements.lock")
    try:
        chosen = choose(configured, root, run or subprocess.run)
    except LockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    LOCK_IN_USE.parent.mkdir(parents=True, exist_ok=True)
    LOCK_IN_USE.write_text(f"{chosen}\n", encoding="utf-8")  # text mode: CRLF on Windows, as `set /p` reads
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
