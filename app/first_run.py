"""The "Try it" button of an empty project: something to try before a user has a dataset of their own.

One click registers the shipped sample dataset (``core.samples``: three classes of drawn shapes, copied
into the data dir), queues a tiny from-scratch training on it (seconds per epoch on a CPU) and shows it
on the Jobs page; when the job has finished, the Inference page opens with its model on one of the
sample's images. Each step is the same service the rest of the GUI uses, run through ``app.workers``;
the window stays usable throughout and a failure is shown in the page's banner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.workers import ErrorInfo, TaskState, run_task

if TYPE_CHECKING:
    from app.models.app_state import AppState, LoadedDataset
    from core.services import Store
    from core.services.checkpoints import ModelChoice
    from core.services.projects import ProjectOverview

END_EVENTS = ("done", "error")
WAIT_FOR_END_S = 120.0


def register_and_queue(state: TaskState, store: Store, project_id: int) -> tuple[LoadedDataset, ProjectOverview, int, Path]:
    """Worker body: copy the sample, register it in the project, queue the tiny job on it."""
    from app.pages.datasets_page import open_and_register
    from core.config import config_from_dict
    from core.samples import first_image, try_it_config, user_sample
    from core.services.jobs import queue_job

    folder = user_sample()
    dataset, overview = open_and_register(state, store, project_id, str(folder), "auto")
    job_id = queue_job(store, config_from_dict(try_it_config(folder)), project_id=project_id,
                       dataset_id=dataset.info.id)
    return dataset, overview, job_id, first_image(folder)


def finished_model(store: Store, job_id: int) -> ModelChoice:
    """Worker body: wait until the runner has recorded the job's end, then its best checkpoint."""
    from core.services import ServiceError
    from core.services.checkpoints import job_model
    from core.services.jobs import wait_until_stopped

    status = wait_until_stopped(store, job_id, WAIT_FOR_END_S)
    if status != "completed":
        raise ServiceError(f"the sample training (job {job_id}) ended {status or 'late'}: see the Jobs page")
    return job_model(store, job_id)


class SampleRun(QObject):
    """One "Try it" run; ``model_shown`` fires once the Inference page has the model and the image."""

    queued = Signal(int)  # job id
    model_shown = Signal(int)
    failed = Signal(str)

    def __init__(self, state: AppState, inference_page: Any, owner: QObject) -> None:
        super().__init__(owner)
        self.state = state
        self.inference_page = inference_page
        self.job_id: int | None = None
        self.image: Path | None = None

    def start(self) -> None:
        store, project_id = self.state.store, self.state.project_id
        run_task(lambda st: register_and_queue(st, store, project_id), owner=self, title="Try it: sample dataset",
                 on_result=self._on_queued, on_error=self._on_error)

    def _on_queued(self, answer: tuple[LoadedDataset, ProjectOverview, int, Path]) -> None:
        dataset, overview, self.job_id, self.image = answer
        self.state.set_overview(overview)
        self.state.set_dataset(dataset)
        self.state.job_event.connect(self._on_job_event)
        self.state.jobs_change.emit()  # wakes the queue
        self.state.page_request.emit("jobs")
        self.queued.emit(self.job_id)

    def _on_job_event(self, job_id: int, event: dict[str, Any]) -> None:
        if job_id != self.job_id or event.get("type") not in END_EVENTS:
            return
        self.state.job_event.disconnect(self._on_job_event)
        store = self.state.store
        run_task(lambda _st: finished_model(store, job_id), owner=self, title="Try it: open the model",
                 on_result=self._show_model, on_error=self._on_error)

    def _show_model(self, choice: ModelChoice) -> None:
        assert self.job_id is not None and self.image is not None
        self.state.page_request.emit("inference")
        self.inference_page.load_model(choice)
        self.inference_page.open_paths([str(self.image)])
        self.model_shown.emit(self.job_id)

    def _on_error(self, info: ErrorInfo) -> None:
        self.failed.emit(f"The sample run could not finish: {info.message}")
