"""Settings and storage credentials: the Settings dialog and ``vision-platform settings …`` both call these.

Non-secret settings are rows of ``app_settings`` (:class:`core.settings.Settings`); the R2/S3 keys
live in the OS keyring or a 0600 file (:mod:`core.storage.credentials`), never in the database.
Opening the data store is here too: it is where the app's data folder becomes a database.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.services import ServiceError, Store
from core.settings import Settings

if TYPE_CHECKING:
    from core.platform import FileLock

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
MAX_CONCURRENT_JOBS = (1, 16)


# -- the store ------------------------------------------------------------------------------------
def open_data_store(db_file: Path | None = None, *, accept_recovery: bool = False) -> Store:
    """Open (migrating on first use) the data folder's database and end jobs a dead runner left running.

    A damaged database is moved aside and rebuilt (``core.db.recovery``): with ``accept_recovery``
    the caller shows ``store.recovery.message()``; without, the first open raises
    ``core.db.sessions.DataStoreError`` carrying that report (the CLI prints it and exits 2).
    """
    from core.db.engine import open_store
    from core.jobs.store import reconcile_orphaned_jobs

    store = open_store(db_file, accept_recovery=accept_recovery)
    reconcile_orphaned_jobs(store)
    return store


def recovery_message(store: Store) -> str | None:
    """What the opening repair did to this store (None when it was not damaged)."""
    return store.recovery.message() if store.recovery is not None else None


def claim_data_folder(db_file: Path | None = None) -> FileLock:
    """The desktop app's lock on its data folder, held until the app ends (``release()`` to end sooner).

    Raises ServiceError naming the other app (pid, command line) when one already has this folder.
    """
    from core import paths
    from core.db.sessions import AppAlreadyRunning, acquire_app_lock

    try:
        return acquire_app_lock(Path(db_file) if db_file else paths.db_path())
    except AppAlreadyRunning as exc:
        raise ServiceError(str(exc)) from None


@dataclass(frozen=True)
class LeftoverWork:
    """What start-up finished for an earlier run of the app: MLflow runs ended, uploads retried."""

    ended_runs: dict[int, str]  # job id -> the MLflow status its run ended with
    uploaded: int = 0
    upload_failures: int = 0
    uploads_skipped: str | None = None  # why the pending uploads could not be tried now

    def summary(self) -> str:
        parts = []
        if self.ended_runs:
            parts.append(f"ended {len(self.ended_runs)} MLflow run(s) left open by an earlier session")
        if self.uploaded or self.upload_failures:
            parts.append(f"uploaded {self.uploaded} pending checkpoint(s)"
                         + (f", {self.upload_failures} failed (retried later)" if self.upload_failures else ""))
        elif self.uploads_skipped:
            parts.append(f"pending uploads wait: {self.uploads_skipped}")
        return ("Start-up: " + "; ".join(parts) + ".") if parts else ""


def finish_leftover_work(store: Store, *, uploads: bool = True) -> LeftoverWork:
    """End MLflow runs a killed app left RUNNING and, with ``uploads``, send the uploads an earlier run
    left pending (those due now; a given-up row waits for `sync retry`). Never raises for a tracking or
    transfer problem: start-up goes on, and the next start tries again.

    The desktop app runs it in the background once its window is up; the CLI runs it without uploads
    (a `train` uploads through its own sync listener, a `jobs` listing should not wait for a bucket).
    """
    from core.services.sync import pending_uploads, sync_now
    from core.tracking import terminate_orphaned_runs

    ended = terminate_orphaned_runs(store)
    if not uploads or not pending_uploads(store):
        return LeftoverWork(ended)
    result = sync_now(store, load_settings(store), retry=False)
    return LeftoverWork(ended, result.uploaded, result.failed, result.disabled_reason or result.stopped_early)


def close_data_stores() -> None:
    from core.db.engine import close_all_stores

    close_all_stores()


# -- settings -------------------------------------------------------------------------------------
def load_settings(store: Store) -> Settings:
    """Stored settings, with the environment's overrides (MLFLOW_TRACKING_URI, AWS_S3_ENDPOINT_URL, R2_BUCKET)."""
    return Settings.load(store)


