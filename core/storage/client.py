"""The S3 client for Cloudflare R2 (and any S3-compatible endpoint), uploads and verified downloads.

R2 compatibility, and why each choice:
- ``request_checksum_calculation="when_required"``: boto3 >= 1.36 otherwise adds CRC checksums to
  every PutObject/UploadPart, sent as an ``aws-chunked`` trailer that R2 rejects; we send
  ``Content-MD5`` per request instead (R2 accepts it) and keep our own sha256 in the metadata.
- Multipart parts all have the same size except the last (R2 requires equal non-final parts), so we
  split the file ourselves instead of letting s3transfer decide.
- ``retries={"mode": "standard", "max_attempts": 3}`` retries 5xx, throttling and connection errors
  with backoff; connect/read timeouts keep a dead endpoint from hanging a thread for minutes.
- Path-style addressing: works for R2, MinIO and SeaweedFS without wildcard DNS.

boto3 is imported inside the functions: ``import core.storage`` must stay cheap for the GUI.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import faults, paths
from core.staging import make_staging_file, sweep_staging
from core.storage.errors import MAX_CHECKPOINT_BYTES, StorageError, check_size
from core.storage.r2url import make_r2_url, parse_r2_url

if TYPE_CHECKING:
    from core.settings import Settings
    from core.storage.credentials import Credentials

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB  # also the multipart threshold; R2 parts must be >= 5 MiB
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
DEFAULT_CONCURRENCY = 4
READ_CHUNK = 1 * MiB
SHA256_METADATA_KEY = "sha256"  # sent as x-amz-meta-sha256
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")


def make_s3_client(
    settings: Settings,
    creds: Credentials | None,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 30,
    max_attempts: int = 3,
) -> Any:
    """A boto3 S3 client for the configured endpoint; raises StorageError when not configured."""
    if creds is None:
        raise StorageError("no R2/S3 credentials: set them in Settings or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    if not settings.r2_endpoint_url:
        raise StorageError("no R2/S3 endpoint URL: set it in Settings or AWS_S3_ENDPOINT_URL")
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.r2_region or "auto",
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        max_pool_connections=max(10, DEFAULT_CONCURRENCY * 2),
    )
    # A private session: never pick up a developer's ~/.aws profile or a default session's state.
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=settings.r2_endpoint_url,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=config,
    )


def client_from_settings(settings: Settings, creds: Credentials | None = None) -> Any:
    if creds is None:
        from core.storage.credentials import get_credentials

        creds = get_credentials()
    return make_s3_client(settings, creds)


# -- hashing --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str
    part_size: int
    part_md5s: tuple[bytes, ...]  # one per part; one entry for a single PUT
    multipart: bool

    def expected_etag(self) -> str:
        """The ETag S3-compatible stores compute: md5, or md5 of the part md5s plus "-N"."""
        if not self.multipart:
            return self.part_md5s[0].hex()
        return f"{hashlib.md5(b''.join(self.part_md5s)).hexdigest()}-{len(self.part_md5s)}"


def plan_part_size(size: int, part_size: int) -> int:
    """Our part size, raised only when the file would need more than 10,000 parts (never for 500 MB)."""
    part = max(part_size, MIN_PART_SIZE)
    while size > part * MAX_PARTS:
        part *= 2
    return part


def digest_file(path: Path, part_size: int, threshold: int | None = None) -> FileDigest:
    """One pass over the file: sha256 of the whole, md5 of each part (for Content-MD5 and the ETag)."""
    size = path.stat().st_size
    threshold = part_size if threshold is None else threshold
    single = size <= threshold
    part_size = plan_part_size(size, part_size)
    sha = hashlib.sha256()
    md5s: list[bytes] = []
    with open(path, "rb") as handle:
        if single:
            md5 = hashlib.md5()
            while chunk := handle.read(READ_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
            md5s.append(md5.digest())
        else:
            while True:
                md5 = hashlib.md5()
                remaining = part_size
                got = 0
                while remaining and (chunk := handle.read(min(READ_CHUNK, remaining))):
                    sha.update(chunk)
                    md5.update(chunk)
                    remaining -= len(chunk)
                    got += len(chunk)
                if not got:
                    break
                md5s.append(md5.digest())
    return FileDigest(size, sha.hexdigest(), size if single else part_size, tuple(md5s), multipart=not single)


# -- upload ---------------------------------------------------------------------------------------
@dataclass
class UploadResult:
    bucket: str
    key: str
    sha256: str
    size: int
    etag: str
    parts: int
    skipped: bool = False  # the bucket already held this exact object

    @property
    def url(self) -> str:
        return make_r2_url(self.bucket, self.key)


@dataclass
class RemoteObject:
    size: int
    sha256: str | None
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


def _is_not_found(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("404", "NoSuchKey", "NotFound") or status == 404
    return False


def head(client: Any, bucket: str, key: str) -> RemoteObject | None:
    try:
        response = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _is_not_found(exc):
            return None
        raise
    metadata = {str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()}
    return RemoteObject(
        size=int(response.get("ContentLength", -1)),
        sha256=metadata.get(SHA256_METADATA_KEY),
        etag=str(response.get("ETag", "")).strip('"'),
        metadata=metadata,
    )


def verify_remote(client: Any, bucket: str, key: str, digest: FileDigest) -> RemoteObject:
    """The bucket holds our bytes: size, our sha256 metadata and (when comparable) the content ETag."""
    remote = head(client, bucket, key)
    if remote is None:
        raise StorageError(f"r2://{bucket}/{key}: not found after upload")
    problems = []
    if remote.size != digest.size:
        problems.append(f"size {remote.size} != {digest.size}")
    if remote.sha256 != digest.sha256:
        problems.append(f"sha256 metadata {remote.sha256!r} != {digest.sha256}")
    # The ETag is computed by the server from the bytes it stored: it checks content, not just the
    # metadata we sent. Only compared when it has the MD5 form (some stores use other ETags).
    if _MD5_ETAG.match(remote.etag) and remote.etag != digest.expected_etag():
        problems.append(f"ETag {remote.etag} != {digest.expected_etag()}")
    if problems:
        raise StorageError(f"r2://{bucket}/{key} does not match the local file: {'; '.join(problems)}")
    return remote


def _read_part(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise StorageError(f"{path}: file changed during upload (short read)", retryable=False)
    return data


def abort_multipart(client: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:
        if not _is_not_found(exc):
            raise


@dataclass
class MultipartProgress:
    """How far a multipart upload got: what resuming it after a kill needs (the outbox saves it).

    ``etags`` maps each finished part number to the ETag the bucket answered. A resume reuses the
    upload only for the same file (``sha256``) and the same ``part_size``: R2 requires equal
    non-final parts across the whole upload.
    """

    upload_id: str
    part_size: int
    sha256: str
    etags: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingMultipart:
    """A multipart upload the bucket lists as started and not completed."""

    key: str
    upload_id: str
    initiated: datetime | None  # naive UTC


def list_multipart_uploads(client: Any, bucket: str, prefix: str) -> list[PendingMultipart]:
    """Every unfinished multipart upload under ``prefix`` (all pages)."""
    found: list[PendingMultipart] = []
    markers: dict[str, str] = {}
    while True:
        page = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, **markers)
        for item in page.get("Uploads", []) or []:
            found.append(PendingMultipart(str(item["Key"]), str(item["UploadId"]), _naive_utc(item.get("Initiated"))))
        if not page.get("IsTruncated"):
            return found
        markers = {"KeyMarker": page.get("NextKeyMarker", ""), "UploadIdMarker": page.get("NextUploadIdMarker", "")}


def _naive_utc(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def upload_file(
    client: Any,
    path: str | Path,
    bucket: str,
    key: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    threshold: int | None = None,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
    expected_sha256: str | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    resume: MultipartProgress | None = None,
    on_multipart_progress: Callable[[MultipartProgress], None] | None = None,
    on_part_done: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> UploadResult:
    """Upload ``path`` to ``bucket/key`` and verify it; returns what the bucket now holds.

    Files up to ``threshold`` (default: the part size) go in one PUT, larger ones as a multipart
    upload with equal parts. Both carry ``Content-MD5`` and the file's sha256 as metadata. An object
    already present with the same size and sha256 is not sent again. Raises StorageError (or the
    botocore error) on failure; a failed multipart upload is aborted so no parts linger.

    ``resume``: a multipart upload a killed process left (its part size wins over ``part_size``).
    It is continued when the file is unchanged, sending only the parts the bucket does not hold,
    and aborted otherwise. ``on_multipart_progress`` gets a snapshot at the start and after every
    part, so the caller can save it and resume after a kill.
    """
    source = Path(path)
    if not source.is_file():
        raise StorageError(f"{source}: file not found", retryable=False)
    check_size(str(source), source.stat().st_size, max_bytes, "the file")
    digest = digest_file(source, resume.part_size if resume else part_size, threshold)
    if expected_sha256 and digest.sha256 != expected_sha256:
        raise StorageError(
            f"{source}: sha256 {digest.sha256[:12]}… differs from the recorded {expected_sha256[:12]}… "
            "(the file changed since it was recorded)",
            retryable=False,
        )
    if resume is not None and not _resumable(resume, digest):
        log.info("multipart upload %s of %s is for other bytes or parts; aborting it", resume.upload_id, key)
        abort_multipart(client, bucket, key, resume.upload_id)
        resume = None
    existing = head(client, bucket, key)
    if existing is not None and existing.sha256 == digest.sha256 and existing.size == digest.size:
        if resume is not None:  # killed after completing, before recording it
            abort_multipart(client, bucket, key, resume.upload_id)
        remote = verify_remote(client, bucket, key, digest)
        return UploadResult(bucket, key, digest.sha256, digest.size, remote.etag, len(digest.part_md5s), skipped=True)

    if not digest.multipart:
        _put_single(client, source, bucket, key, digest)
        if on_part_done:
            on_part_done(1, 1)
    else:
        upload = _MultipartUpload(client, source, bucket, key, digest, on_multipart_progress, on_part_done, should_stop)
        upload.run(resume, max_concurrency)
    remote = verify_remote(client, bucket, key, digest)
    return UploadResult(bucket, key, digest.sha256, digest.size, remote.etag, len(digest.part_md5s))


def _resumable(resume: MultipartProgress, digest: FileDigest) -> bool:
    return digest.multipart and resume.sha256 == digest.sha256 and resume.part_size == digest.part_size


def _put_single(client: Any, source: Path, bucket: str, key: str, digest: FileDigest) -> None:
    with open(source, "rb") as handle:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=handle,
            ContentLength=digest.size,
            ContentMD5=base64.b64encode(digest.part_md5s[0]).decode(),
            Metadata={SHA256_METADATA_KEY: digest.sha256},
        )


class _MultipartUpload:
    """One multipart upload of ``source``: started or resumed, parts sent in parallel, completed.

    Any failure inside this process aborts the upload (no parts linger). A kill cannot abort: the
    progress the caller saved lets the next attempt resume, and the outbox's orphan sweep aborts
    what nobody recorded.
    """

    def __init__(
        self,
        client: Any,
        source: Path,
        bucket: str,
        key: str,
        digest: FileDigest,
        on_progress: Callable[[MultipartProgress], None] | None,
        on_part_done: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.client, self.source, self.bucket, self.key, self.digest = client, source, bucket, key, digest
        self.on_progress, self.on_part_done, self.should_stop = on_progress, on_part_done, should_stop
        self.total = len(digest.part_md5s)
        self.progress = MultipartProgress("", digest.part_size, digest.sha256)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self, resume: MultipartProgress | None, max_concurrency: int) -> None:
        self.progress.upload_id, self.progress.etags = self._start(resume)
        self._report()
        try:
            self._send_missing(max_concurrency)
            etags = self.progress.etags
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.progress.upload_id,
                MultipartUpload={"Parts": [{"ETag": etags[n], "PartNumber": n} for n in range(1, self.total + 1)]},
            )
        except BaseException:
            try:
                abort_multipart(self.client, self.bucket, self.key, self.progress.upload_id)
            except Exception as exc:  # endpoint gone: the outbox's orphan sweep aborts it later
                log.warning("could not abort multipart upload %s of %s: %s", self.progress.upload_id, self.key, exc)
            raise

    def _start(self, resume: MultipartProgress | None) -> tuple[str, dict[int, str]]:
        """The resumed upload id and its verified parts, or a new upload with none."""
        if resume is not None:
            parts = self._verified_parts(resume)
            if parts is not None:
                log.info("resuming multipart upload of %s: %d of %d parts already there", self.key,
                         len(parts), self.total)
                return resume.upload_id, parts
        metadata = {SHA256_METADATA_KEY: self.digest.sha256}
        created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, Metadata=metadata)
        return str(created["UploadId"]), {}

    def _verified_parts(self, resume: MultipartProgress) -> dict[int, str] | None:
        """Parts recorded as sent that the bucket lists with the same ETag, equal to our part's MD5.

        None when the bucket no longer knows the upload (completed, aborted or expired)."""
        try:
            listed = self._listed_parts(resume.upload_id)
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise
        kept = {}
        for number, etag in resume.etags.items():
            ours = self.digest.part_md5s[number - 1].hex() if 1 <= number <= self.total else None
            if ours is not None and listed.get(number) == etag.strip('"') == ours:
                kept[number] = etag
        return kept

    def _listed_parts(self, upload_id: str) -> dict[int, str]:
        listed: dict[int, str] = {}
        marker = 0
        while True:
            page = self.client.list_parts(Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                                          PartNumberMarker=marker)
            for part in page.get("Parts", []) or []:
                listed[int(part["PartNumber"])] = str(part["ETag"]).strip('"')
            if not page.get("IsTruncated"):
                return listed
            marker = int(page["NextPartNumberMarker"])

    def _send_missing(self, max_concurrency: int) -> None:
        missing = [n for n in range(1, self.total + 1) if n not in self.progress.etags]
        if not missing:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(missing))),
                                thread_name_prefix="s3-part") as pool:
            futures: list[Future[None]] = [pool.submit(self._send, n) for n in missing]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                self.stop.set()
                for future in futures:
                    future.cancel()
                error = failed[0].exception()
                assert error is not None
                raise error

    def _send(self, number: int) -> None:
        if self.stop.is_set() or (self.should_stop is not None and self.should_stop()):
            self.stop.set()
            raise StorageError("upload stopped", retryable=True)
        offset = (number - 1) * self.digest.part_size
        length = min(self.digest.part_size, self.digest.size - offset)
        data = _read_part(self.source, offset, length)
        md5 = hashlib.md5(data).digest()
        if md5 != self.digest.part_md5s[number - 1]:
            raise StorageError(f"{self.source}: file changed during upload (part {number})", retryable=False)
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.progress.upload_id,
            PartNumber=number,
            Body=data,
            ContentLength=length,
            ContentMD5=base64.b64encode(md5).decode(),
        )
        with self.lock:  # one snapshot at a time: a saved snapshot is never older than the last saved
            self.progress.etags[number] = str(response["ETag"])
            self._report()
            done = len(self.progress.etags)
            faults.kill_after("kill_after_upload_part", done)  # tests only: exactly `done` parts recorded
        if self.on_part_done:
            self.on_part_done(done, self.total)

    def _report(self) -> None:
        if self.on_progress:
            progress = self.progress
            self.on_progress(MultipartProgress(progress.upload_id, progress.part_size, progress.sha256,
                                               dict(progress.etags)))


# -- download -------------------------------------------------------------------------------------
def objects_dir() -> Path:
    folder = paths.cache_dir() / "objects"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_object(sha256: str) -> Path | None:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        return None
    candidate = objects_dir() / sha256
    return candidate if candidate.is_file() else None


def download_file(
    client: Any,
    url: str,
    *,
    expected_sha256: str | None = None,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download ``r2://bucket/key`` into the content-addressed cache; returns the cached file.

    ``progress(received, total)`` is called after every chunk; an exception it raises (a cancel)
    stops the download and leaves nothing behind.

    The cache key is the sha256 (``expected_sha256``, else the object's ``sha256`` metadata): an
    object already cached is not downloaded again. Bytes go to a temp file in the cache folder and
    become ``objects/<sha256>`` only after the hash checked out (atomic ``os.replace``), so an
    interrupted or corrupted download never becomes a cache entry.
    """
    if expected_sha256:
        hit = cached_object(expected_sha256)
        if hit is not None:
            return hit
    bucket, key = parse_r2_url(url)
    remote = head(client, bucket, key)
    if remote is None:
        raise StorageError(f"{url}: no such object", retryable=False)
    check_size(url, remote.size, max_bytes, "the object")
    wanted = expected_sha256 or remote.sha256
    if wanted:
        hit = cached_object(wanted)
        if hit is not None:
            return hit
    folder = objects_dir()
    sweep_staging(folder)  # what a download killed midway left
    tmp, actual = download_verified(client, url, remote, folder, expected_sha256=wanted, max_bytes=max_bytes,
                                    progress=progress)
    return place(tmp, folder / actual)


