"""Pretrained weights on this computer: what each framework has cached, importing a file, and
downloading from the Hugging Face Hub — for the Weights view and ``vision-platform weights``.

Workers are always offline (``core.launch``): a job never downloads. Downloads happen here, before a
job, and only when the user allowed them in Settings (``offline_mode`` off). A download fetches a Hub
repository's safetensors weights and its config files (never pickles, never code), reports progress per
file and per byte, can be cancelled at any chunk (the cache is then left as it was: no partial file, no
half-downloaded repository listed as cached), and records each file's sha256. Nothing here imports torch
or a framework: the caches are read with ``huggingface_hub`` and plain file listings. The cache folder is
read from the environment at each call (``huggingface_hub`` reads it once, at import).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import paths
from core.db.models import AppSetting
from core.files import sha256_file
from core.services import ServiceError, Store

# What a download fetches from a repository: weights as safetensors, configs and processor files.
DOWNLOAD_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.json", "*.txt", "*.model")
TIMM_HUB_PREFIX = "timm/"  # timm's pretrained weights live in the Hub organisation "timm"
DOWNLOAD_KEY_PREFIX = "downloaded_weights:"
Progress = Callable[[int, int, str], None]  # files done, files in all, the file now
Received = Callable[[int, int | None], None]  # bytes of the file now received so far, its size (None: unknown)


@dataclass(frozen=True)
class CachedWeights:
    framework: str
    name: str  # a Hub repository id, or a file name
    path: str
    size_bytes: int

    def as_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "name": self.name, "path": self.path, "size_bytes": self.size_bytes}


@dataclass
class DownloadResult:
    repo_id: str
    folder: Path
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    cancelled: bool = False


# -- listing -----------------------------------------------------------------------------------------
def hub_framework(repo_id: str) -> str:
    """The framework that reads a Hub repository's weights: timm's live in the organisation ``timm``."""
    return "timm" if repo_id.startswith(TIMM_HUB_PREFIX) else "transformers"


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache as the environment names it now (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("HF_HOME") or cache_home / "huggingface").expanduser() / "hub"


def hub_cache() -> list[CachedWeights]:
    """Model repositories in the Hugging Face cache (timm's live under ``timm/``)."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir(hub_cache_dir()).repos
    except Exception:  # noqa: BLE001 - no cache folder yet: nothing cached
        return []
    return sorted((CachedWeights(hub_framework(r.repo_id), r.repo_id, str(r.repo_path), int(r.size_on_disk))
                   for r in repos if r.repo_type == "model"), key=lambda w: (w.framework, w.name))


def ultralytics_weights_dir() -> Path:
    """Ultralytics' weights folder under the app's own ``YOLO_CONFIG_DIR`` (``core.launch``)."""
    config_dir = Path(os.environ.get("YOLO_CONFIG_DIR") or paths.data_dir() / "ultralytics").expanduser()
    return config_dir / "Ultralytics" / "weights"


def weight_files() -> list[CachedWeights]:
    """Ultralytics ``.pt`` files and the files imported into the data dir (their framework guessed)."""
    from core.services.checkpoints import guess_framework, imported_weights

    found = []
    folder = ultralytics_weights_dir()
    if folder.is_dir():
        found += [CachedWeights("ultralytics", f.name, str(f), f.stat().st_size) for f in sorted(folder.glob("*.pt"))]
    found += [CachedWeights(guess_framework(f), f.name, str(f), f.stat().st_size) for f in imported_weights()]
    return found


def list_weights(framework: str | None = None) -> list[CachedWeights]:
    """Everything cached, by framework then name; reads folders (and may start the declarations helper
    once per process): call it from a worker thread in the GUI."""
    found = hub_cache() + weight_files()
    return [w for w in found if framework in (None, w.framework)]


def by_framework(found: list[CachedWeights]) -> dict[str, list[CachedWeights]]:
    """``found`` grouped by framework (in order of first appearance), for a view with one group each."""
    groups: dict[str, list[CachedWeights]] = {}
    for item in found:
        groups.setdefault(item.framework, []).append(item)
    return groups


# -- import ------------------------------------------------------------------------------------------
def import_file(store: Store, source: str | Path, *, consent: bool = False) -> Path:
    """``core.services.checkpoints.import_weights``: safetensors as they are, a pickle with consent."""
    from core.services.checkpoints import import_weights

    return import_weights(store, source, consent=consent)


# -- download ----------------------------------------------------------------------------------------
def hub_repo(framework: str, model: str) -> str:
    """The Hub repository a framework's model downloads from; refuses what is not on the Hub."""
    if framework == "transformers" and model.count("/") == 1:
        return model
    if framework == "timm":
        if model.startswith(TIMM_HUB_PREFIX) and model.count("/") == 1:
            return model
        raise ServiceError(f"name timm weights by their Hub repository, e.g. timm/{model}.a1_in1k (listed on the "
                           f"model's page at huggingface.co/timm)")
    raise ServiceError(f"{framework} model {model!r} is not a Hugging Face Hub repository id (org/name); for "
                       "Ultralytics .pt files download them in a browser and use `vision-platform weights import`")


def downloads_allowed(store: Store) -> bool:
    from core.settings import Settings

    return not Settings.load(store).offline_mode


def download(store: Store, framework: str, model: str, *, progress: Progress | None = None,
             received: Received | None = None, cancelled: Callable[[], bool] = lambda: False) -> DownloadResult:
    """Fetch a Hub repository's safetensors weights and configs into the HF cache (progress per file and
    per byte, ``cancelled`` polled at every chunk) and record each file's sha256. Only when Settings allow
    downloads. A cancelled download removes what it had written and records nothing."""
    repo_id = hub_repo(framework, model)
    if not downloads_allowed(store):
        raise ServiceError("downloads are off (offline mode): allow them in Settings, or run "
                           "`vision-platform settings set offline_mode false`")
    names = _repo_files(repo_id)
    if not any(n.endswith(".safetensors") for n in names):
        raise ServiceError(f"{repo_id} has no safetensors weights on the Hub; this app does not load pickle weights")
    before = _cache_entries(repo_id)
    result = DownloadResult(repo_id, Path())
    try:
        _fetch_all(result, names, progress, _byte_reporter(received, cancelled), cancelled)
    except _DownloadCancelled:
        _remove_new_entries(repo_id, before)
        result.cancelled, result.files = True, {}
        return result
    _record(store, framework, result)
    return result


class _DownloadCancelled(Exception):
    """Raised inside ``huggingface_hub``'s download loop when the user cancels (unwinds it at a chunk)."""


def _fetch_all(result: DownloadResult, names: list[str], progress: Progress | None, bar: type,
               cancelled: Callable[[], bool]) -> None:
    for done, name in enumerate(names):
        if cancelled():
            raise _DownloadCancelled()
        if progress is not None:
            progress(done, len(names), name)
        local = _fetch(result.repo_id, name, bar)
        result.folder = local.parents[name.count("/")]
        result.files[name] = sha256_file(local)
    if progress is not None:
        progress(len(names), len(names), "")


def _byte_reporter(received: Received | None, cancelled: Callable[[], bool]) -> type:
    """A progress-bar class for ``huggingface_hub``: reports the bytes of each file and stops the
    download (raising at the next chunk) once ``cancelled()``."""

    class ByteReporter:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total, self.count = total, initial

        def __enter__(self) -> ByteReporter:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def update(self, n: int = 1) -> None:
            if cancelled():
                raise _DownloadCancelled()
            self.count += n
            if received is not None:
                received(self.count, self.total)

    return ByteReporter


def _repo_cache_folders(repo_id: str) -> list[Path]:
    """The repository's folder in the Hub cache and its lock folder (what a download writes to)."""
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=repo_id, repo_type="model")
    return [hub_cache_dir() / folder, hub_cache_dir() / ".locks" / folder]


