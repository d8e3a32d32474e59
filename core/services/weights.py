"""Pretrained weights on this computer: what each framework has cached, importing a file, and
downloading from the Hugging Face Hub — for the Weights view and ``vision-platform weights``.

Workers are always offline (``core.launch``): a job never downloads. Downloads happen here, before a
job, and only when the user allowed them in Settings (``offline_mode`` off). A download fetches a Hub
repository's safetensors weights and its config files (never pickles, never code), reports progress per
file, can be cancelled between files, and records each file's sha256. Nothing here imports torch or a
framework: the caches are read with ``huggingface_hub`` and plain file listings.
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
def _hub_framework(repo_id: str) -> str:
    return "timm" if repo_id.startswith(TIMM_HUB_PREFIX) else "transformers"


def hub_cache() -> list[CachedWeights]:
    """Model repositories in the Hugging Face cache (timm's live under ``timm/``)."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir().repos
    except Exception:  # noqa: BLE001 - no cache folder yet: nothing cached
        return []
    return sorted((CachedWeights(_hub_framework(r.repo_id), r.repo_id, str(r.repo_path), int(r.size_on_disk))
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
    found = hub_cache() + weight_files()
    return [w for w in found if framework in (None, w.framework)]


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
             cancelled: Callable[[], bool] = lambda: False) -> DownloadResult:
    """Fetch a Hub repository's safetensors weights and configs into the HF cache (progress per file,
    cancel between files) and record each file's sha256. Only when Settings allow downloads."""
    repo_id = hub_repo(framework, model)
    if not downloads_allowed(store):
        raise ServiceError("downloads are off (offline mode): allow them in Settings, or run "
                           "`vision-platform settings set offline_mode false`")
    names = _repo_files(repo_id)
    if not any(n.endswith(".safetensors") for n in names):
        raise ServiceError(f"{repo_id} has no safetensors weights on the Hub; this app does not load pickle weights")
    result = DownloadResult(repo_id, Path())
    for done, name in enumerate(names):
        if cancelled():
            result.cancelled = True
            return result
        if progress is not None:
            progress(done, len(names), name)
        local = _fetch(repo_id, name)
        result.folder = local.parent if "/" not in name else local.parents[name.count("/")]
        result.files[name] = sha256_file(local)
    if progress is not None:
        progress(len(names), len(names), "")
    _record(store, framework, result)
    return result


def _online_api() -> Any:
    from huggingface_hub import HfApi

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


def _fetch(repo_id: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(hf_hub_download(repo_id, filename, endpoint=os.environ.get("HF_ENDPOINT") or None))
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
