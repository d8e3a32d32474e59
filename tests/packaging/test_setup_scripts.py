"""The set-up scripts without make (scripts/run.sh, test.sh, setup.sh; scripts\\run.bat, test.bat,
setup.bat) run exactly the Makefile's commands: the same programs, arguments, flags and environment,
in the same order. Both sides are read here, so a change to one recipe fails this test until the
scripts follow.

- The Makefile's recipes (setup, run, lint, test, test-fast) are parsed into program commands (a
  venv tool or the Python) with their environment; each script is parsed the same way (its own
  variable syntax and line structure) and must run them as a subsequence (a script may add steps:
  its lock check).
- The shell scripts also run for real, against fake Pythons and tools that log each call: first set-up,
  a second run that reinstalls nothing, ``--fast``, the full suite's report and exit status. The lock
  chooser (scripts/lock_check.py) runs for real inside them, with a fake tools/lock_requirements.py.
- The chooser's decisions are unit-tested with the lock maker faked (no real resolve: that needs the
  registry): this platform's lock, another platform's with and without a lock made here, a stale one,
  a lock maker that fails.
- The Windows scripts cannot run here; their CRLF line ends are checked (cmd misreads labels without).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

SCRIPTS = ROOT / "scripts"
OPAQUE = {"PY": "PY", "PYTHON": "PYTHON", "results": "RESULTS"}  # kept as names; other variables expand
BIN_TOOL = re.compile(r"^\.venv/(?:bin|Scripts)/([\w-]+?)(?:\.exe)?$")
PASS_THROUGH = {"$@", "%*"}  # a script's own arguments, passed on (make has none)
SEPARATORS = {";", "&&", "||", "&", "|", "(", ")", "{", "}"}


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: frozenset[tuple[str, str]] = field(default=frozenset())

    def __str__(self) -> str:
        return " ".join(self.argv) + (f"  [{dict(self.env)}]" if self.env else "")


# -- reading the Makefile ---------------------------------------------------------------------------
def _joined_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def makefile_recipes() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """({target: prerequisites}, {target: recipe lines}) with variables expanded as make would,
    except the opaque ones."""
    lines = _joined_lines((ROOT / "Makefile").read_text(encoding="utf-8"))
    variables = {m[1]: m[3] for line in lines if (m := re.match(r"^(\w+)\s*(\?=|:=|=)\s*(.*)$", line))}

    def expand(text: str) -> str:
        text = text.replace("$$", "\0")  # a shell's own $, written $$ in a recipe
        text = re.sub(r"\$\((\w+)\)", lambda m: OPAQUE.get(m[1]) or expand(variables.get(m[1], "")), text)
        return re.sub(r"\0(\w+)", lambda m: OPAQUE.get(m[1], "$" + m[1]), text).replace("\0", "$")

    prerequisites: dict[str, list[str]] = {}
    recipes: dict[str, list[str]] = {}
    target = None
    for line in lines:
        rule = re.match(r"^([^\t#\s][^:=]*?):(?!=)\s*(.*)$", line)
        if rule:
            target = rule[1].replace("$(STAMP)", "setup-stamp")
            prerequisites[target] = rule[2].replace("$(STAMP)", "setup-stamp").split()
            recipes[target] = []
        elif line.startswith("\t") and target:
            recipes[target].append(expand(line.strip().lstrip("@")))
    return prerequisites, recipes


def expected_commands(target: str, made: set[str] | None = None) -> list[Command]:
    """The program commands ``make TARGET`` runs, prerequisites first, each target once (``setup`` is
    its stamp rule)."""
    prerequisites, recipes = makefile_recipes()
    made = set() if made is None else made
    made.add(target)
    commands: list[Command] = []
    for prerequisite in prerequisites[target]:
        if prerequisite in recipes and prerequisite not in made:  # a target (not a file) not made yet
            commands += expected_commands(prerequisite, made)
    for line in recipes[target]:
        commands += program_commands(line, {})
    return commands


# -- reading a script -----------------------------------------------------------------------------
def program_commands(line: str, persistent_env: dict[str, str]) -> list[Command]:
    """The commands on one line that run the Python or a venv tool, canonical: PY, PYTHON, a tool's
    bare name; ``if exist``/``test``/``call``/``exec`` prefixes and redirections dropped."""
    line = re.sub(r"(^|\s)\d?(>>?|<)&?\s*[^\s;&|)]+", " ", line)  # redirections: >/dev/null, 2>&1, > "file"
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}")
    lexer.whitespace_split = True
    commands: list[list[str]] = []
    current: list[str] = []
    for token in [*lexer, ";"]:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    found = []
    for argv in commands:
        argv = _without_prefixes(argv)
        env = dict(persistent_env)
        while argv and re.match(r"^\w+=", argv[0]):
            name, _, value = argv.pop(0).partition("=")
            env[name] = value
        argv = [BIN_TOOL.sub(r"\1", token) for token in argv if token not in PASS_THROUGH]
        if argv and argv[0] in ("PY", "PYTHON", *BIN_TOOL_NAMES):
            found.append(Command(tuple(argv), frozenset((k, v) for k, v in env.items() if k in TRACKED_ENV and v)))
    return found


BIN_TOOL_NAMES = {"ruff", "lint-imports", "mypy", "vision-platform"}
TRACKED_ENV = {"QT_QPA_PLATFORM", "VP_RELIABILITY_REPORT"}


def _without_prefixes(argv: list[str]) -> list[str]:
    while argv:
        if argv[0] in ("call", "exec"):
            argv = argv[1:]
        elif argv[0] == "if" and len(argv) > 3 and argv[1] == "not" and argv[2] in ("exist", "defined"):
            argv = argv[4:]
        elif argv[0] == "if" and len(argv) > 2 and argv[1] == "exist":
            argv = argv[3:]
        else:
            return argv
    return argv


class ScriptReader:
    """A script's program commands in file order, with ``setup`` inlined where it is called."""

    def __init__(self, windows: bool) -> None:
        self.windows = windows
        self.variables: dict[str, str] = {}
        self.env: dict[str, str] = {}

    def commands(self, path: Path) -> list[Command]:
        found: list[Command] = []
        for raw in _joined_lines(path.read_text(encoding="utf-8")):
            line = self._clean(raw)
            if not line:
                continue
            if self._assignment(line):
                continue
            if line in ("vp_setup", "call scripts/setup.bat || exit /b 1"):
                found += self.commands(path.with_name("setup.bat" if self.windows else "setup.sh"))
                continue
            found += program_commands(self._expand(line), self.env)
        return found

    def _clean(self, raw: str) -> str:
        line = raw.strip()
        if self.windows:
            return "" if re.match(r"^(rem\b|@echo|:|setlocal)", line, re.I) else line.replace("\\", "/")
        return "" if line.startswith("#") else re.sub(r"\s+#\s.*$", "", line)

    def _assignment(self, line: str) -> bool:
        """``NAME=value`` / ``export NAME=value`` (sh), ``[if not defined NAME] set "NAME=value"`` (cmd)."""
        pattern = r'^(?:if not defined \w+ )?set "(\w+)=(.*)"$' if self.windows else r'^(export )?(\w+)=("[^"]*"|\S*)$'
        match = re.match(pattern, line)
        if not match:
            return False
        name, value = (match[1], match[2]) if self.windows else (match[2], match[3])
        value = self._expand(re.sub(r'^"\$\{\w+:-(.*)\}"$', r"\1", value).strip('"'))
        if name in TRACKED_ENV and (self.windows or match[1]):
            self.env[name] = value
        elif name not in self.variables or not line.startswith("if not defined"):
            self.variables[name] = value
        return True

    def _expand(self, text: str) -> str:
        pattern = r"%(\w+)%" if self.windows else r"\$\{?(\w+)\}?"
        return re.sub(pattern, lambda m: OPAQUE.get(m[1]) or self.variables.get(m[1], m[0]), text)