def _cache_entries(repo_id: str) -> set[Path]:
    """Every file, link and folder a download of ``repo_id`` could touch, as it is now."""
    entries: set[Path] = set()
    for folder in _repo_cache_folders(repo_id):
        if folder.is_dir():
            entries.add(folder)
            entries.update(folder.rglob("*"))
    return entries


def _remove_new_entries(repo_id: str, before: set[Path]) -> None:
    """Undo a cancelled download: delete what appeared since ``before`` (partial blobs, links, refs,
    locks), files first, then the folders left empty, deepest first."""
    new = _cache_entries(repo_id) - before
    for entry in new:
        if entry.is_symlink() or entry.is_file():
            entry.unlink(missing_ok=True)
    for folder in sorted((e for e in new if e.is_dir() and not e.is_symlink()), key=lambda p: len(p.parts),
                         reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _no_telemetry() -> None:
    """The app reports no usage (``core.launch``): the Hub client's telemetry is off in this process too.

    With it on, the client adds usage details to its user agent and first asks ``huggingface.co`` (its
    import-time endpoint, whatever ``HF_ENDPOINT`` says now) for an "agent registry": a request that is
    not the download. ``HF_HUB_DISABLE_TELEMETRY`` is read once, at import, so the constant is set.
    """
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = True


def _online_api() -> Any:
    from huggingface_hub import HfApi

    _no_telemetry()
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)


def _repo_files(repo_id: str) -> list[str]:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = _online_api().model_info(repo_id)
    except HfHubHTTPError as exc:
        raise ServiceError(f"{repo_id} cannot be downloaded: {exc}") from None
    except OSError as exc:
        raise ServiceError(f"{repo_id} cannot be downloaded (network): {exc}") from None
    files = [s.rfilename for s in info.siblings or []]
    return sorted(n for n in files if any(fnmatch.fnmatch(n, p) for p in DOWNLOAD_PATTERNS))


def _fetch(repo_id: str, filename: str, bar: type) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    _no_telemetry()
    try:
        return Path(hf_hub_download(repo_id, filename, endpoint=os.environ.get("HF_ENDPOINT") or None,
                                    cache_dir=hub_cache_dir(), tqdm_class=bar))
    except (HfHubHTTPError, OSError) as exc:
        raise ServiceError(f"{repo_id}/{filename} could not be downloaded: {exc}") from None


def _record(store: Store, framework: str, result: DownloadResult) -> None:
    record = {"framework": framework, "folder": str(result.folder), "files": result.files,
              "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with store.write() as session:
        session.merge(AppSetting(key=f"{DOWNLOAD_KEY_PREFIX}{result.repo_id}", value=json.dumps(record)))


def download_record(store: Store, repo_id: str) -> dict[str, Any] | None:
    """What a download recorded (files and their sha256), or None."""
    with store.read() as session:
        row = session.get(AppSetting, f"{DOWNLOAD_KEY_PREFIX}{repo_id}")
        return json.loads(row.value) if row is not None and row.value else None
