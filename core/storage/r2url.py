"""``r2://bucket/key`` URLs (the design document's notation) and its bucket key layout."""

from __future__ import annotations

SCHEME = "r2://"


def parse_r2_url(url: str) -> tuple[str, str]:
    """``r2://bucket/a/b.pt`` -> ("bucket", "a/b.pt"). ``s3://`` is accepted as a synonym."""
    text = url.strip()
    for scheme in (SCHEME, "s3://"):
        if text.startswith(scheme):
            rest = text[len(scheme) :]
            break
    else:
        raise ValueError(f"not an r2:// URL: {url!r}")
    bucket, _, key = rest.partition("/")
    if not bucket or not key or key.startswith("/"):
        raise ValueError(f"an r2:// URL needs a bucket and a key: {url!r}")
    return bucket, key


def make_r2_url(bucket: str, key: str) -> str:
    if not bucket or "/" in bucket:
        raise ValueError(f"bad bucket name {bucket!r}")
    return f"{SCHEME}{bucket}/{key.lstrip('/')}"


def is_r2_url(text: str) -> bool:
    return text.strip().startswith((SCHEME, "s3://"))


CHECKPOINT_PREFIX = "checkpoints/"
DATASET_PREFIX = "datasets/"
KEY_PREFIXES = (CHECKPOINT_PREFIX, DATASET_PREFIX)  # every key the app writes starts with one of these


def checkpoint_key(project_id: int, job_id: int, name: str) -> str:
    """Key layout: checkpoints/projects/{project_id}/jobs/{job_id}/{best|last}.pt; a folder checkpoint's
    files go under checkpoints/projects/{project_id}/jobs/{job_id}/{best|last}/ (``name`` = ``best/config.json``)."""
    return f"{CHECKPOINT_PREFIX}projects/{project_id}/jobs/{job_id}/{name}"


def dataset_key(dataset_id: int | str) -> str:
    """Key layout: datasets/{dataset_id}/dataset.zip"""
    return f"{DATASET_PREFIX}{dataset_id}/dataset.zip"
