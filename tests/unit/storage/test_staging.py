"""Staging entries a killed download left behind are swept when their cache is next used; one a live
process (this one or another) is writing, and every real cache entry, is never touched. Real files and
real processes: an owner is "dead" because its process really exited; ages are set with ``os.utime``."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.datasets.zipsafe import safe_extract
from core.staging import UNOWNED_STALE_AFTER_S, make_staging_dir, make_staging_file, sweep_staging
from core.storage.errors import MAX_CHECKPOINT_BYTES
from core.storage.folders import checkpoints_cache, download_checkpoint_folder
from tests.helpers.staging import exited_owner, staging_folder

REPO = Path(__file__).resolve().parents[3]
DAY = 24 * 3600


@pytest.fixture(scope="module")
def dead_owner() -> str:
    return exited_owner()


def age(path: Path, seconds: float) -> Path:
    """Make ``path`` and everything in it last modified ``seconds`` ago."""
    moment = time.time() - seconds
    for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(item, (moment, moment))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stale_entries_go_and_live_ones_and_real_entries_stay(tmp_path: Path, dead_owner: str) -> None:
    cache = tmp_path / "downloads"
    real = staging_folder(cache, "r2-0123456789abcdef01234567", {"red/a.png": b"a", "blue/b.png": b"b"})
    (cache / ".sources").mkdir()
    (cache / ".sources" / "abc.json").write_text('{"folder": "r2-0123456789abcdef01234567"}')
    age(real, 30 * DAY)
    mine = make_staging_dir(cache / "r2-live")  # this process is downloading it: kept however old
    (mine / "part.png").write_bytes(b"x")
    age(mine, 30 * DAY)
    fd, my_file = make_staging_file(cache, "object")
    os.close(fd)
    dead_folder = staging_folder(cache, f".r2-killed.partial-{dead_owner}-k1ll3d_x")  # fresh, but its owner is gone
    dead_file = cache / f".object.partial-{dead_owner}-abcd_123"
    dead_file.write_bytes(b"half")
    started = dead_owner.split("-")[1]
    recycled = staging_folder(cache, f".r2-recycled.partial-{os.getpid()}-{int(started) - 3600}-r3cycl3d")  # pid reused
    old_unowned = age(staging_folder(cache, ".r2-old.partial-ab12cd34"), 2 * DAY)  # what earlier versions named
    young_unowned = age(staging_folder(cache, ".r2-young.partial-ef56ab78"), UNOWNED_STALE_AFTER_S - 3600)
    deep_write = age(staging_folder(cache, ".r2-deep.partial-0a1b2c3d"), 2 * DAY)
    (deep_write / "red" / "new.png").write_bytes(b"still being written")  # only the newest file is recent
    users_file = cache / "notes.partial-draft.txt"
    users_file.write_text("not ours")
    before_real = snapshot(real)

    removed = sweep_staging(cache)

    assert sorted(removed) == sorted([dead_folder, dead_file, recycled, old_unowned])
    assert not any(path.exists() for path in removed)
    assert all(path.exists() for path in (mine, my_file, young_unowned, deep_write, users_file))
    assert snapshot(real) == before_real and (cache / ".sources" / "abc.json").is_file()
    assert sweep_staging(cache) == [] and sweep_staging(tmp_path / "missing") == []


def test_another_live_process_keeps_its_staging_folder_until_it_ends(tmp_path: Path) -> None:
    """The GUI and the CLI at once: one's sweep never removes what the other is downloading."""
    cache = tmp_path / "downloads"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from core.staging import make_staging_dir; "
         "print(make_staging_dir(Path(sys.argv[1]) / 'r2-other'), flush=True); sys.stdin.read()", str(cache)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, text=True)
    try:
        assert writer.stdout is not None
        staging = Path(writer.stdout.readline().strip())
        assert staging.parent == cache and staging.is_dir()
        age(staging, 30 * DAY)
        assert sweep_staging(cache) == [] and staging.is_dir()
    finally:
        writer.communicate("")
    assert sweep_staging(cache) == [staging] and not staging.exists()


def test_extracting_a_zip_sweeps_what_a_killed_extraction_left(tmp_path: Path, dead_owner: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("colours/red/a.png", b"a")
    (tmp_path / "data.zip").write_bytes(buffer.getvalue())
    leftover = staging_folder(tmp_path, f".extracted.partial-{dead_owner}-z1pz1p00")

    dest = safe_extract(tmp_path / "data.zip", tmp_path / "extracted")

    assert not leftover.exists() and snapshot(dest) == {"colours/red/a.png": b"a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip", "extracted"]


def test_the_checkpoint_cache_is_swept_when_used(vp_home: Path, dead_owner: str) -> None:
    data = b"weights"
    sha = hashlib.sha256(data).hexdigest()
    cached = checkpoints_cache() / sha
    cached.mkdir(parents=True)
    (cached / "model.safetensors").write_bytes(data)
    leftover = staging_folder(checkpoints_cache(), f".{'f' * 64}.partial-{dead_owner}-ckpt0000")

    found = download_checkpoint_folder(None, "r2://bucket/checkpoints/jobs/7/best/", main_file="model.safetensors",
                                       main_sha256=sha, max_bytes=MAX_CHECKPOINT_BYTES)

    assert found == cached and not leftover.exists() and snapshot(cached) == {"model.safetensors": data}
