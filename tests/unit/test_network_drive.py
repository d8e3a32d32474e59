"""A data folder on a network file system is warned about (SQLite's WAL needs a local disk), with each
OS's answer faked: Linux's mount table, Windows' drive type and UNC paths, macOS's statfs. And the
default data folder per OS (macOS: ~/Library/Application Support)."""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from core import paths, platform

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/data nfs4 rw,vers=4.2 0 0
tmpfs /mnt/data/scratch tmpfs rw 0 0
//nas/share /mnt/with\\040space cifs rw 0 0
user@host:/home /home/me/remote fuse.sshfs rw 0 0
/dev/sdb1 /srv xfs rw 0 0
"""


@pytest.mark.parametrize(("path", "expected"), [
    ("/mnt/data/vp", "nfs4"), ("/mnt/data", "nfs4"), ("/mnt/data/scratch/vp", None), ("/mnt/with space/vp", "cifs"),
    ("/home/me/remote/vp", "fuse.sshfs"), ("/srv/vp", None), ("/mnt/database", None), ("/", None),
])
def test_linux_reads_the_mount_table(path: str, expected: str | None) -> None:
    assert platform._linux_network_filesystem(Path(path), MOUNTS) == expected


@pytest.mark.skipif(sys.platform != "linux", reason="a path in a Linux mount table")
def test_linux_reads_the_real_mount_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "mounts"
    table.write_text(f"server:/x {tmp_path} nfs rw 0 0\n")
    monkeypatch.setattr(platform, "_MOUNTS_FILE", table)
    assert platform.network_filesystem(tmp_path / "vp", "linux") == "nfs"
    monkeypatch.setattr(platform, "_MOUNTS_FILE", tmp_path / "missing")
    assert platform.network_filesystem(tmp_path / "vp", "linux") is None  # cannot tell: no warning


class FakeDrives:
    def __init__(self, remote: set[str]) -> None:
        self.remote, self.asked = remote, []

    def GetDriveTypeW(self, root: str) -> int:  # noqa: N802 (the Win32 name)
        self.asked.append(root)
        return platform.DRIVE_REMOTE if root in self.remote else 3  # DRIVE_FIXED


@pytest.mark.parametrize(("path", "expected"), [
    ("\\\\nas\\share\\vp", "a network share (\\\\nas\\share)"),
    ("\\\\?\\UNC\\nas\\share\\deep\\vp", "a network share (\\\\nas\\share)"),
    ("Z:\\vp", "a network drive (Z:)"),
    ("\\\\?\\Z:\\deep\\vp", "a network drive (Z:)"),
    ("C:\\Users\\me\\AppData\\Local\\VisionPlatform", None),
])
def test_windows_unc_paths_and_mapped_drives(path: str, expected: str | None) -> None:
    drives = FakeDrives({"Z:\\"})
    assert platform.network_filesystem(Path(path), "win32", kernel32=drives) == expected
    if expected is None or "drive" in expected:
        assert drives.asked == [path.removeprefix("\\\\?\\")[:2] + "\\"]


class FakeLibc:
    def __init__(self, fstype: bytes, result: int = 0) -> None:
        self.fstype, self.result, self.paths = fstype, result, []

    def statfs(self, path: bytes, out: Any) -> int:
        self.paths.append(path)
        out.contents.f_fstypename = self.fstype
        return self.result


def test_macos_asks_statfs_for_the_file_system_name(tmp_path: Path) -> None:
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(platform._MacStatfs) == 2168  # sys/mount.h, 64-bit inodes
    smb = FakeLibc(b"smbfs")
    assert platform._macos_network_filesystem(tmp_path, smb) == "smbfs" and smb.paths == [str(tmp_path).encode()]
    assert platform._macos_network_filesystem(tmp_path, FakeLibc(b"apfs")) is None
    assert platform._macos_network_filesystem(tmp_path, FakeLibc(b"nfs", result=-1)) is None  # statfs failed


def test_a_data_folder_on_a_network_drive_is_warned_about_once(vp_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(paths, "_warned", {})
    monkeypatch.setattr(paths.platform, "network_filesystem", lambda root: "nfs4" if root == vp_home else None)
    with caplog.at_level(logging.WARNING, logger="core.paths"):
        assert paths.db_path() == vp_home / "vision_platform.db"
        paths.db_path()
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.paths"]
    assert warnings == [f"The data folder {vp_home} is on a network file system (nfs4). Its database uses SQLite's "
                        "WAL mode, which does not work over a network file system: the database can be damaged. "
                        "Choose a folder on a local disk (Settings > Data folder, or the VP_HOME environment variable)."]
    assert paths.network_drive_warning(vp_home / "elsewhere") is None


def test_a_mapped_drive_is_named_in_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths.platform, "network_filesystem", lambda root: "a network drive (Z:)")
    assert (paths.network_drive_warning(Path("Z:/vp")) or "").startswith(f"The data folder {Path('Z:/vp')} is on a network drive (Z:). ")


def test_the_default_data_folder_of_each_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert paths.default_data_dir("darwin") == Path.home() / "Library" / "Application Support" / "VisionPlatform"
    assert paths.default_data_dir("linux") == Path.home() / ".local" / "share" / "VisionPlatform"
