"""CI's stand-in for a full PyInstaller build (which takes longer than CI allows): everything build.spec
names must resolve — each hidden import imports (in one subprocess), each data source and copied
metadata exists, torchvision's compiled ops are found — so a rename breaks CI, not the next release."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("PyInstaller", reason="the `package` extra is not installed")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    # Run as a plain module (no PyInstaller globals): the lists and helpers are defined, nothing is built.
    return runpy.run_path(str(ROOT / "build.spec"), init_globals={"SPECPATH": str(ROOT)}, run_name="build_spec_check")


def test_data_sources_exist(spec: dict[str, Any]) -> None:
    for source, _target in spec["DATA_DIRS"]:
        assert (ROOT / source).exists(), source
    for package in spec["DATA_PACKAGES"]:
        assert importlib.util.find_spec(package) is not None, package
    for name in spec["METADATA_PACKAGES"]:
        assert importlib.metadata.version(name), name


def test_shipped_resources_are_there() -> None:
    from core.resources import HANGUL_FONT, SAMPLE_DATASET, resource_path

    assert resource_path(*HANGUL_FONT).is_file() and resource_path(*HANGUL_FONT).with_name("OFL.txt").is_file()
    assert len(list(resource_path(*SAMPLE_DATASET).rglob("*.png"))) >= 30
    for name in ("app.svg", "app.png", "app.ico", "app.icns"):
        assert resource_path("icons", name).is_file(), name
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text(encoding="utf-8")


def test_entry_modules_exist(spec: dict[str, Any]) -> None:
    for name in spec["ENTRY_MODULES"]:
        assert importlib.util.find_spec(name) is not None, name
    for package, subdir in spec["PY_DATA"]:
        spec_of = importlib.util.find_spec(package)
        assert spec_of is not None and spec_of.origin is not None
        assert (Path(spec_of.origin).parent / subdir).is_dir(), f"{package}/{subdir}"


def test_torchvision_ops_are_binaries(spec: dict[str, Any]) -> None:
    binaries = spec["torchvision_binaries"]()
    names = {Path(source).name for source, _dest in binaries}
    assert {"_C_stable", "image_stable"} <= {name.split(".")[0] for name in names}
    assert all(dest == "torchvision" for _source, dest in binaries)


def test_hidden_imports_import(spec: dict[str, Any]) -> None:
    explicit = list(spec["HIDDEN_IMPORTS"])
    ours = [name for package in spec["HIDDEN_PACKAGES"] for name in _modules_of(package)]
    script = ("import importlib, json, sys\nbad = {}\nfor name in json.loads(sys.argv[1]):\n"
              "    try: importlib.import_module(name)\n"
              "    except Exception as exc: bad[name] = f'{type(exc).__name__}: {exc}'\n"
              "print(json.dumps(bad))\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(explicit + ours)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**_env(), "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def _modules_of(package: str) -> list[str]:
    folder = ROOT / package
    names = []
    for path in folder.rglob("*.py"):
        relative = path.relative_to(ROOT).with_suffix("")
        if "versions" in relative.parts or relative.name in ("env", "__main__"):
            continue
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        names.append(".".join(parts))
    return names


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_excluded_files_are_dropped(spec: dict[str, Any]) -> None:
    kept = spec["_kept"]
    assert not kept(("torch/include/ATen/ATen.h", "x", "DATA"))
    assert not kept(("torch/lib/libfoo.a", "x", "BINARY"))
    assert not kept(("core/migrations/__pycache__/env.cpython-311.pyc", "x", "DATA"))
    assert kept(("core/migrations/versions/0001_initial.py", "x", "DATA"))
    assert kept(("ultralytics/cfg/models/11/yolo11.yaml", "x", "DATA"))
    assert kept(("torch/testing/__init__.pyc", "x", "DATA"))  # noarchive: modules are .pyc data files
    assert kept(("scipy/_lib/tests/__init__.pyc", "x", "DATA"))
    unused = spec["_is_unused_qt_platform"]
    assert unused(("PySide6/Qt/plugins/platforms/libqvnc.so", "x", "BINARY"))
    assert not unused(("PySide6/Qt/plugins/platforms/libqxcb.so", "x", "BINARY"))
    assert not unused(("PySide6/Qt/plugins/platforms/libqoffscreen.so", "x", "BINARY"))
