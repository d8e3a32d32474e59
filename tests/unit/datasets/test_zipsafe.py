from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from core.datasets import open_dataset
from core.datasets.errors import DatasetError
from core.datasets.zipsafe import safe_extract
from tests.helpers.datasets_gen import make_dice_detection


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def assert_nothing_left(tmp_path: Path, dest: Path, before: set[Path]) -> None:
    assert not dest.exists()
    assert set(tmp_path.rglob("*")) == before  # no staging folder, nothing written anywhere


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "'..'"),
        ("ok/../../evil.txt", "'..'"),
        ("/etc/evil.txt", "absolute"),
        ("C:/evil.txt", "drive-letter"),
        ("C:evil.txt", "drive-letter"),
        ("..\\evil.txt", "backslash"),
        ("dir\\evil.txt", "backslash"),
    ],
)
def test_path_escapes_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("good.txt", b"fine"), (name, b"evil")])
    dest = tmp_path / "out" / "dest"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match=rf"bad\.zip.*{reason}"):
        safe_extract(zip_path, dest)
    assert_nothing_left(tmp_path, dest, before)
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zip_path = make_zip(tmp_path / "link.zip", [("a.txt", b"a"), (info, b"/etc/passwd")])
    dest = tmp_path / "dest"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_extract(zip_path, dest)
    assert_nothing_left(tmp_path, dest, before)


def test_zip_bomb_ratio_cap(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "bomb.zip", [("zeros.bin", b"\x00" * (20 * 1024 * 1024))])
    assert zip_path.stat().st_size < 100 * 1024
    dest = tmp_path / "dest"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match="compression-ratio limit"):
        safe_extract(zip_path, dest)
    assert_nothing_left(tmp_path, dest, before)


def test_total_size_and_file_count_caps(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "many.zip", [(f"f{i}.txt", b"x" * 100) for i in range(50)], zipfile.ZIP_STORED)
    with pytest.raises(DatasetError, match="over the 10 limit"):
        safe_extract(zip_path, tmp_path / "a", max_files=10)
    with pytest.raises(DatasetError, match="over the 1,000 limit"):
        safe_extract(zip_path, tmp_path / "b", max_total_bytes=1000)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lying_sizes_are_caught_while_streaming(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "lie.zip", [("a.bin", b"y" * 5000)], zipfile.ZIP_STORED)
    data = bytearray(zip_path.read_bytes())
    # Patch the central directory's uncompressed size (offset 24 in the entry) to claim 10 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    zip_path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="lie.zip"):
        safe_extract(zip_path, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fake.zip"
    path.write_bytes(b"hello")
    with pytest.raises(DatasetError, match="fake.zip.*not a readable zip"):
        safe_extract(path, tmp_path / "dest")


def test_good_zip_extracts_and_opens_from_cache(tmp_path: Path, _isolated_home: Path) -> None:
    src = make_dice_detection(tmp_path / "src" / "mydata", n=4)
    zip_path = tmp_path / "data.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(src.rglob("*")):
            archive.write(path, path.relative_to(src.parent).as_posix())
        archive.writestr("__MACOSX/._junk", b"ignored")
    index = open_dataset(zip_path)
    assert index.format == "dice" and len(index.images) == 4
    assert index.root.name == "mydata"  # the single top folder becomes the root
    assert index.root.is_relative_to(_isolated_home / "cache" / "datasets")
    assert index.source == zip_path
    again = open_dataset(zip_path)  # cached: same folder, no second extraction
    assert again.root == index.root
    explicit = open_dataset(zip_path, extract_to=tmp_path / "explicit")
    assert explicit.root == tmp_path / "explicit" / "mydata"
