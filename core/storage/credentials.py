"""The app's secrets: R2 / S3 keys and an MLflow tracking server's password.

R2 / S3 keys: the OS keyring first, then a 0600 file, then the design document's environment variables.
Why a file fallback at all: headless Linux boxes often have no Secret Service, and keyring then
raises ``NoKeyringError``. We never fall back silently: :func:`save_credentials` returns a notice
that says where the keys went, and the GUI shows it. The keys never go to the settings table, the
logs or MLflow.

An MLflow URI with ``user:password@`` is never stored or shown as typed: the settings keep it masked
(``https://user:***@host``, :func:`mask_uri`) and the password goes to the same keyring / 0600 file.
The process that talks to MLflow gets a URI without credentials and the login through MLflow's own
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (:func:`tracking_login`). Which
environment variables hold secrets is written down here once (:data:`SECRET_ENV_NAMES`):
``core.launch.child_env`` keeps them out of the processes the app starts.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from core import paths

log = logging.getLogger(__name__)

SERVICE = "vision-platform"
ACCESS_KEY_USER = "r2_access_key_id"
SECRET_KEY_USER = "r2_secret_access_key"
ENV_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
ENV_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_TRACKING_USERNAME = "MLFLOW_TRACKING_USERNAME"  # MLflow's own names: its REST client reads them
ENV_TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
# Environment variables that hold secrets (and prefixes: R2_* are the design document's R2 settings).
SECRET_ENV_NAMES = frozenset({ENV_ACCESS_KEY, ENV_SECRET_KEY, "AWS_SESSION_TOKEN", ENV_TRACKING_USERNAME,
                              ENV_TRACKING_PASSWORD, "MLFLOW_TRACKING_TOKEN"})
SECRET_ENV_PREFIXES = ("R2_",)
MASK = "***"
TRACKING_KEY_PREFIX = "mlflow:"  # keyring user of a tracking password: mlflow:<user>@<host>


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
    _write_private(target, {"access_key_id": access_key, "secret_access_key": secret})
    return (
        f"No system keyring is available, so the keys were saved in {target}, readable only by your user "
        "account. Install a keyring (e.g. GNOME Keyring / KWallet) to keep them encrypted."
    )


def _write_private(target: Path, data: dict[str, object]) -> None:
    tmp = target.with_suffix(".tmp")
    # Create with 0600 from the start: no window in which another user could read the secret.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)


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


# -- secrets in the environment -------------------------------------------------------------------------
def is_secret_env(name: str) -> bool:
    return name in SECRET_ENV_NAMES or name.startswith(SECRET_ENV_PREFIXES)


# -- MLflow tracking URIs with a login -------------------------------------------------------------------
@dataclass(frozen=True)
class TrackingLogin:
    """A tracking URI split for use: the URI without credentials, and the login to send beside it."""

    uri: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def _host_part(parts: object) -> str:
    netloc = str(getattr(parts, "netloc", ""))
    return netloc.rpartition("@")[2]


def _with_netloc(uri: str, netloc: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=netloc))


def strip_login(uri: str) -> str:
    """``uri`` without ``user:password@`` (unchanged when it has none)."""
    parts = urlsplit(uri)
    return _with_netloc(uri, _host_part(parts)) if "@" in parts.netloc else uri


def mask_uri(uri: str) -> str:
    """``https://user:***@host`` for ``https://user:secret@host``: safe to store, log and show."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return _with_netloc(uri, f"{parts.username or ''}:{MASK}@{_host_part(parts)}")


def _tracking_key(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{TRACKING_KEY_PREFIX}{parts.username or ''}@{_host_part(parts)}"


def tracking_credentials_file() -> Path:
    return paths.data_dir() / "tracking_credentials.json"


def remember_tracking_password(uri: str) -> str:
    """Keep the password of ``uri`` (keyring, else the 0600 file); returns the masked URI to store."""
    password = urlsplit(uri).password
    if password is None or password == MASK:
        return mask_uri(uri)
    key = _tracking_key(uri)
    if _keyring_backend() is not None:
        import keyring

        try:
            keyring.set_password(SERVICE, key, unquote(password))
            return mask_uri(uri)
        except Exception as exc:
            log.warning("could not write to the OS keyring (%s); using the protected file", type(exc).__name__)
    password = unquote(password)
    stored = _read_tracking_file()
    stored[key] = password
    _write_private(tracking_credentials_file(), dict(stored))
    return mask_uri(uri)


def _read_tracking_file() -> dict[str, str]:
    try:
        data = json.loads(tracking_credentials_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _stored_tracking_password(uri: str) -> str | None:
    key = _tracking_key(uri)
    if _keyring_backend() is not None:
        import keyring

        try:
            found = keyring.get_password(SERVICE, key)
        except Exception:
            found = None
        if found:
            return found
    env_uri = os.environ.get(ENV_TRACKING_URI, "")
    if env_uri and _tracking_key(env_uri) == key and urlsplit(env_uri).password not in (None, MASK):
        return unquote(str(urlsplit(env_uri).password))
    return _read_tracking_file().get(key) or os.environ.get(ENV_TRACKING_PASSWORD)


def tracking_login(uri: str) -> TrackingLogin:
    """The URI to give MLflow (no credentials) and the login for it: typed in the URI, or the stored
    password of a masked one (keyring, 0600 file, the environment's ``MLFLOW_TRACKING_URI``)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return TrackingLogin(uri)
    password = unquote(parts.password) if parts.password not in (None, MASK) else _stored_tracking_password(uri)
    return TrackingLogin(strip_login(uri), unquote(parts.username) if parts.username else None, password)