def save_settings(store: Store, settings: Settings) -> Settings:
    """Validate and store every field; returns what was saved."""
    low, high = MAX_CONCURRENT_JOBS
    if not low <= settings.max_concurrent_jobs <= high:
        raise ServiceError(f"max_concurrent_jobs must be between {low} and {high}, not {settings.max_concurrent_jobs}.")
    if not settings.r2_bucket.strip():
        raise ServiceError("r2_bucket cannot be empty: give the bucket checkpoints are uploaded to.")
    if settings.memory_budget_mb < 0:
        raise ServiceError(f"memory_budget_mb is 0 (automatic) or a number of MB, not {settings.memory_budget_mb}.")
    settings.save(store)
    return settings


def setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


def _parse(name: str, text: str, current: Any) -> Any:
    if isinstance(current, bool):
        word = text.strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ServiceError(f"{name} is true or false, not “{text}”.")
        return word in TRUE_WORDS
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ServiceError(f"{name} is a whole number, not “{text}”.") from None
    return text.strip()


def update_settings(store: Store, changes: dict[str, str]) -> Settings:
    """Change settings given as text (``{"offline_mode": "false"}``), validated, then saved."""
    settings = load_settings(store)
    values: dict[str, Any] = {}
    for name, text in changes.items():
        if name not in setting_names():
            raise ServiceError(f"There is no setting “{name}”; the settings are: {', '.join(setting_names())}.")
        values[name] = _parse(name, text, getattr(settings, name))
    return save_settings(store, dataclasses.replace(settings, **values))


# -- credentials ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CredentialsStatus:
    """Where the keys are (never the secret itself)."""

    access_key_id: str | None
    source: str | None  # keyring | file | env | None
    backend_notice: str  # where saved keys go, in words


def credentials_status() -> CredentialsStatus:
    from core.storage import credentials

    notice = credentials.credentials_backend_notice()
    try:
        creds = credentials.get_credentials()
    except Exception as exc:  # a locked keyring: say so, never crash the caller
        return CredentialsStatus(None, None, f"The keyring could not be read: {exc}")
    if creds is None:
        return CredentialsStatus(None, None, notice)
    return CredentialsStatus(creds.access_key_id, creds.source, notice)


def set_credentials(access_key_id: str, secret_access_key: str) -> str:
    """Store the R2/S3 keys; returns a sentence saying where they are kept."""
    from core.storage import credentials

    access_key_id = access_key_id.strip()
    if not access_key_id or not secret_access_key:
        raise ServiceError("Both the access key id and the secret access key are needed.")
    try:
        return credentials.save_credentials(access_key_id, secret_access_key)
    except OSError as exc:
        raise ServiceError(f"The keys could not be saved ({exc}): check that {credentials.credentials_file().parent} "
                           "is writable.") from exc


def clear_credentials() -> None:
    """Remove saved keys from the keyring and the fallback file (environment variables stay)."""
    from core.storage import credentials

    credentials.delete_credentials()


def check_connection(settings: Settings, access_key_id: str = "", secret_access_key: str = "") -> str:
    """List one object of the bucket with these settings and keys (the saved keys when none are given).

    Returns a sentence on success; raises ServiceError naming the endpoint and bucket otherwise.
    """
    from core.storage import credentials
    from core.storage.client import make_s3_client

    if access_key_id and secret_access_key:
        creds: Any = credentials.Credentials(access_key_id, secret_access_key, source="form")
    else:
        creds = credentials.get_credentials()
    if creds is None:
        raise ServiceError("No access key and secret: enter them (CLI: `vision-platform settings credentials set`).")
    if not settings.r2_endpoint_url:
        raise ServiceError("No endpoint URL: set r2_endpoint_url (https://<account>.r2.cloudflarestorage.com).")
    try:
        client = make_s3_client(settings, creds)
        client.list_objects_v2(Bucket=settings.r2_bucket, MaxKeys=1)
    except Exception as exc:
        raise ServiceError(f"Bucket {settings.r2_bucket} at {settings.r2_endpoint_url} is not reachable with "
                           f"these keys: {exc}") from exc
    return f"Connected: bucket {settings.r2_bucket} is reachable with these keys."