def place(tmp: Path, target: Path) -> Path:
    """Rename a verified temp file to its final name (atomic); the temp file never stays behind."""
    try:
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def download_verified(
    client: Any,
    url: str,
    remote: RemoteObject,
    folder: Path,
    *,
    expected_sha256: str | None,
    max_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, str]:
    """Stream the object ``url`` (whose HEAD is ``remote``) into a temp file in ``folder``; returns the
    temp file (for the caller to rename into place) and its sha256. Checked: the size, the sha256
    (``expected_sha256``) and, for an object without one, a single-part MD5 ETag. On any failure,
    ``progress`` raising included (a cancel), the temp file is removed and the error raised."""
    bucket, key = parse_r2_url(url)
    fd, tmp = make_staging_file(folder, "object")
    try:
        digest, md5 = hashlib.sha256(), hashlib.md5()
        received = 0
        with os.fdopen(fd, "wb") as handle:
            response = client.get_object(Bucket=bucket, Key=key)
            for chunk in response["Body"].iter_chunks(READ_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise StorageError(f"{url}: larger than announced, over the limit; download stopped", retryable=False)
                digest.update(chunk)
                md5.update(chunk)
                handle.write(chunk)
                if progress is not None:
                    progress(received, remote.size)
            handle.flush()
            os.fsync(handle.fileno())
        actual = digest.hexdigest()
        if received != remote.size:
            raise StorageError(f"{url}: received {received} bytes, expected {remote.size}")
        if expected_sha256 and actual != expected_sha256:
            raise StorageError(f"{url}: sha256 {actual} does not match the expected {expected_sha256}; not cached")
        single_part_etag = _MD5_ETAG.match(remote.etag) and "-" not in remote.etag
        if not expected_sha256 and single_part_etag and remote.etag != md5.hexdigest():
            raise StorageError(f"{url}: content MD5 {md5.hexdigest()} does not match the ETag {remote.etag}")
        return tmp, actual
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download_checkpoint(
    url_or_path: str,
    *,
    client: Any | None = None,
    settings: Settings | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """The design document's ``download_checkpoint``: a local path is checked and returned, an r2:// URL cached."""
    from core.storage.r2url import is_r2_url

    if not is_r2_url(url_or_path):
        local = Path(url_or_path).expanduser()
        if not local.is_file():
            raise StorageError(f"{local}: checkpoint file not found", retryable=False)
        return local
    if client is None:
        if settings is None:
            raise StorageError("downloading needs the storage settings (endpoint, bucket)")
        client = client_from_settings(settings)
    return download_file(client, url_or_path, expected_sha256=expected_sha256, max_bytes=MAX_CHECKPOINT_BYTES)
