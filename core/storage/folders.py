"""Folders in the bucket: a folder checkpoint (transformers ``save_pretrained``) and a dataset given as
an ``r2://`` folder prefix or ``.zip``, each downloaded whole or not at all.

A folder is uploaded file by file through the outbox (one row per file, keys under the folder's
prefix: ``checkpoints/projects/{project}/jobs/{job}/best/config.json`` …), so a folder upload resumes
and skips what the bucket already holds exactly as a single file does. Downloading lists the prefix,
fetches every object verified (size, sha256 metadata or MD5 ETag) into a hidden staging folder beside
the target and renames it into place at the end: an interrupted or cancelled download (Ctrl+C, the
GUI's Cancel) never leaves a folder that looks complete, and a complete one is reused. Staging folders a
killed process left behind are swept when the cache is next used (``core.staging``).

A dataset's cache entry is named by what the bucket holds, which only the bucket can tell; so each
complete download also records, last, which entry holds the URL (``.sources/``). Offline (or with the
endpoint unreachable) that record finds the copy without asking the bucket: :func:`cached_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from core.staging import make_staging_dir, sweep_staging
from core.storage.errors import MAX_DATASET_BYTES, StorageError, check_size
from core.storage.r2url import make_r2_url, parse_r2_url

ByteProgress = Callable[[int, int], None]
ARCHIVE_SUFFIX = ".zip"
DATASET_FOLDER_PREFIX = "r2-"  # cached datasets: <cache>/downloads/r2-<identity>/
SOURCES_FOLDER = ".sources"  # <cache>/downloads/.sources/<hash of the URL>.json: its last complete download


class EndpointUnreachable(StorageError):
    """The storage endpoint could not be reached (no connection, timed out): not an answer from it."""


@dataclass(frozen=True)
class RemoteEntry:
    """One object under a prefix, as the bucket lists it."""

    key: str
    size: int
    etag: str


def folder_files(folder: Path) -> list[tuple[Path, str]]:
    """Every file of ``folder`` (recursively, sorted) with its relative POSIX path: what uploading it sends."""
    return [(file, file.relative_to(folder).as_posix()) for file in sorted(folder.rglob("*")) if file.is_file()]


def prefix_url(bucket: str, prefix: str) -> str:
    """The ``r2://bucket/prefix/`` URL of a folder (the trailing slash marks a folder)."""
    return make_r2_url(bucket, prefix.rstrip("/") + "/")


def is_folder_url(url: str) -> bool:
    return url.strip().endswith("/")


def list_prefix(client: Any, bucket: str, prefix: str) -> list[RemoteEntry]:
    """The objects under ``prefix`` (all pages, sorted by key), folder markers left out."""
    entries: list[RemoteEntry] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            key = str(item["Key"])
            if not key.endswith("/"):
                entries.append(RemoteEntry(key, int(item.get("Size", 0)), str(item.get("ETag", "")).strip('"')))
    return sorted(entries, key=lambda entry: entry.key)


def relative_path(key: str, prefix: str) -> PurePosixPath:
    """``key`` below ``prefix`` as a relative path; a key that would leave the folder is refused."""
    relative = PurePosixPath(key[len(prefix):])
    if not relative.parts or relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts) \
            or "\\" in str(relative) or ":" in str(relative):
        raise StorageError(f"r2 key {key!r} is not a safe file name below {prefix!r}; nothing was downloaded",
                           retryable=False)
    return relative


