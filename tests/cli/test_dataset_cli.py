"""``vision-platform dataset register|list|remove|split-preview`` on a real data dir (and a real bucket)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CliResult
from tests.fixtures.s3server import SeaweedFS
from tests.helpers.datasets_gen import make_dice_detection

Cli = Callable[..., CliResult]
Rows = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def dice(tmp_path: Path) -> Path:
    return make_dice_detection(tmp_path / "dice", 12, size=48)


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as bundle:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                bundle.write(file, file.relative_to(folder).as_posix())
    return target


def test_register_folder_and_zip_then_list(run_cli: Cli, db_rows: Rows, dice: Path, tmp_path: Path) -> None:
    first = run_cli("dataset", "register", str(dice), "--name", "shapes")
    assert first.code == 0, first.err
    assert "12 images" in first.out
    rows = db_rows("SELECT project_id, name, path, format, num_images, num_classes, class_names FROM datasets")
    assert rows == [(1, "shapes", str(dice.resolve()), "dice", 12, 2, json.dumps(["circle", "square"]))]
    # The same path again refreshes the row instead of adding one.
    assert run_cli("dataset", "register", str(dice)).code == 0
    assert db_rows("SELECT COUNT(*) FROM datasets") == [(1,)]

    assert run_cli("project", "create", "Zips").code == 0
    archive = _zip(dice, tmp_path / "dice.zip")
    assert run_cli("dataset", "register", str(archive), "--project", "Zips").code == 0
    assert db_rows("SELECT path, format, num_images FROM datasets WHERE project_id = 2") == [
        (str(archive.resolve()), "dice", 12)]

    listed = json.loads(run_cli("dataset", "list", "--json").out)
    assert [(d["id"], d["project_id"], d["num_images"]) for d in listed] == [(1, 1, 12), (2, 2, 12)]
    only_zips = json.loads(run_cli("dataset", "list", "--project", "Zips", "--json").out)
    assert [d["id"] for d in only_zips] == [2]
    assert "dice.zip" in run_cli("dataset", "list").out


def test_bad_input_writes_nothing(run_cli: Cli, db_rows: Rows, tmp_path: Path) -> None:
    missing = run_cli("dataset", "register", str(tmp_path / "nowhere"))
    assert missing.code == 2 and missing.err.startswith("error: ") and "nowhere" in missing.err
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cli("dataset", "register", str(empty))
    assert refused.code == 2 and "empty" in refused.err
    assert run_cli("dataset", "register", str(empty), "--project", "Nope").code == 2
    assert db_rows("SELECT COUNT(*) FROM datasets") == [(0,)]


def test_remove_guards_datasets_that_jobs_use(run_cli: Cli, db_rows: Rows, dice: Path) -> None:
    from core.db.engine import open_store
    from core.db.models import TrainingJob

    assert run_cli("dataset", "register", str(dice)).code == 0
    with open_store().write() as session:
        session.add(TrainingJob(project_id=1, user_id=1, framework="timm", model_name="resnet18", task_type="classify",
                                dataset_path=str(dice), dataset_id=1, status="completed"))
    refused = run_cli("dataset", "remove", "1")
    assert refused.code == 2 and "used by 1 job" in refused.err and "--force" in refused.err
    assert db_rows("SELECT COUNT(*) FROM datasets") == [(1,)]
    assert run_cli("dataset", "remove", "1", "--force").code == 0
    assert db_rows("SELECT COUNT(*) FROM datasets") == [(0,)]
    assert db_rows("SELECT dataset_id, dataset_path FROM training_jobs") == [(None, str(dice))]
    assert dice.is_dir()
    assert run_cli("dataset", "remove", "1").code == 2  # gone: said, not ignored


def test_split_preview_by_id_saves_and_by_path_prints_json(run_cli: Cli, db_rows: Rows, dice: Path) -> None:
    assert run_cli("dataset", "register", str(dice)).code == 0
    shown = run_cli("dataset", "split-preview", "1", "--ratio", "0.5", "--seed", "7", "--save")
    assert shown.code == 0, shown.err
    assert "6 training images, 6 validation images" in shown.out
    saved = json.loads(db_rows("SELECT split_config FROM datasets WHERE id = 1")[0][0])
    assert saved == {"strategy": "auto", "ratio": 0.5, "seed": 7}  # auto: no split of its own → stratified
    # Without options a registered dataset previews the split saved with it.
    again = json.loads(run_cli("dataset", "split-preview", "1", "--json").out)
    assert again["choice"] == saved and again["train"] == 6

    by_path = json.loads(run_cli("dataset", "split-preview", str(dice), "--json").out)
    assert by_path["choice"] == {"strategy": "auto", "ratio": 0.8, "seed": 42}
    assert by_path["strategy"] == "stratified" and by_path["test"] == 0
    assert by_path["train"] + by_path["val"] == 12
    assert set(by_path["counts"]) == {"circle", "square"}
    assert run_cli("dataset", "split-preview", str(dice), "--save").code == 2
    bad = run_cli("dataset", "split-preview", "1", "--ratio", "1.5")
    assert bad.code == 2 and "ratio" in bad.err
    assert json.loads(db_rows("SELECT split_config FROM datasets WHERE id = 1")[0][0]) == saved


@pytest.mark.s3
def test_register_r2_url_downloads_from_the_bucket(run_cli: Cli, db_rows: Rows, dice: Path, tmp_path: Path,
                                                   s3: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _zip(dice, tmp_path / "remote.zip")
    s3.client().put_object(Bucket=s3.bucket, Key="datasets/remote.zip", Body=archive.read_bytes())
    url = f"r2://{s3.bucket}/datasets/remote.zip"
    offline = run_cli("dataset", "register", url)
    assert offline.code == 2 and "Offline mode" in offline.err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    for name, value in (("offline_mode", "false"), ("r2_endpoint_url", s3.endpoint_url), ("r2_bucket", s3.bucket)):
        assert run_cli("settings", "set", name, value).code == 0
    registered = run_cli("dataset", "register", url)
    assert registered.code == 0, registered.err
    ((path, source_url, images),) = db_rows("SELECT path, source_url, num_images FROM datasets")
    assert (source_url, images) == (url, 12)
    assert Path(path).is_dir() and len(list(Path(path).rglob("*.json"))) == 12
