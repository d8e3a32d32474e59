"""The project list; inside each project its datasets. Create, rename and delete (with confirmation)."""

from __future__ import annotations

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
from app.models.projects import ProjectError, create_project, delete_project, list_projects, rename_project
from core import dataset_store

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
        state.datasets_list_change.connect(self.refresh)
        state.project_change.connect(lambda _pid: self._select_current())
        self.refresh()

    def _tool(self, name: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(name))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def refresh(self) -> None:
        """Reload projects and datasets (a few small queries: fast enough for the GUI thread)."""
        expanded = {item.data(0, ProjectRole) for item in self._top_items() if item.isExpanded()}
        self.tree.clear()
        datasets = dataset_store.list_datasets(self.state.store)
        for project in list_projects(self.state.store):
            item = QTreeWidgetItem([project.name])
            item.setIcon(0, icon("project"))
            item.setData(0, ProjectRole, project.id)
            item.setToolTip(0, f"{project.datasets} datasets, {project.jobs} jobs")
            for info in (d for d in datasets if d.project_id == project.id):
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

    def _show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.show()

    def new_project(self) -> int | None:
        name, ok = QInputDialog.getText(self, "New project", "Project name:")
        return self.create_named(name) if ok else None

    def create_named(self, name: str) -> int | None:
        try:
            project_id = create_project(self.state.store, name)
        except ProjectError as exc:
            self._show_error(str(exc))
            return None
        self.message.hide()
        self.state.set_project(project_id)
        self.refresh()
        return project_id

    def rename_current(self) -> None:
        current = next((p for p in list_projects(self.state.store) if p.id == self.state.project_id), None)
        if current is None:
            return
        name, ok = QInputDialog.getText(self, "Rename project", "New name:", text=current.name)
        if ok:
            self.rename(current.id, name)

    def rename(self, project_id: int, name: str) -> bool:
        try:
            rename_project(self.state.store, project_id, name)
        except ProjectError as exc:
            self._show_error(str(exc))
            return False
        self.message.hide()
        self.refresh()
        return True

    def delete_current(self) -> None:
        current = next((p for p in list_projects(self.state.store) if p.id == self.state.project_id), None)
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

    def delete(self, project_id: int) -> bool:
        try:
            delete_project(self.state.store, project_id)
        except ProjectError as exc:
            self._show_error(str(exc))
            return False
        self.message.hide()
        remaining = list_projects(self.state.store)
        if project_id == self.state.project_id and remaining:
            self.state.set_project(remaining[0].id)
        self.refresh()
        return True