def download_prefix(client: Any, url: str, dest: Path, *, max_bytes: int,
                    expected: dict[str, str] | None = None, progress: ByteProgress | None = None) -> Path:
    """Download every object under the folder URL ``url`` into ``dest`` (which must not exist); returns it.

    ``expected`` maps relative paths to the sha256 they must have (else each object's sha256 metadata,
    else its MD5 ETag checks it). ``progress(received, total)`` counts bytes over the whole folder;
    raising from it cancels. Another process that finished the same ``dest`` first wins."""
    bucket, prefix = _folder_prefix(url)
    entries = list_prefix(client, bucket, prefix)
    if not entries:
        raise StorageError(f"{url}: no objects under this prefix", retryable=False)
    total = sum(entry.size for entry in entries)
    check_size(url, total, max_bytes, "the folder")
    staging = make_staging_dir(dest)
    try:
        done = 0
        for entry in entries:
            relative = relative_path(entry.key, prefix)
            _fetch_into(client, bucket, entry, staging / relative, max_bytes=max_bytes,
                        expected_sha256=(expected or {}).get(relative.as_posix()),
                        progress=None if progress is None else _offset(progress, done, total))
            done += entry.size
        return _move_into_place(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _folder_prefix(url: str) -> tuple[str, str]:
    bucket, key = parse_r2_url(url)
    return bucket, key.rstrip("/") + "/"


def _offset(progress: ByteProgress, done: int, total: int) -> ByteProgress:
    return lambda received, _size: progress(done + received, total)


def _fetch_into(client: Any, bucket: str, entry: RemoteEntry, target: Path, *, max_bytes: int,
                expected_sha256: str | None, progress: ByteProgress | None) -> None:
    from core.storage.client import download_verified, head, place

    url = make_r2_url(bucket, entry.key)
    remote = head(client, bucket, entry.key)
    if remote is None:
        raise StorageError(f"{url}: listed, then gone; download it again", retryable=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, _sha = download_verified(client, url, remote, target.parent, expected_sha256=expected_sha256 or remote.sha256,
                                  max_bytes=max_bytes, progress=progress)
    place(tmp, target)


def _move_into_place(staging: Path, dest: Path) -> Path:
    try:
        staging.rename(dest)
    except OSError:
        if not dest.is_dir():
            raise
    return dest


# -- folder checkpoints ---------------------------------------------------------------------------
def checkpoints_cache() -> Path:
    from core import paths

    return paths.cache_dir() / "checkpoints"


def cached_checkpoint_file(sha256: str, file_name: str) -> Path | None:
    """The file a folder checkpoint's row names (its sha256 given), inside a complete downloaded copy."""
    if not sha256 or not all(c in "0123456789abcdef" for c in sha256) or len(sha256) != 64:
        return None
    candidate = checkpoints_cache() / sha256 / file_name
    return candidate if candidate.is_file() else None


def download_checkpoint_folder(client: Any, url: str, *, main_file: str | None = None,
                               main_sha256: str | None = None, max_bytes: int,
                               progress: ByteProgress | None = None) -> Path:
    """A folder checkpoint (``r2://…/jobs/7/best/``) in the cache, downloaded unless already there.

    With the sha256 of its ``main_file`` (the file its row names) the copy is found without asking the
    bucket, and that file is checked against it; without, the copy is named by what the bucket lists."""
    sweep_staging(checkpoints_cache())
    if main_file and main_sha256:
        hit = cached_checkpoint_file(main_sha256, main_file)
        if hit is not None:
            return hit.parent
        target = checkpoints_cache() / main_sha256
        expected = {main_file: main_sha256}
    else:
        target, expected = remote_folder_cache(client, url, checkpoints_cache()), {}
    if target.is_dir():
        return target
    return download_prefix(client, url, target, max_bytes=max_bytes, expected=expected, progress=progress)


# -- datasets -------------------------------------------------------------------------------------
def remote_folder_cache(client: Any, url: str, cache_root: Path) -> Path:
    """Where the ``.zip`` or folder at ``url`` is (or will be) cached: named by the URL and what the
    bucket holds now (sha256 or ETag and size of every object), so a changed dataset is downloaded
    again and an unchanged one is reused."""
    from core.storage.client import head

    bucket, key = parse_r2_url(url)
    if key.lower().endswith(ARCHIVE_SUFFIX):
        remote = head(client, bucket, key)
        if remote is None:
            raise StorageError(f"{url}: no such object", retryable=False)
        identity = [f"{key}|{remote.sha256 or remote.etag}|{remote.size}"]
    else:
        prefix = key.rstrip("/") + "/"
        entries = list_prefix(client, bucket, prefix)
        if not entries:
            raise StorageError(f"{url}: no objects under this prefix (give a .zip or a folder prefix)", retryable=False)
        identity = [f"{entry.key}|{entry.etag}|{entry.size}" for entry in entries]
    digest = hashlib.sha256("\n".join([f"r2://{bucket}", *identity]).encode()).hexdigest()[:24]
    return cache_root / f"{DATASET_FOLDER_PREFIX}{digest}"


def fetch_dataset(client: Any, url: str, cache_root: Path, *, progress: ByteProgress | None = None) -> tuple[Path, bool]:
    """The dataset at ``url`` (a ``.zip``, extracted safely, or a folder prefix) in the cache; returns
    (its folder, whether it was downloaded now). A dataset already cached is reused (no transfer);
    a download that fails or is cancelled leaves nothing in the cache. A connection that fails (no
    answer from the endpoint) raises :class:`EndpointUnreachable`."""
    cache_root.mkdir(parents=True, exist_ok=True)
    sweep_staging(cache_root)
    with _unreachable_as_error(url):
        target = remote_folder_cache(client, url, cache_root)
        downloaded = not target.is_dir()
        if downloaded and parse_r2_url(url)[1].lower().endswith(ARCHIVE_SUFFIX):
            _fetch_archive(client, url, target, progress)
        elif downloaded:
            download_prefix(client, url, target, max_bytes=MAX_DATASET_BYTES, progress=progress)
    _record_source(cache_root, url, target)
    return target, downloaded


def cached_dataset(url: str, cache_root: Path) -> Path | None:
    """The folder the last complete download of ``url`` left in the cache, found without the bucket
    (it may be out of date); None when none is there."""
    try:
        record = json.loads(_source_record(cache_root, url).read_text(encoding="utf-8"))
        name = str(record["folder"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    folder = cache_root / name
    safe = name.startswith(DATASET_FOLDER_PREFIX) and Path(name).name == name
    return folder if safe and folder.is_dir() else None


def _source_record(cache_root: Path, url: str) -> Path:
    bucket, key = parse_r2_url(url)
    if not key.lower().endswith(ARCHIVE_SUFFIX):
        key = key.rstrip("/") + "/"  # a folder with or without its trailing slash
    return cache_root / SOURCES_FOLDER / f"{hashlib.sha256(make_r2_url(bucket, key).encode()).hexdigest()[:24]}.json"


def _record_source(cache_root: Path, url: str, folder: Path) -> None:
    """Remember that ``folder`` (complete: renamed into place) holds ``url`` now; written last."""
    from core.files import atomic_write_bytes

    if cached_dataset(url, cache_root) == folder:
        return
    record = {"url": url, "folder": folder.name}
    atomic_write_bytes(_source_record(cache_root, url), json.dumps(record).encode())


@contextmanager
def _unreachable_as_error(url: str) -> Iterator[None]:
    """botocore's connection failures (refused, timed out, dropped) as :class:`EndpointUnreachable`; an
    error the endpoint answers (denied, not found, 5xx) stays what it is."""
    try:
        yield
    except Exception as exc:
        if _is_connection_failure(exc):
            raise EndpointUnreachable(f"{url}: the storage endpoint is unreachable ({exc})") from exc
        raise


def _is_connection_failure(exc: BaseException) -> bool:
    from botocore import exceptions

    failures = (exceptions.ConnectionError, exceptions.ReadTimeoutError, exceptions.ConnectionClosedError,
                exceptions.ResponseStreamingError)  # the last: the connection dropped mid-download
    return isinstance(exc, failures)


def _fetch_archive(client: Any, url: str, target: Path, progress: ByteProgress | None) -> Path:
    from core.datasets.zipsafe import safe_extract
    from core.storage.client import download_file

    archive = download_file(client, url, max_bytes=MAX_DATASET_BYTES, progress=progress)
    staging = make_staging_dir(target)
    try:
        safe_extract(archive, staging / "dataset", max_total_bytes=MAX_DATASET_BYTES)
        return _move_into_place(staging / "dataset", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)  # the extracted folder is the cache entry; the zip would double it
