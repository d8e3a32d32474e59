"""What the window is looking at: the current project and the opened dataset.

Pages never talk to each other; they read and change this object and react to its signals
(``_on_<thing>_change`` handlers), so a page can be added or replaced without touching the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.dataset_store import DatasetInfo
from core.services import Store
from core.services.projects import ProjectOverview
from core.settings import Settings


@dataclass
class LoadedDataset:
    """A registered dataset with its index (``core.datasets.model.DatasetIndex``) in memory."""

    info: DatasetInfo
    index: Any
    findings: list[Any] = field(default_factory=list)  # index findings + health check
    # {absolute image path: position in index.images}, built in the worker: for 20k images this
    # is ~100 ms of Python the GUI thread must not spend.
    path_rows: dict[str, int] = field(default_factory=dict)
    has_predefined_split: bool = False
    notices: list[str] = field(default_factory=list)  # e.g. an r2:// copy used offline, unchecked

    def __post_init__(self) -> None:
        # Built where the dataset is loaded (a worker thread): both walk every record.
        if not self.path_rows and self.index is not None:
            self.path_rows = {str(record.path): row for row, record in enumerate(self.index.images)}
        if self.index is not None:
            self.has_predefined_split = bool(self.index.has_predefined_split)


class AppState(QObject):
    project_change = Signal(int)
    dataset_change = Signal(object)  # LoadedDataset | None
    # The projects and datasets the sidebar lists (core.services.projects.ProjectOverview). Whoever
    # changes them reads a fresh overview in its worker and hands it over with set_overview.
    overview_change = Signal(object)
    job_event = Signal(int, object)  # a running job reported something (job id, event dict)
    jobs_change = Signal()  # a job was queued (the Jobs page refreshes anyway; this is for speed)
    settings_change = Signal(object)  # Settings
    page_request = Signal(str)  # "datasets" | "train" | "jobs" | "inference"

    def __init__(self, store: Store, settings: Settings, project_id: int,
                 overview: ProjectOverview | None = None) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self._project_id = project_id
        self._dataset: LoadedDataset | None = None
        self._overview = overview

    @property
    def overview(self) -> ProjectOverview | None:
        return self._overview

    def set_overview(self, overview: ProjectOverview) -> None:
        self._overview = overview
        self.overview_change.emit(overview)

    @property
    def project_id(self) -> int:
        return self._project_id

    def set_project(self, project_id: int) -> None:
        if project_id != self._project_id:
            self._project_id = project_id
            self.set_dataset(None)
            self.project_change.emit(project_id)

    @property
    def dataset(self) -> LoadedDataset | None:
        return self._dataset

    def set_dataset(self, dataset: LoadedDataset | None) -> None:
        self._dataset = dataset
        self.dataset_change.emit(dataset)

    def set_settings(self, settings: Settings) -> None:
        """Tell the pages about settings already saved (``core.services.settings.save_settings``, in a worker)."""
        self.settings = settings
        self.settings_change.emit(settings)