def _is_subsequence(expected: list[Command], actual: list[Command]) -> bool:
    remaining = iter(actual)
    return all(any(_runs(want, got) for got in remaining) for want in expected)


def _runs(want: Command, got: Command) -> bool:
    return want.argv == got.argv and want.env <= got.env


def _same_runs(expected: list[Command], actual: list[Command]) -> bool:
    return len(expected) == len(actual) and all(map(_runs, expected, actual))


@pytest.mark.parametrize("windows", [False, True], ids=["sh", "bat"])
@pytest.mark.parametrize(("script", "target"), [("run", "run"), ("test", "test"), ("test", "test-fast")])
def test_each_script_runs_the_makefile_commands(windows: bool, script: str, target: str) -> None:
    expected = expected_commands(target)
    assert len(expected) >= 6, f"the Makefile parse found too little for {target}: {expected}"
    actual = ScriptReader(windows).commands(SCRIPTS / f"{script}.{'bat' if windows else 'sh'}")
    assert _is_subsequence(expected, actual), (
        f"scripts/{script}.{'bat' if windows else 'sh'} does not run `make {target}`'s commands in order.\n"
        "make:\n  " + "\n  ".join(map(str, expected)) + "\nscript:\n  " + "\n  ".join(map(str, actual)))


def test_the_makefile_parse_sees_the_recipes() -> None:
    """The comparison above is only as good as this parse: the commands it must find."""
    commands = [str(c) for c in expected_commands("test")]
    assert commands[:2] == ["PYTHON scripts/preflight.py", "PYTHON -m venv .venv"]
    assert ("PY -m pip --disable-pip-version-check install -q --require-hashes --only-binary :all: -r requirements.lock"
            in commands)
    assert "PY -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation -e ." in commands
    assert "ruff check app core adapters vision_platform tests bench" in commands and "lint-imports" in commands
    pytest_run = next(c for c in expected_commands("test") if c.argv[:3] == ("PY", "-m", "pytest"))
    assert dict(pytest_run.env) == {"QT_QPA_PLATFORM": "offscreen", "VP_RELIABILITY_REPORT": "RESULTS"}
    assert commands[-1] == "PY -m tests.reliability.report RESULTS docs/reliability.md"
    assert [str(c) for c in expected_commands("run")][-2:] == ["PY scripts/preflight.py --qt-platform", "vision-platform"]


