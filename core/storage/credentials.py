"""R2 / S3 keys: the OS keyring first, then a 0600 file, then the design document's environment variables.

Why a file fallback at all: headless Linux boxes often have no Secret Service, and keyring then
raises ``NoKeyringError``. We never fall back silently: :func:`save_credentials` returns a notice
that says where the keys went, and the GUI shows it. The keys never go to the settings table, the
logs or MLflow.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from core import paths

log = logging.getLogger(__name__)

SERVICE = "vision-platform"
ACCESS_KEY_USER = "r2_access_key_id"
SECRET_KEY_USER = "r2_secret_access_key"
ENV_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
ENV_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    source: str = "keyring"  # keyring | file | env


def credentials_file() -> Path:
    return paths.data_dir() / "credentials.json"


def _keyring_backend() -> object | None:
    """The keyring backend if it can store secrets, else None (no import cost until asked)."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring):
        return None
    priority = getattr(backend, "priority", 1)
    try:
        if float(priority) <= 0:  # e.g. a chainer with no usable backend
            return None
    except (TypeError, ValueError):
        pass
    return backend


def _from_keyring() -> Credentials | None:
    backend = _keyring_backend()
    if backend is None:
        return None
    import keyring

    try:
        access = keyring.get_password(SERVICE, ACCESS_KEY_USER)
        secret = keyring.get_password(SERVICE, SECRET_KEY_USER)
    except Exception as exc:  # locked or broken keyring: fall through to the other sources
        log.warning("OS keyring unavailable (%s); trying other credential sources", type(exc).__name__)
        return None
    if access and secret:
        return Credentials(access, secret, "keyring")
    return None


def _from_file() -> Credentials | None:
    target = credentials_file()
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    access, secret = data.get("access_key_id"), data.get("secret_access_key")
    if isinstance(access, str) and isinstance(secret, str) and access and secret:
        return Credentials(access, secret, "file")
    return None


def _from_env() -> Credentials | None:
    access, secret = os.environ.get(ENV_ACCESS_KEY), os.environ.get(ENV_SECRET_KEY)
    if access and secret:
        return Credentials(access, secret, "env")
    return None


def get_credentials() -> Credentials | None:
    """Keys from the keyring, the 0600 fallback file, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."""
    return _from_keyring() or _from_file() or _from_env()


def save_credentials(access_key: str, secret: str) -> str:
    """Store the keys; returns a sentence for the user saying where they are kept."""
    if not access_key or not secret:
        raise ValueError("both the access key id and the secret access key are required")
    if _keyring_backend() is not None:
        import keyring

        try:
            keyring.set_password(SERVICE, ACCESS_KEY_USER, access_key)
            keyring.set_password(SERVICE, SECRET_KEY_USER, secret)
        except Exception as exc:
            log.warning("could not write to the OS keyring (%s); using the protected file", type(exc).__name__)
        else:
            credentials_file().unlink(missing_ok=True)  # one source of truth
            return f"Keys saved in the system keyring ({_backend_name()})."
    target = credentials_file()
    tmp = target.with_suffix(".tmp")
    # Create with 0600 from the start: no window in which another user could read the secret.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"access_key_id": access_key, "secret_access_key": secret}, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return (
        f"No system keyring is available, so the keys were saved in {target}, readable only by your user "
        "account. Install a keyring (e.g. GNOME Keyring / KWallet) to keep them encrypted."
    )


def delete_credentials() -> None:
    if _keyring_backend() is not None:
        import keyring

        for user in (ACCESS_KEY_USER, SECRET_KEY_USER):
            try:
                keyring.delete_password(SERVICE, user)
            except Exception:
                pass
    credentials_file().unlink(missing_ok=True)


def _backend_name() -> str:
    backend = _keyring_backend()
    return type(backend).__name__ if backend is not None else "none"


def credentials_backend_notice() -> str:
    """Where keys would be (or are) kept, in words for the settings dialog."""
    if _keyring_backend() is not None:
        return f"Keys are kept in the system keyring ({_backend_name()})."
    return (
        "No system keyring is available: saved keys go to a file readable only by your user account "
        f"({credentials_file()}). The AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables also work."
    )
