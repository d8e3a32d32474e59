"""``vision-platform dataset augment-preview``: the Train page's augmentation preview from a terminal.

It runs the same service and helper process as the page (``core.services.augmentation``); the test
checks the PNGs it leaves on disk, and that a bad option is refused by name before anything is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.cli.conftest import CliResult
from tests.helpers.datasets_gen import make_imagefolder


def test_preview_writes_the_asked_number_of_augmented_pngs(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = make_imagefolder(tmp_path / "shapes", per_class=4, size=48)
    out = tmp_path / "preview"
    result: CliResult = run_cli("dataset", "augment-preview", str(dataset), "--framework", "timm", "--task", "classify",
                                "--image-size", "40", "--preset", "standard", "--option", "hflip=0.0",
                                "--count", "8", "--out", str(out), "--json")
    assert result.code == 0, result.err
    samples = json.loads(result.out)
    assert len(samples) == 8
    for sample in samples:
        assert Path(sample["file"]).parent == out
        with Image.open(sample["file"]) as image:
            assert image.size == (40, 40)
        assert sample["caption"] in {"red", "green", "blue"}


def test_an_unknown_option_is_named(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = make_imagefolder(tmp_path / "shapes", per_class=4, size=48)
    result: CliResult = run_cli("dataset", "augment-preview", str(dataset), "--framework", "timm", "--task", "classify",
                                "--option", "wobble=3", "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert "wobble" in result.err
    assert not list((tmp_path / "out").glob("*.png"))