def test_a_drifted_script_is_caught(tmp_path: Path) -> None:
    drifted = tmp_path / "test.sh"
    text = (SCRIPTS / "test.sh").read_text(encoding="utf-8").replace("--durations=10", "--durations=5")
    drifted.write_text(text, encoding="utf-8")
    shutil.copy(SCRIPTS / "setup.sh", tmp_path / "setup.sh")
    assert not _is_subsequence(expected_commands("test-fast"), ScriptReader(False).commands(drifted))
    assert _is_subsequence(expected_commands("test"), ScriptReader(False).commands(drifted))


def test_windows_scripts_have_crlf_line_ends() -> None:
    for name in ("setup.bat", "run.bat", "test.bat"):
        data = (SCRIPTS / name).read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n") > 5, name


# -- the shell scripts, run against fakes ---------------------------------------------------------
FAKE = """#!/usr/bin/env bash
printf '%s' "{name}" >> "$FAKE_LOG"
for arg in "$@"; do printf '\\x1f%s' "$arg" >> "$FAKE_LOG"; done
printf '\\x1eQT=%s\\x1eREPORT=%s\\n' "${{QT_QPA_PLATFORM:-}}" "${{VP_RELIABILITY_REPORT:-}}" >> "$FAKE_LOG"
{extra}
"""
BASE_PYTHON_EXTRA = """if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin"
    for tool in python ruff lint-imports mypy vision-platform; do cp "$FAKE_DIR/$tool" "$3/bin/$tool"; done
fi"""
VENV_PYTHON_EXTRA = """[ "$1" = "scripts/lock_check.py" ] && exec "$REAL_PYTHON" "$@"
[ "$1 $2" = "-m pytest" ] && exit "${FAKE_PYTEST_STATUS:-0}"
exit 0"""
FAKE_LOCK_MAKER = """import pathlib, platform, sys
output = pathlib.Path(sys.argv[sys.argv.index("--output") + 1])
output.write_text(f"# Platform: CPython {platform.python_version()} on {sys.platform} {platform.machine()}.\\n")
"""
OTHER_PLATFORM = "# Platform: CPython 3.11.7 on win32 AMD64.\n"


