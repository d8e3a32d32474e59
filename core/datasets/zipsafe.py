"""Extract a user's .zip without trusting it.

``zipfile.extractall`` sanitises names but checks no sizes (cpython #83522), and a crafted archive
can overlap entries or lie about sizes. Here every entry name is validated before anything is
written, symlinks are refused, declared sizes, entry counts and compression ratios are capped, and
the actual decompressed bytes are counted while streaming. Everything lands in a staging folder
next to ``dest`` (``core.staging``) that is renamed into place only when the whole archive passed; on
any rejection the staging folder is removed, so nothing is ever left behind or written outside
``dest``. Staging folders of an extraction killed midway are swept by the next one into that folder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from core.datasets.errors import DatasetError
from core.staging import make_staging_dir, sweep_staging

_CHUNK = 1024 * 1024
# Ratio checks apply only to entries (and archives) big enough to matter: a small JSON of spaces can
# compress 300:1 legitimately, a 200 MB file of zeros cannot be a dataset image.
_RATIO_MIN_ENTRY_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_SKIPPED_PREFIXES = ("__MACOSX/",)


def _check_name(zip_path: Path, name: str) -> list[str]:
    """The entry's path parts, or DatasetError if the name could escape the destination."""
    problem = None
    if not name or "\x00" in name:
        problem = "an empty or NUL-containing name"
    elif "\\" in name:
        problem = "a backslash (a Windows path that could escape the folder)"
    elif name.startswith("/"):
        problem = "an absolute path"
    elif _DRIVE.match(name):
        problem = "a drive-letter path"
    else:
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if any(part == ".." for part in parts):
            problem = "a '..' component"
        else:
            return parts
    raise DatasetError(f"{zip_path}: refused: entry {name!r} has {problem}")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _check_overlap(zip_path: Path, infos: list[zipfile.ZipInfo]) -> None:
    # A local header is at least 30 bytes + the name; entries whose data regions overlap are the
    # building block of "quoted overlap" bombs (gh-109858).
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for current, following in zip(ordered, ordered[1:], strict=False):
        end = current.header_offset + 30 + len(current.orig_filename.encode()) + current.compress_size
        if end > following.header_offset:
            raise DatasetError(
                f"{zip_path}: refused: entries {current.filename!r} and {following.filename!r} overlap "
                "(a zip bomb construction)"
            )


def safe_extract(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_total_bytes: int = 5 * 1024**3,
    max_files: int = 200_000,
    max_ratio: float = 200,
) -> Path:
    """Extract ``zip_path`` into ``dest`` (which must not exist, or be an empty folder); returns ``dest``.

    Raises DatasetError naming the archive and the reason for any unsafe or oversized archive; in that
    case nothing is left on disk.
    """
    zip_path = Path(zip_path)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DatasetError(f"{dest}: extraction target exists and is not an empty folder")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{zip_path}: not a readable zip archive ({exc})") from exc

    staging: Path | None = None
    try:
        with archive:
            infos = [i for i in archive.infolist() if not i.filename.startswith(_SKIPPED_PREFIXES)]
            if len(infos) > max_files:
                raise DatasetError(f"{zip_path}: refused: {len(infos):,} entries, over the {max_files:,} limit")
            planned: list[tuple[zipfile.ZipInfo, list[str]]] = []
            seen: set[str] = set()
            declared_total = 0
            compressed_total = 0
            for info in infos:
                parts = _check_name(zip_path, info.filename)
                if _is_symlink(info):
                    raise DatasetError(f"{zip_path}: refused: entry {info.filename!r} is a symbolic link")
                key = "/".join(parts).lower()  # case-insensitive: the same file on Windows/macOS
                if not info.is_dir():
                    if key in seen:
                        raise DatasetError(f"{zip_path}: refused: entry {info.filename!r} appears twice")
                    seen.add(key)
                    if info.file_size >= _RATIO_MIN_ENTRY_BYTES and info.file_size > max_ratio * max(
                        info.compress_size, 1
                    ):
                        raise DatasetError(
                            f"{zip_path}: refused: entry {info.filename!r} expands "
                            f"{info.file_size / max(info.compress_size, 1):.0f}x, over the {max_ratio:.0f}x "
                            "compression-ratio limit (zip bomb?)"
                        )
                    declared_total += info.file_size
                    compressed_total += info.compress_size
                if parts:
                    planned.append((info, parts))
            if declared_total > max_total_bytes:
                raise DatasetError(
                    f"{zip_path}: refused: {declared_total:,} bytes uncompressed, over the {max_total_bytes:,} limit"
                )
            if declared_total >= _RATIO_MIN_ENTRY_BYTES and declared_total > max_ratio * max(compressed_total, 1):
                raise DatasetError(
                    f"{zip_path}: refused: the archive expands {declared_total / max(compressed_total, 1):.0f}x, "
                    f"over the {max_ratio:.0f}x compression-ratio limit (zip bomb?)"
                )
            _check_overlap(zip_path, [info for info, _ in planned if not info.is_dir()])

            sweep_staging(dest.parent)
            staging = make_staging_dir(dest)
            staging_root = os.path.realpath(staging)
            written = 0
            for info, parts in planned:
                target = staging.joinpath(*parts)
                # Belt and braces: the validated name cannot escape, but check the resolved path anyway.
                if not os.path.realpath(target).startswith(staging_root + os.sep):
                    raise DatasetError(f"{zip_path}: refused: entry {info.filename!r} resolves outside the folder")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                entry_written = 0
                with archive.open(info) as source, open(target, "xb") as sink:
                    while chunk := source.read(_CHUNK):
                        entry_written += len(chunk)
                        written += len(chunk)
                        # Count real bytes: the sizes in the directory may lie.
                        if entry_written > info.file_size or written > max_total_bytes:
                            raise DatasetError(
                                f"{zip_path}: refused: entry {info.filename!r} expands beyond its declared "
                                "size or the total size limit"
                            )
                        sink.write(chunk)
            if dest.exists():
                dest.rmdir()
            os.replace(staging, dest)
    except DatasetError:
        _discard(staging)
        raise
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as exc:
        _discard(staging)
        raise DatasetError(f"{zip_path}: extraction failed ({exc})") from exc
    return dest


def _discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
