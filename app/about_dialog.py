"""Help → About: the app's version and licence, and every bundled package with its version and licence.

The package list comes from ``core.licenses`` (the build's index in a frozen app, else the installed
metadata), read in a worker; selecting a package shows its licence text when the app ships it.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.look import APP_NAME
from app.workers import run_task

if TYPE_CHECKING:
    from core.licenses import PackageLicense

APP_LICENSE = "AGPL-3.0-or-later"
COLUMNS = ("Package", "Version", "Licence")


def app_version() -> str:
    try:
        return importlib.metadata.version("vision-platform")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_packages(_state: object) -> list[PackageLicense]:
    from core.licenses import bundled_packages

    return bundled_packages()


def licence_text(package: PackageLicense) -> str:
    from core.licenses import license_texts

    texts = license_texts(package)
    if texts:
        return "\n\n".join(texts)
    return f"{package.name} {package.version} is licensed under {package.license}."


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.resize(640, 520)
        self.packages: list[PackageLicense] = []
        heading = QLabel(f"<b>{APP_NAME}</b> {app_version()}<br>Train and test computer-vision models on your own "
                         f"computer.<br>Licensed under the GNU Affero General Public License, version 3 or later "
                         f"({APP_LICENSE}). Bundled packages and their licences:")
        heading.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_licence(row))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlaceholderText("Select a package to read its licence.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        run_task(read_packages, owner=self, title="Read licences", on_result=self._fill)

    def _fill(self, packages: list[PackageLicense]) -> None:
        self.packages = packages
        self.table.setRowCount(len(packages))
        for row, package in enumerate(packages):
            for column, value in enumerate((package.name, package.version, package.license)):
                self.table.setItem(row, column, QTableWidgetItem(value))

    def _show_licence(self, row: int) -> None:
        if 0 <= row < len(self.packages):
            self.text.setPlainText(licence_text(self.packages[row]))