@dataclass
class FakeRepo:
    root: Path
    log: Path
    base_python: Path

    def run(self, script: str, *args: str, **env: str) -> tuple[int, list[Command], list[str]]:
        """Exit status, the calls made (canonical), the reliability report files pytest was given."""
        self.log.write_text("")
        inherited = {k: v for k, v in os.environ.items() if k not in TRACKED_ENV}
        done = subprocess.run(["bash", f"scripts/{script}", *args], cwd=self.root, capture_output=True, text=True,
                              timeout=120, env={**inherited, "PYTHON": str(self.base_python), "FAKE_LOG": str(self.log),
                                                "FAKE_DIR": str(self.base_python.parent), "REAL_PYTHON": sys.executable,
                                                **env})
        calls = [line.split("\x1e") for line in self.log.read_text().split("\n") if line]  # not splitlines: \x1e ends a line there
        reports = [report.removeprefix("REPORT=") for _call, _qt, report in calls if report != "REPORT="]
        commands = []
        for call, qt, report in calls:
            name, *argv = call.split("\x1f")
            env_seen = {("QT_QPA_PLATFORM", qt.removeprefix("QT="))} if qt != "QT=" else set()
            env_seen |= {("VP_RELIABILITY_REPORT", "RESULTS")} if report != "REPORT=" else set()
            commands.append(Command((name, *["RESULTS" if a in reports else a for a in argv]), frozenset(env_seen)))
        return done.returncode, commands, reports


@pytest.fixture
def fake_repo(tmp_path: Path) -> FakeRepo:
    if shutil.which("bash") is None or sys.platform == "win32":
        pytest.skip("the shell scripts run under bash")
    root, fakes = tmp_path / "repo", tmp_path / "fakes"
    (root / "scripts").mkdir(parents=True)
    (root / "tools").mkdir()
    fakes.mkdir()
    for name in ("setup.sh", "run.sh", "test.sh", "lock_check.py"):
        shutil.copy(SCRIPTS / name, root / "scripts" / name)
    (root / "tools" / "lock_requirements.py").write_text(FAKE_LOCK_MAKER)
    for name in ("pyproject.toml", "constraints.txt", "requirements.lock"):
        (root / name).write_text("")
    for name, log_name, extra in [("base-python", "PYTHON", BASE_PYTHON_EXTRA), ("python", "PY", VENV_PYTHON_EXTRA),
                                  ("ruff", "ruff", ""), ("lint-imports", "lint-imports", ""), ("mypy", "mypy", ""),
                                  ("vision-platform", "vision-platform", "")]:
        (fakes / name).write_text(FAKE.format(name=log_name, extra=extra))
        (fakes / name).chmod(0o755)
    return FakeRepo(root, tmp_path / "calls.log", fakes / "base-python")


def test_sh_first_set_up_then_fast_suite_as_make_does(fake_repo: FakeRepo) -> None:
    status, commands, _ = fake_repo.run("test.sh", "--fast")
    assert status == 0
    lock_check = Command(("PY", "scripts/lock_check.py", "requirements.lock"))
    assert _same_runs(expected_commands("test-fast"), [c for c in commands if c != lock_check]), commands
    assert commands[2] == lock_check  # chosen before pip installs it
    assert (fake_repo.root / ".venv" / "lock-in-use").read_text() == "requirements.lock\n"  # no header: as it is
    status, again, _ = fake_repo.run("test.sh", "--fast")
    set_up = expected_commands("setup")
    assert status == 0 and _same_runs([c for c in expected_commands("test-fast") if c not in set_up], again)
    (fake_repo.root / "constraints.txt").touch()
    os.utime(fake_repo.root / "constraints.txt", (os.path.getmtime(fake_repo.root / ".venv" / ".installed") + 10,) * 2)
    _, after_change, _ = fake_repo.run("test.sh", "--fast")
    assert any(c.argv[:4] == ("PY", "-m", "pip", "--disable-pip-version-check") for c in after_change)


def test_sh_full_suite_renders_the_report_and_keeps_pytests_status(fake_repo: FakeRepo) -> None:
    status, commands, reports = fake_repo.run("test.sh", FAKE_PYTEST_STATUS="3")
    assert status == 3  # pytest's, after the report was rendered
    assert _same_runs(expected_commands("test"), [c for c in commands if c.argv[1:2] != ("scripts/lock_check.py",)])
    assert len(reports) == 1 and not Path(reports[0]).exists()  # the temp file is removed afterwards


def test_sh_run_checks_qt_then_starts_the_app_with_its_arguments(fake_repo: FakeRepo) -> None:
    status, commands, _ = fake_repo.run("run.sh", "photo one.png")
    assert status == 0
    assert [str(c) for c in commands[-2:]] == ["PY scripts/preflight.py --qt-platform", "vision-platform photo one.png"]


