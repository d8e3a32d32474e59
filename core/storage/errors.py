"""Storage errors and the design document's size limits (checked before any byte is transferred)."""

from __future__ import annotations

# Design document, appendix C "File Size Limits": checkpoint 500 MB, dataset 5 GB (binary units: a
# file the original tools call "500 MB" must pass).
MAX_CHECKPOINT_BYTES = 500 * 1024**2
MAX_DATASET_BYTES = 5 * 1024**3


class StorageError(RuntimeError):
    """A transfer that did not happen or did not verify.

    ``retryable``: False when trying again cannot help (file missing, over the size limit, local
    file changed); the outbox then stops retrying the row until the user asks.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def check_size(path_or_name: str, size: int, limit: int, what: str) -> None:
    if size > limit:
        raise StorageError(
            f"{path_or_name}: {what} is {human_size(size)}, over the {human_size(limit)} limit; nothing was transferred",
            retryable=False,
        )
