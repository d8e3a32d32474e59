"""Datasets: register (folder, .zip or r2:// URL), list, remove, inspect, change format, split preview.

The datasets page and ``vision-platform dataset …`` call these. Registering indexes and health-checks
the dataset first and writes its row only when that worked, so a bad path never leaves a half
registration. The work is long for big datasets: callers run it in a worker thread and may pass
``progress`` (a sentence per stage) and ``check`` (raises to cancel between stages).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import dataset_store, paths
from core.config import SPLIT_DEFAULTS, SplitConfig
from core.dataset_store import DatasetInfo
from core.datasets.errors import DatasetError
from core.datasets.model import DatasetIndex, Finding
from core.datasets.splits import SplitResult, split_dataset
from core.services import ServiceError, Store
from core.settings import Settings

R2_SCHEME = "r2://"
Progress = Callable[[str], None]
Check = Callable[[], None]
ByteProgress = Callable[[int, int], None]
Notice = Callable[[str], None]  # a sentence for the user (a warning)


@dataclass
class OpenedDataset:
    """A dataset read from disk: its registration (None when only inspected), index and findings."""

    info: DatasetInfo | None
    index: DatasetIndex
    findings: list[Finding] = field(default_factory=list)


@dataclass
class SplitPreview:
    """What a split would put where, per class, without writing anything."""

    result: SplitResult
    counts: dict[str, dict[str, int]]  # {class: {"train": images, "val": images[, "test": images]}}
    split_of: dict[str, str]  # {image rel: "train" | "val" | "test"}
    choice: dict[str, Any]  # {"strategy", "ratio", "seed"} (+ "file"): what save_split stores

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings


def _noop(*_args: Any) -> None:
    return None


# -- reading --------------------------------------------------------------------------------------
def read_dataset(path: str | Path, fmt: str = "auto", *, deep: bool = False, duplicates: bool = False,
                 progress: Progress | None = None, check: Check | None = None) -> OpenedDataset:
    """Index ``path`` and run the health check (``deep``: decode every image; ``duplicates``: hash files)."""
    # Here, not at the top: the readers and Pillow load when a dataset is first read, not with the GUI.
    from core.datasets.health import check_health
    from core.datasets.reader import FORMATS, open_dataset

    progress, check = progress or _noop, check or _noop
    if fmt != "auto" and fmt not in FORMATS:
        raise ServiceError(f"Unknown dataset format “{fmt}”: use auto or one of {', '.join(FORMATS)}.")
    progress(f"Reading {Path(path).name}…")
    try:
        index = open_dataset(path, fmt)
        check()
        progress(f"Checking {len(index.images):,} image{'' if len(index.images) == 1 else 's'}…")
        findings = check_health(index, deep=deep, duplicates=duplicates)
    except DatasetError as exc:
        raise ServiceError(str(exc)) from exc
    check()
    return OpenedDataset(None, index, findings)


def inspect_dataset(path: str | Path, fmt: str = "auto", *, deep: bool = False, duplicates: bool = False) -> OpenedDataset:
    """Read a dataset without registering it (``vision-platform dataset inspect``)."""
    return read_dataset(path, fmt, deep=deep, duplicates=duplicates)


def reopen_dataset(info: DatasetInfo, fmt: str | None = None, *, progress: Progress | None = None,
                   check: Check | None = None) -> OpenedDataset:
    """Read a registered dataset again (the sidebar's "open"); its row is not changed."""
    opened = read_dataset(info.path, fmt or info.format or "auto", progress=progress, check=check)
    opened.info = info
    return opened


# -- registering ----------------------------------------------------------------------------------
def register_dataset(store: Store, project_id: int, path: str | Path, fmt: str = "auto", *,
                     settings: Settings | None = None, name: str | None = None, progress: Progress | None = None,
                     check: Check | None = None, download_progress: ByteProgress | None = None,
                     notice: Notice | None = None) -> OpenedDataset:
    """Index, health-check and register a folder, .zip or ``r2://`` URL in a project.

    An r2:// dataset is downloaded into the cache first (needs ``settings``: endpoint, bucket, offline
    mode; ``notice`` hears when a cached copy is used unchecked). Registering the same path twice
    refreshes its row. Nothing is written when reading fails.
    """
    _require_project(store, project_id)
    text = str(path).strip()
    source_url: str | None = None
    downloaded_now = False
    if text.startswith(R2_SCHEME):
        if settings is None:
            raise ServiceError(f"Downloading {text} needs the storage settings (endpoint, bucket).")
        source_url = text
        local, downloaded_now = fetch_r2_dataset(text, settings, progress=download_progress, notice=notice)
        text = str(local)
    elif not Path(text).exists():
        raise ServiceError(f"{text}: no such file or folder; give a dataset folder, .zip, data.yaml or r2:// URL.")
    try:
        opened = read_dataset(text, fmt, progress=progress, check=check)
    except BaseException:
        if downloaded_now:
            _remove_download(Path(text))  # a cancelled or unreadable download leaves nothing behind
        raise
    dataset_id = dataset_store.add_dataset(store, project_id, text, opened.index.format, opened.index,
                                           name=name, source_url=source_url)
    opened.info = get_dataset(store, dataset_id)
    return opened


def r2_download_problem(settings: Settings, url: str | None = None) -> str | None:
    """Why an r2:// dataset cannot be downloaded now (a sentence with the fix), or None. With ``url``,
    offline mode is no reason when a complete copy of it is cached (:func:`fetch_r2_dataset` uses it)."""
    from core.storage.credentials import get_credentials
    from core.storage.folders import cached_dataset

    if settings.offline_mode:
        if url is not None and cached_dataset(url, download_dir()) is not None:
            return None
        return "Offline mode is on, so nothing is downloaded. Turn it off in Settings to download r2:// datasets."
    if get_credentials() is None or not settings.r2_endpoint_url:
        return "Downloading r2:// datasets needs the storage endpoint and keys: add them in Settings → Storage."
    return None


def download_dir() -> Path:
    target = paths.cache_dir() / "downloads"
    target.mkdir(parents=True, exist_ok=True)
    return target


def download_r2_dataset(url: str, settings: Settings, *, progress: ByteProgress | None = None) -> Path:
    """The dataset at ``r2://bucket/…zip`` or ``r2://bucket/prefix/`` in the cache; returns its folder."""
    return fetch_r2_dataset(url, settings, progress=progress)[0]


def fetch_r2_dataset(url: str, settings: Settings, *, progress: ByteProgress | None = None,
                     notice: Notice | None = None) -> tuple[Path, bool]:
    """Download (a ``.zip``, safely extracted, or every object under a folder prefix) into the one
    download cache the app and ``train job.yaml`` share; returns (the dataset folder, downloaded now).

    An unchanged dataset already in the cache is reused without a transfer. ``progress(received,
    total)`` may raise to cancel (Ctrl+C, the GUI's Cancel): nothing partial stays in the cache.
    With offline mode on, or the endpoint unreachable (no connection; an error it answers is no
    reason), the copy the last complete download of ``url`` left is used without asking the bucket,
    and ``notice`` (default: a logged warning) says so, since it may be out of date; without such a
    copy, ServiceError.
    """
    notice = notice or _log_warning
    if settings.offline_mode:
        return _cached_copy(url, "Offline mode is on", str(r2_download_problem(settings)), notice), False
    problem = r2_download_problem(settings)
    if problem is not None:
        raise ServiceError(problem)
    from core.storage.client import client_from_settings
    from core.storage.errors import StorageError
    from core.storage.folders import EndpointUnreachable, fetch_dataset

    try:
        return fetch_dataset(client_from_settings(settings), url, download_dir(), progress=progress)
    except EndpointUnreachable as exc:
        reason = f"The storage endpoint {settings.r2_endpoint_url} is unreachable"
        return _cached_copy(url, reason, f"could not download the dataset {url}: {exc}.", notice), False
    except (StorageError, ValueError) as exc:
        raise ServiceError(f"could not download the dataset {url}: {exc}") from None


def _cached_copy(url: str, reason: str, failure: str, notice: Notice) -> Path:
    """The copy of ``url`` in the download cache, used without the bucket because of ``reason`` (said
    through ``notice``); ServiceError(``failure``) when there is none."""
    from core.storage.folders import cached_dataset

    local = cached_dataset(url, download_dir())
    if local is None:
        raise ServiceError(f"{failure} No complete copy of {url} is in the download cache ({download_dir()}).")
    notice(f"{reason}: using the copy of {url} cached in {local} (not checked against the bucket: "
           "it may be out of date).")
    return local


def _log_warning(text: str) -> None:
    logging.getLogger(__name__).warning("%s", text)


def _remove_download(local: Path) -> None:
    root = download_dir().resolve()
    local = local.resolve()
    folder = next((p for p in (local, *local.parents) if p.parent == root), None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _require_project(store: Store, project_id: int) -> None:
    from core.services.projects import get_project

    get_project(store, project_id)


# -- the registry ---------------------------------------------------------------------------------
def list_datasets(store: Store, project_id: int | None = None) -> list[DatasetInfo]:
    return dataset_store.list_datasets(store, project_id)


def get_dataset(store: Store, dataset_id: int) -> DatasetInfo:
    info = dataset_store.get_dataset(store, dataset_id)
    if info is None:
        raise ServiceError(f"There is no dataset with id {dataset_id} (`vision-platform dataset list` shows them).")
    return info


def remove_dataset(store: Store, dataset_id: int, *, force: bool = False) -> DatasetInfo:
    """Forget a registered dataset; its files stay. Refused while jobs use it unless ``force``
    (those jobs keep their own copy of the dataset path and stay usable)."""
    info = get_dataset(store, dataset_id)
    users = dataset_store.jobs_using(store, dataset_id)
    if users and not force:
        raise ServiceError(f"The dataset “{info.name}” (id {dataset_id}) is used by {users} job"
                           f"{'' if users == 1 else 's'}: remove it anyway with force (CLI: --force); "
                           "the jobs keep their dataset path.")
    dataset_store.delete_dataset(store, dataset_id)
    return info


def change_format(store: Store, dataset_id: int, fmt: str, *, progress: Progress | None = None,
                  check: Check | None = None) -> OpenedDataset:
    """The user overrode the detected format: re-read the dataset as ``fmt`` and store what it found."""
    from core.datasets.reader import FORMATS

    if fmt not in FORMATS:
        raise ServiceError(f"Unknown dataset format “{fmt}”: use one of {', '.join(FORMATS)}.")
    opened = reopen_dataset(get_dataset(store, dataset_id), fmt, progress=progress, check=check)
    dataset_store.update_format(store, dataset_id, fmt, opened.index)
    opened.info = get_dataset(store, dataset_id)
    return opened


# -- splits ---------------------------------------------------------------------------------------
def split_choice(strategy: str | None = None, ratio: float | None = None, seed: int | None = None,
                 split_file: str | None = None, *, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The split to use: what was given, else what was saved with the dataset, else the defaults
    (strategy ``auto``: the dataset's own split when it has one, decided by ``split_dataset``)."""
    defaults = SPLIT_DEFAULTS
    saved = saved or {}
    choice: dict[str, Any] = {
        "strategy": strategy or saved.get("strategy") or defaults.strategy,
        "ratio": round(float(ratio if ratio is not None else saved.get("ratio", defaults.ratio)), 4),
        "seed": int(seed if seed is not None else saved.get("seed", defaults.seed)),
    }
    if split_file or saved.get("file"):
        choice["file"] = str(split_file or saved.get("file"))
    return _validated(choice)


def _validated(choice: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    try:
        SplitConfig.model_validate(choice)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ServiceError(f"Invalid split ({problems}).") from exc
    return choice


def preview_split(index: DatasetIndex, choice: dict[str, Any]) -> SplitPreview:
    """Split ``index`` as ``choice`` says (see :func:`split_choice`) and count images per class and side."""
    choice = _validated(dict(choice))
    try:
        result = split_dataset(index, strategy=choice["strategy"], ratio=choice["ratio"], seed=choice["seed"],
                               split_file=choice.get("file"))
    except DatasetError as exc:
        raise ServiceError(str(exc)) from exc
    return SplitPreview(result, result.class_counts(list(index.class_names)), result.split_of(), choice)


def save_split(store: Store, dataset_id: int, choice: dict[str, Any]) -> None:
    """Keep the chosen split with the dataset (jobs started from it use it)."""
    get_dataset(store, dataset_id)
    dataset_store.save_split_config(store, dataset_id, _validated(dict(choice)))