def test_sh_another_platforms_lock_makes_one_for_this_computer(fake_repo: FakeRepo) -> None:
    (fake_repo.root / "requirements.lock").write_text(OTHER_PLATFORM)
    own = _lock_check().platform_lock(Path("requirements.lock"))
    status, commands, _ = fake_repo.run("test.sh", "--fast")
    assert status == 0 and (fake_repo.root / own).is_file()
    assert (fake_repo.root / ".venv" / "lock-in-use").read_text() == f"{own}\n"
    pip_installs = [c.argv[-1] for c in commands if c.argv[4:6] == ("install", "-q") and c.argv[-2] == "-r"]
    assert pip_installs == [str(own)], commands  # the same hash-checked install, of this computer's lock
    _, again, _ = fake_repo.run("test.sh", "--fast")
    assert not any(c.argv[1:2] == ("scripts/lock_check.py",) for c in again)  # installed: nothing chosen again
    os.utime(fake_repo.root / own, (os.path.getmtime(fake_repo.root / ".venv" / ".installed") + 10,) * 2)
    _, after_change, _ = fake_repo.run("test.sh", "--fast")
    assert [c.argv[-1] for c in after_change if c.argv[4:6] == ("install", "-q") and c.argv[-2] == "-r"] == [str(own)]


def test_the_windows_setup_chooses_then_installs_the_chosen_lock() -> None:
    """setup.bat cannot run here: its chooser call, the read of the chosen lock and the install from it
    are checked in order, and the freshness check names the chosen lock."""
    lines = (SCRIPTS / "setup.bat").read_text(encoding="utf-8").splitlines()
    choose = lines.index("%PY% scripts\\lock_check.py %LOCK% || exit /b 1")
    assert lines[choose + 1] == 'set /p LOCK=<"%LOCK_IN_USE%"' and 'set "LOCK_IN_USE=.venv\\lock-in-use"' in lines
    assert lines[choose + 2].startswith("%PIP% install -q --require-hashes --only-binary :all: -r %LOCK%")
    fresh = next(line for line in lines if "getmtime" in line)
    assert fresh.startswith("if defined CHOSEN ") and '"%LOCK%" "%CHOSEN%" && exit /b 0' in fresh


# -- the lock chooser ------------------------------------------------------------------------------
def _lock_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_check", SCRIPTS / "lock_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HERE = f"# Platform: CPython {platform.python_version()} on {sys.platform} {platform.machine()}.\n"


@dataclass
class FakeLockMaker:
    """Stands in for subprocess.run of tools/lock_requirements.py: records the call, writes the lock
    (or fails with pip's output)."""

    returncode: int = 0
    stderr: str = ""
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if self.returncode == 0:
            Path(argv[argv.index("--output") + 1]).write_text(HERE + "torch==2.14.1 \\\n    --hash=sha256:" + "0" * 64 + "\n")
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root to choose in (the scripts run from there): its constraints pin torch 2.14.1."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "constraints.txt").write_text("# pins\ntorch==2.14.1\nnumpy==2.0.0\n")
    return tmp_path


def _choose(repo: Path, maker: FakeLockMaker, lock: str = "requirements.lock") -> int:
    return int(_lock_check().main([lock], root=repo, run=maker))


def _in_use(repo: Path) -> str:
    return (repo / ".venv" / "lock-in-use").read_text(encoding="utf-8")


def test_chooser_uses_a_lock_made_for_this_platform_as_it_is(repo: Path) -> None:
    (repo / "requirements.lock").write_text(HERE + "torch==2.14.1 \\\n    --hash=sha256:" + "1" * 64 + "\n")
    maker = FakeLockMaker()
    assert _choose(repo, maker) == 0 and _in_use(repo) == "requirements.lock\n"
    assert maker.calls == [] and sorted(p.name for p in repo.glob("*.lock")) == ["requirements.lock"]
    (repo / "mine.lock").write_text("torch==2.14.1\n")  # no header: made by hand, pip's own check decides
    assert _choose(repo, maker, "mine.lock") == 0 and _in_use(repo) == "mine.lock\n" and maker.calls == []


