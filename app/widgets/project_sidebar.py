"""The project list; inside each project its datasets. Create, rename and delete (with confirmation).

The tree is drawn from the state's :class:`ProjectOverview`, read in a worker (never a query on the GUI
thread). Create, rename and delete call :mod:`core.services.projects` in a worker too; each task
returns the fresh overview, which redraws the tree, and a refused name is shown in place.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import icon
from app.models.app_state import AppState
from app.workers import ErrorInfo, TaskSlots
from core.services import Store, projects
from core.services.projects import ProjectOverview

ProjectRole = Qt.ItemDataRole.UserRole + 1
DatasetRole = Qt.ItemDataRole.UserRole + 2


class ProjectSidebar(QWidget):
    dataset_open_requested = Signal(object)  # DatasetInfo

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        title = QLabel("Projects")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.add_button = self._tool("add", "New project", self.new_project)
        self.rename_button = self._tool("rename", "Rename project", self.rename_current)
        self.delete_button = self._tool("delete", "Delete project", self.delete_current)
        header = QHBoxLayout()
        header.addWidget(title, 1)
        for button in (self.add_button, self.rename_button, self.delete_button):
            header.addWidget(button)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(14)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        self.setMinimumWidth(190)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(header)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.message)
        self.tasks = TaskSlots(self)  # "overview" (a newer read replaces the older), "edit" (create/rename/delete)
        state.overview_change.connect(self._fill)
        state.project_change.connect(lambda _pid: self._select_current())
        if state.overview is not None:
            self._fill(state.overview)
        else:
            self.refresh()

    def _tool(self, name: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(name))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def refresh(self) -> None:
        """Read projects and datasets again in a worker; a newer refresh cancels an older one."""
        store = self.state.store
        self.tasks.start("overview", lambda _st: projects.project_overview(store), title="List projects",
                         on_result=self.state.set_overview)

    def _fill(self, overview: ProjectOverview) -> None:
        expanded = {item.data(0, ProjectRole) for item in self._top_items() if item.isExpanded()}
        self.tree.clear()
        for project in overview.projects:
            item = QTreeWidgetItem([project.name])
            item.setIcon(0, icon("project"))
            item.setData(0, ProjectRole, project.id)
            item.setToolTip(0, f"{project.datasets} datasets, {project.jobs} jobs")
            for info in overview.datasets_of(project.id):
                child = QTreeWidgetItem([info.name])
                child.setIcon(0, icon("dataset"))
                child.setData(0, ProjectRole, project.id)
                child.setData(0, DatasetRole, info)
                child.setToolTip(0, f"{info.path}\n{info.format}, {info.num_images} images")
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            if project.id in expanded or project.id == self.state.project_id:
                item.setExpanded(True)
        self._select_current()

    def _overview(self) -> ProjectOverview:
        return self.state.overview or ProjectOverview([])

    def _current(self) -> projects.ProjectInfo | None:
        return self._overview().project(self.state.project_id)

    def project_names(self) -> list[str]:
        return [item.text(0) for item in self._top_items()]

    def _top_items(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def _select_current(self) -> None:
        for item in self._top_items():
            if item.data(0, ProjectRole) == self.state.project_id:
                self.tree.setCurrentItem(item)
                item.setExpanded(True)

    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self.state.set_project(int(item.data(0, ProjectRole)))
        info = item.data(0, DatasetRole)
        if info is not None:
            self.dataset_open_requested.emit(info)

    def _show_error(self, info: ErrorInfo) -> None:
        self.message.setText(info.message)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.show()

    def _edit(self, title: str, change: Callable[[Store], int | None]) -> None:
        """Run ``change`` in a worker, then read the overview there; an older overview read is dropped.

        ``change`` returns the project to select afterwards (None: keep the selection if it still exists)."""
        store = self.state.store
        self.message.hide()
        self.message.clear()
        self.tasks.cancel("overview")  # it could finish later with the list from before the change

        def work(_st: object) -> tuple[int | None, ProjectOverview]:
            selected = change(store)
            return selected, projects.project_overview(store)

        self.tasks.start("edit", work, title=title, on_result=self._after_edit, on_error=self._show_error)

    def _after_edit(self, answer: tuple[int | None, ProjectOverview]) -> None:
        selected, overview = answer
        self.state.set_overview(overview)
        if selected is None and overview.project(self.state.project_id) is None and overview.projects:
            selected = overview.default_project_id
        if selected is not None:
            self.state.set_project(selected)

    def new_project(self) -> None:
        name, ok = QInputDialog.getText(self, "New project", "Project name:")
        if ok:
            self.create_named(name)

    def create_named(self, name: str) -> None:
        """Create the project in a worker; it is selected when created, a refused name is shown in place."""
        self._edit("Create project", lambda store: projects.create_project(store, name).id)

    def rename_current(self) -> None:
        current = self._current()
        if current is None:
            return
        name, ok = QInputDialog.getText(self, "Rename project", "New name:", text=current.name)
        if ok:
            self.rename(current.id, name)

    def rename(self, project_id: int, name: str) -> None:
        def change(store: Store) -> None:
            projects.rename_project(store, project_id, name)

        self._edit("Rename project", change)

    def delete_current(self) -> None:
        current = self._current()
        if current is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete project",
                          f"Delete the project “{current.name}”?", parent=self)
        box.setInformativeText(
            f"This removes {current.datasets} dataset entr{'y' if current.datasets == 1 else 'ies'} and the "
            f"records of {current.jobs} job{'' if current.jobs == 1 else 's'} (metrics included). Dataset files "
            "and run folders on disk are not deleted.")
        delete = box.addButton("Delete project", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is delete:
            self.delete(current.id)

    def delete(self, project_id: int) -> None:
        """Delete in a worker; if it was the current project, the default project is selected."""
        def change(store: Store) -> None:
            projects.delete_project(store, project_id)

        self._edit("Delete project", change)
