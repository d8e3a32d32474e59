from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import yaml

from core.datasets import open_dataset, split_dataset
from core.datasets.cli import cmd_inspect, main, register
from tests.helpers.datasets_gen import make_dice_detection, make_imagefolder


def test_inspect_prints_table_and_findings(tmp_path: Path, capsys: object) -> None:
    root = make_imagefolder(tmp_path / "d", per_class=4, size=8, splits=("train", "val"))
    (root / "train" / "red" / "broken.png").write_bytes(b"nope")
    code = main(["dataset", "inspect", str(root)])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 1  # errors found
    assert "format: imagefolder" in out and "task: classify" in out
    assert "class" in out and "train" in out and "val" in out
    red = next(line for line in out.splitlines() if line.strip().startswith("red"))
    assert red.split() == ["red", "4", "1", "0", "5"]
    assert "error: train/red/broken.png: unreadable image" in out


def test_inspect_missing_path_is_exit_2() -> None:
    buffer = io.StringIO()
    args = argparse.Namespace(path="/nonexistent/data", format="auto", deep=False, duplicates=False)
    assert cmd_inspect(args, buffer) == 2
    assert "error: /nonexistent/data: no such file or folder" in buffer.getvalue()


def test_convert_via_module_entry_point(tmp_path: Path) -> None:
    src = make_dice_detection(tmp_path / "src", n=10)
    out = tmp_path / "yolo"
    result = subprocess.run(
        [sys.executable, "-m", "core.datasets.cli", "dataset", "convert", str(src), "--to", "yolo", str(out),
         "--split-ratio", "0.7", "--seed", "5", "--copy"],
        capture_output=True, text=True, cwd=Path.cwd(),
    )
    assert result.returncode == 0, result.stderr
    assert "placed by: {'copy': 10}" in result.stdout
    config = yaml.safe_load((out / "data.yaml").read_text())
    assert config["names"] == {0: "circle", 1: "square"}
    expected = split_dataset(open_dataset(src), ratio=0.7, seed=5)
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == [Path(r.rel).name for r in expected.val]
    assert len(expected.val) == 4  # two strata of 5: 1.5 rounds up to 2 each


def test_register_adds_dataset_command() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", "convert", "x", "--to", "coco", "out", "--strategy", "random"])
    assert args.to == "coco" and args.strategy == "random" and callable(args.handler)
