"""The thumbnail grid's model: a dataset's images, filtered, with thumbnails loaded on demand.

Filtering keeps a list of row numbers into the index: re-filtering 20,000 records is a few
milliseconds of plain Python.

Row counting stays in C++: the model is a ``QIdentityProxyModel`` over a ``QStringListModel`` that
only holds as many (empty) rows as pass the filter, and Python answers ``data()`` alone. Laying out
a 20,000-item grid asks the model for ``index()``/``rowCount()`` about 25,000 times; answered in
Python, each call needs the GIL, and with a background Python thread busy (the split preview, the
index) every one waited up to a switch interval: 200-400 ms stalls when a big dataset opened.
``data()`` is only asked for the items being painted.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QIdentityProxyModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QStringListModel,
    Qt,
)
from PySide6.QtGui import QColor, QPainter, QPixmap

from app.models.thumbnails import THUMB_SIZE, ThumbnailLoader

RecordRole = Qt.ItemDataRole.UserRole + 1
ALL = ""


def _placeholder(text_colour: str = "#9aa0a6") -> QPixmap:
    pixmap = QPixmap(THUMB_SIZE, THUMB_SIZE)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setPen(QColor(text_colour))
    painter.setBrush(QColor(127, 127, 127, 40))
    painter.drawRoundedRect(2, 2, THUMB_SIZE - 4, THUMB_SIZE - 4, 6, 6)
    painter.end()
    return pixmap


class ImageListModel(QIdentityProxyModel):
    def __init__(self, loader: ThumbnailLoader | None = None) -> None:
        super().__init__()
        self._rows_model = QStringListModel(self)  # one empty string per visible row: the row count
        self.setSourceModel(self._rows_model)
        self.loader = loader or ThumbnailLoader(self)
        self.loader.ready.connect(self._on_thumbnails_ready)
        self._records: list[Any] = []
        self._rows: list[int] = []  # indexes into _records that pass the filter
        self._row_of_path: dict[str, int] = {}
        self._all_path_rows: dict[str, int] = {}
        self._finding_paths: dict[str, set[str]] = {}  # finding code -> image paths (rel and absolute)
        self._split_of: dict[str, str] = {}  # rel -> "train" | "val" | "test" (the preview split)
        self.has_test_split = False  # the dataset ships test images (never trained on): the filter offers "Test"
        self._filter = {"cls": ALL, "split": ALL, "finding": ALL, "text": ""}
        self._placeholder = _placeholder()
        self._broken = _placeholder("#c0392b")

    # -- data -----------------------------------------------------------------------------------
    def set_records(self, records: list[Any], findings: list[Any] | None = None,
                    path_rows: dict[str, int] | None = None) -> None:
        """``path_rows`` ({path: position}) may be passed in, built off the GUI thread."""
        self._records = records
        self._all_path_rows = path_rows if path_rows is not None else {
            str(record.path): row for row, record in enumerate(records)}
        self._finding_paths = {}
        for finding in findings or []:
            self._finding_paths.setdefault(finding.code, set()).add(str(finding.path))
        self._split_of = {}
        self.has_test_split = any(record.split == "test" for record in records)
        self._filter = {"cls": ALL, "split": ALL, "finding": ALL, "text": ""}
        self._apply_filter()

    def set_split(self, split_of: dict[str, str]) -> None:
        """The preview split (rel -> train/val/test, ``core.datasets.split_dataset``'s): what the split
        filter shows once known, so the grid agrees with the split panel and with what trains."""
        self._split_of = dict(split_of)
        if self._filter["split"]:
            self.set_filter()

    def finding_codes(self) -> list[str]:
        return sorted(self._finding_paths)

    def record(self, row: int) -> Any:
        return self._records[self._rows[row]]

    def row_for_path(self, path: str) -> int | None:
        """The visible row of an image by absolute path or dataset-relative path."""
        for row, record_index in enumerate(self._rows):
            record = self._records[record_index]
            if str(record.path) == path or record.rel == path:
                return row
        return None

    def set_filter(self, *, cls: str | None = None, split: str | None = None, finding: str | None = None,
                   text: str | None = None) -> None:
        for key, value in (("cls", cls), ("split", split), ("finding", finding), ("text", text)):
            if value is not None:
                self._filter[key] = value
        self._apply_filter()

    def _split_for(self, record: Any) -> str | None:
        # The preview's answer first: a dataset's own train/val folders are re-split by an explicit
        # strategy (its test images never are); before the preview, the folder the image is in.
        return self._split_of.get(record.rel) or record.split

    def _apply_filter(self) -> None:
        cls, split, finding, text = (self._filter[k] for k in ("cls", "split", "finding", "text"))
        if not (cls or split or finding or text):  # the common case, and the one a 20k open hits
            self._set_rows(list(range(len(self._records))), self._all_path_rows)
            return
        text = text.lower()
        finding_paths: set[str] | None = None
        if finding:
            finding_paths = set()
            for code, found in self._finding_paths.items():
                if finding == "*" or code == finding:
                    finding_paths |= found
        rows = []
        for i, record in enumerate(self._records):
            if text and text not in record.rel.lower():
                continue
            if cls and cls not in record.labels and not any(s.label == cls for s in record.shapes):
                continue
            if split and self._split_for(record) != split:
                continue
            if finding_paths is not None and record.rel not in finding_paths and str(record.path) not in finding_paths \
                    and not (record.annotation_path and str(record.annotation_path) in finding_paths):
                continue
            rows.append(i)
        self._set_rows(rows, {str(self._records[i].path): row for row, i in enumerate(rows)})

    def _set_rows(self, rows: list[int], row_of_path: dict[str, int]) -> None:
        """Show ``rows``: the string model's reset (forwarded by the proxy) tells the views."""
        self._rows = rows
        self._row_of_path = row_of_path
        self._rows_model.setStringList([""] * len(rows))

    # -- Qt model API (rowCount and index stay in C++, see the module docstring) ------------------
    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        # Not QStringListModel's (editable, draggable): thumbnails are selected and opened only.
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        record = self._records[self._rows[index.row()]]
        if role == Qt.ItemDataRole.DisplayRole:
            name = record.rel.rsplit("/", 1)[-1]
            return name if len(name) <= 16 else name[:7] + "…" + name[-8:]
        if role == Qt.ItemDataRole.DecorationRole:
            path = str(record.path)
            pixmap = self.loader.get(path)
            if pixmap is not None:
                return pixmap
            return self._broken if self.loader.failed(path) else self._placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            classes = ", ".join(record.class_names()) or "no labels"
            size = f"{record.width}×{record.height}" if record.width else "size unknown"
            return f"{record.rel}\n{size} · {classes}"
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(THUMB_SIZE + 16, THUMB_SIZE + 28)
        if role == RecordRole:
            return record
        return None

    def _on_thumbnails_ready(self, paths: list[str]) -> None:
        # One dataChanged per row, not one over the touched range: a range makes the view repaint
        # its whole viewport (20-40 ms on a slow machine), a single index only that item's rectangle;
        # Qt merges the rectangles of one batch into a single paint event.
        roles = [Qt.ItemDataRole.DecorationRole]
        for path in paths:
            row = self._row_of_path.get(path)
            if row is not None:
                index = self.index(row, 0)
                self.dataChanged.emit(index, index, roles)
