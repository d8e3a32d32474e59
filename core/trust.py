"""Which weights files may be unpickled: decided by content (sha256), never by the folder a file is in.

A ``.pt`` written by Ultralytics is a pickle of the model object, so loading it runs whatever code
the file names (matrix rows 27-28). The app unpickles a file only when its sha256 is one this app
wrote (a checkpoint row), one the user consented to when importing it (recorded in the database by
``core.services.checkpoints``), or when the user consents to this one load (``predict --trust``, the
app's dialog). Safetensors files hold no code and need no consent.

Workers never read the database, so core decides and passes the decision on: per request to the
inference worker (``trusted`` plus the sha256 core vouched for, which the worker checks against the
file before loading it), and to training workers as this module's manifest of consented hashes,
which core rewrites whenever it records one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from core import paths
from core.files import atomic_write_bytes, sha256_file

SAFE_SUFFIXES = (".safetensors",)  # tensors only: nothing in the file can run
MANIFEST_FILE = "trusted_weights.json"
# Ends every refusal: the Inference page and ``load_model`` recognise a load that consent would allow.
CONSENT_MARKER = "confirm to trust it"


def needs_consent(path: str | Path) -> bool:
    """Whether loading ``path`` may unpickle it (everything but safetensors)."""
    return Path(path).suffix.lower() not in SAFE_SUFFIXES


def refusal(path: str | Path) -> str:
    """The message of a refused load: names the file and the risk."""
    return (f"{path} is not a file this app wrote or one you chose to trust; loading it runs any code stored in "
            f"the file (a pickle); {CONSENT_MARKER}")


def manifest_path() -> Path:
    return paths.data_dir() / MANIFEST_FILE


def read_manifest() -> frozenset[str]:
    """The sha256 of every weights file the user consented to (empty when none or unreadable)."""
    try:
        data = json.loads(manifest_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(h for h in data if isinstance(h, str)) if isinstance(data, list) else frozenset()


def write_manifest(hashes: Iterable[str]) -> None:
    atomic_write_bytes(manifest_path(), json.dumps(sorted(set(hashes)), indent=0).encode("utf-8"))


def is_consented(path: Path) -> bool:
    """Whether the file's content is one the user consented to (hashes it only when any consent exists)."""
    hashes = read_manifest()
    return bool(hashes) and sha256_file(path) in hashes
