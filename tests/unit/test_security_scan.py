"""Static and process checks that keep two promises true as the code grows.

- Every unpickling load in our code says whether it trusts the file: each ``torch.load`` (and
  Ultralytics' ``torch_load`` wrapper) passes ``weights_only`` explicitly, so a reviewer sees the
  decision at the call and a default change in PyTorch cannot silently widen what we unpickle.
- The app never runs pip (or uv/apt) at run time: Ultralytics' requirement checks, which would
  otherwise pip-install a missing package mid-training, are inert in the worker's environment.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE_PACKAGES = ("app", "core", "adapters", "vision_platform")
LOADERS = {"torch_load"}  # Ultralytics' wrapper around torch.load


def _is_unpickling_load(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "load":
        return isinstance(func.value, ast.Name) and func.value.id == "torch"
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in LOADERS


def _loads_without_weights_only(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _is_unpickling_load(node)
            and not any(k.arg == "weights_only" for k in node.keywords)]


def test_every_torch_load_says_weights_only() -> None:
    files = [p for package in SOURCE_PACKAGES for p in (ROOT / package).rglob("*.py")]
    assert len(files) > 50
    missing = [where for path in files for where in _loads_without_weights_only(path)]
    assert missing == [], f"torch.load without an explicit weights_only= at {missing}"


def test_the_scan_finds_a_load_without_weights_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nstate = torch.load('x.pt')\nok = torch.load('y.pt', weights_only=True)\n")
    tree = ast.parse(bad.read_text())
    flagged = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_unpickling_load(n)
               and not any(k.arg == "weights_only" for k in n.keywords)]
    assert flagged == [2]


PIP_PROBE = r"""
import json, os, subprocess, sys
from core.launch import apply_offline_env
apply_offline_env(os.environ)  # what every process the app starts gets
ran = []
def record(name):
    real = getattr(subprocess, name)
    def wrapper(cmd, *args, **kwargs):
        text = " ".join(cmd) if isinstance(cmd, (list, tuple)) else str(cmd)
        if any(word in text for word in ("pip", "uv ", "apt")):
            ran.append(text)
            raise RuntimeError("blocked: " + text)
        return real(cmd, *args, **kwargs)
    setattr(subprocess, name, wrapper)
for name in ("run", "check_output", "check_call", "call", "Popen"):
    record(name)
import ultralytics.utils.checks as checks
checks.ONLINE = True  # as on a connected workstation: only the environment may stop the install
result = checks.check_requirements("vp-surely-not-installed-package>=1.0")
print(json.dumps({"ran": ran, "result": result}))
"""


def test_ultralytics_never_runs_pip_in_the_worker_environment() -> None:
    out = subprocess.run([sys.executable, "-c", PIP_PROBE], cwd=str(ROOT), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"ran": [], "result": False}, report  # missing package reported, nothing installed


def _probe_pip(extra_env: dict[str, str]) -> dict[str, object]:
    env = {**os.environ, **extra_env}
    out = subprocess.run([sys.executable, "-c", PIP_PROBE], cwd=str(ROOT), capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.reliability(row=33, fault="a user environment with YOLO_AUTOINSTALL=true")
def test_ultralytics_never_runs_pip_whatever_the_users_environment() -> None:
    report = _probe_pip({"YOLO_AUTOINSTALL": "true"})
    assert report == {"ran": [], "result": False}, report


PIP_WORDS = ("pip", "pip3", "ensurepip", "uv", "conda", "mamba", "apt", "apt-get")


def _literal_words(node: ast.AST) -> list[str]:
    """The string constants of a command literal: ``["x", "-m", "pip"]`` or ``"pip install x"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.split()
    if isinstance(node, ast.List | ast.Tuple):
        return [w for element in node.elts for w in _literal_words(element)]
    return []


def _runs_an_installer(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name in ("main",) and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "pip":
        return True  # pip.main([...])
    if name not in ("run", "Popen", "call", "check_call", "check_output", "system", "run_module", "execv", "execvp"):
        return False
    words = [w for arg in call.args[:1] for w in _literal_words(arg)]
    return any(Path(w).name in PIP_WORDS or w.startswith("pip") for w in words)


def _installer_runs(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [f"{path.relative_to(root)}:{n.lineno}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and _runs_an_installer(n)]
    found += [f"{path.relative_to(root)}:{n.lineno} (imports pip)" for n in ast.walk(tree)
              if isinstance(n, ast.Import | ast.ImportFrom)
              and any(a.name.split(".")[0] in ("pip", "ensurepip") for a in getattr(n, "names", []))
              or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("pip", "ensurepip")]
    return found


@pytest.mark.reliability(row=33, fault="any code path of ours that would run pip/uv/apt at run time")
def test_our_code_never_runs_an_installer() -> None:
    files = [p for package in SOURCE_PACKAGES for p in (ROOT / package).rglob("*.py")]
    found = [where for path in files for where in _installer_runs(path)]
    assert found == [], f"the app would run an installer at {found}"


def test_the_installer_scan_finds_pip_calls(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess, sys\nimport pip\n"
                   "subprocess.run([sys.executable, '-m', 'pip', 'install', 'x'])\n"
                   "subprocess.check_call('uv pip install y', shell=True)\n"
                   "subprocess.run(['git', 'status'])\n")
    assert _installer_runs(bad, tmp_path) == ["bad.py:3", "bad.py:4", "bad.py:2 (imports pip)"]