def test_chooser_takes_this_platforms_lock_beside_another_platforms(repo: Path) -> None:
    (repo / "requirements.lock").write_text(OTHER_PLATFORM)
    own = _lock_check().platform_lock(Path("requirements.lock"))
    (repo / own).write_text(HERE + "torch==2.14.1 \\\n    --hash=sha256:" + "2" * 64 + "\n")
    maker = FakeLockMaker()
    assert _choose(repo, maker) == 0 and _in_use(repo) == f"{own}\n" and maker.calls == []
    assert own.name == f"requirements-{sys.platform}-{platform.machine()}-py{sys.version_info[0]}{sys.version_info[1]}.lock".lower()
    assert "2" * 64 in (repo / own).read_text()  # not remade: its hashes are the ones trusted before


def test_chooser_makes_a_lock_for_this_computer_when_there_is_none(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "requirements.lock").write_text(OTHER_PLATFORM)
    maker = FakeLockMaker()
    assert _choose(repo, maker) == 0
    own = _lock_check().platform_lock(Path("requirements.lock"))
    assert maker.calls == [[sys.executable, str(repo / "tools" / "lock_requirements.py"), "--output", str(own)]]
    assert (repo / own).read_text().startswith(HERE) and _in_use(repo) == f"{own}\n"
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"making a lock for this computer (CPython {python} on {sys.platform} {platform.machine()})" in capsys.readouterr().err


def test_chooser_remakes_its_lock_when_constraints_moved_on(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "requirements.lock").write_text(OTHER_PLATFORM)
    own = _lock_check().platform_lock(Path("requirements.lock"))
    (repo / own).write_text(HERE + "torch==2.13.0 \\\n    --hash=sha256:" + "3" * 64 + "\n")
    maker = FakeLockMaker()
    assert _choose(repo, maker) == 0 and len(maker.calls) == 1
    assert "torch==2.14.1" in (repo / own).read_text()
    assert "torch 2.13.0 != 2.14.1" in capsys.readouterr().err


def test_chooser_names_the_package_without_a_wheel_for_this_platform(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "requirements.lock").write_text(OTHER_PLATFORM)
    pip_says = ("ERROR: Could not find a version that satisfies the requirement torch==2.14.1 (from versions: none)\n"
                "ERROR: No matching distribution found for torch==2.14.1\n")
    assert _choose(repo, FakeLockMaker(returncode=1, stderr=pip_says)) == 1
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("error: cannot make requirements-") and \
        f"no wheel of torch==2.14.1 for CPython {python} on {sys.platform} {platform.machine()}" in error
    assert not (repo / ".venv" / "lock-in-use").exists()


def test_chooser_reports_any_other_lock_maker_failure(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "requirements.lock").write_text(OTHER_PLATFORM)
    assert _choose(repo, FakeLockMaker(returncode=2, stderr="ERROR: HTTP error 503 while getting https://example\n")) == 1
    err = capsys.readouterr().err
    assert "tools/lock_requirements.py exited with status 2" in err and "HTTP error 503" in err
    assert _choose(repo, FakeLockMaker(), "missing.lock") == 1
    assert "cannot read the lock missing.lock" in capsys.readouterr().err


def test_the_repositorys_lock_is_chosen_on_its_own_platform() -> None:
    """requirements.lock names its platform in a header the chooser reads; on that platform (the gate's)
    it is installed as it is."""
    chooser = _lock_check()
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    header = chooser.HEADER.search(text)
    assert header is not None and header.groups()[1:] == ("linux", "x86_64")
    assert chooser.made_for_here(text) == (header.groups() == chooser.this_platform())


def test_lock_maker_writes_where_told_and_to_requirements_lock_by_default(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("lock_requirements", ROOT / "tools" / "lock_requirements.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    item = {"metadata": {"name": "numpy", "version": "2.0.0"},
            "download_info": {"url": "https://x/numpy.whl", "archive_info": {"hashes": {"sha256": "4" * 64}}}}
    monkeypatch.setattr(tool, "resolve", lambda: [item])  # no real resolve: that needs the registry
    monkeypatch.setattr(tool, "LOCK", tmp_path / "requirements.lock")  # `make lock`: no arguments
    tool.main([])
    tool.main(["--output", str(tmp_path / "other.lock")])
    for name in ("requirements.lock", "other.lock"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert text.splitlines()[1] == HERE.strip() and f"numpy==2.0.0 \\\n    --hash=sha256:{'4' * 64}" in text
