"""Thumbnails decoded off the GUI thread and cached on disk.

The grid asks for a thumbnail only when it paints a row (so only visible rows are requested). The
newest requests are served first (a stack, capped), because after a fast scroll the rows asked for a
moment ago are no longer on screen. Decoding uses QImageReader with ``setScaledSize``, which lets the
JPEG decoder skip most of the work, and the result is written to
``cache_dir()/thumbs/<sha1(path, mtime, size)>.jpg`` so the next session reads a tiny file instead.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from core import paths

THUMB_SIZE = 96
MAX_PENDING = 256  # requests beyond this are dropped oldest-first (they scrolled away)
MEMORY_ITEMS = 4000  # decoded pixmaps kept in memory (~40 MB at 96 px)


def thumbs_dir() -> Path:
    path = paths.cache_dir() / "thumbs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_file_for(path: str) -> Path | None:
    """The cache file name changes when the image changes (mtime or size), so it is never stale."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = hashlib.sha1(f"{path}\0{st.st_mtime_ns}\0{st.st_size}".encode()).hexdigest()
    return thumbs_dir() / f"{key}.jpg"


def make_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """Read (from the disk cache if there) or decode-and-cache a thumbnail; null QImage if unreadable."""
    cached = cache_file_for(path)
    if cached is not None and cached.is_file():
        image = QImage(str(cached))
        if not image.isNull():
            return image
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image
    if image.width() > size or image.height() > size:  # formats that ignore setScaledSize
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    if cached is not None:
        tmp = cached.with_suffix(f".{threading.get_ident()}.tmp")
        if image.convertToFormat(QImage.Format.Format_RGB888).save(str(tmp), "JPG", 85):  # type: ignore[call-overload]
            os.replace(tmp, cached)  # atomic: a concurrent reader never sees half a file
    return image


class _Signals(QObject):
    loaded = Signal(str, QImage)


class _Decoder(QRunnable):
    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        while True:
            wait = self._loader._resume_at - time.monotonic()
            if wait > 0:  # the user is scrolling: leave the GIL and the CPU to the GUI's repaint
                time.sleep(min(wait, 0.05))
                continue
            path = self._loader._take()
            if path is None:
                return
            try:
                image = make_thumbnail(path)
            except Exception:  # an unreadable file shows the placeholder, never kills the pool
                image = QImage()
            self._loader._signals.loaded.emit(path, image)


class ThumbnailLoader(QObject):
    """Loads thumbnails by path; emits ``ready(list_of_paths)`` in batches (at most every 30 ms)."""

    ready = Signal(list)

    # One decoder thread: on a 2-core machine a second one starves the GUI thread's painting (the
    # decode itself is ~1 ms per 64-400 px JPEG; the disk cache makes the next visit free).
    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._threads = threads
        self._resume_at = 0.0  # time.monotonic() before which decoders pause (see hold())
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[str] = set()
        self._active = 0
        self._memory: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded)
        self._batch: list[str] = []
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(40)
        self._flush.timeout.connect(self._emit_batch)

    def get(self, path: str) -> QPixmap | None:
        """The thumbnail if decoded; otherwise None and the path is queued."""
        pixmap = self._memory.get(path)
        if pixmap is not None:
            self._memory.move_to_end(path)
            return pixmap
        if path not in self._failed:
            self._request(path)
        return None

    def hold(self, seconds: float = 0.12) -> None:
        """Pause decoding for a moment (called on every scroll step): the repaint of the scrolled
        grid asks Python for each item's data, and every such call waits for the GIL while a
        decoder runs Python code. Thumbnails of rows scrolled past are not wanted anyway."""
        self._resume_at = time.monotonic() + seconds

    def failed(self, path: str) -> bool:
        return path in self._failed

    def clear_pending(self) -> None:
        with self._lock:
            self._pending.clear()

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    def _request(self, path: str) -> None:
        with self._lock:
            if path in self._in_flight:
                return
            self._pending[path] = None
            self._pending.move_to_end(path)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            start = self._active < self._threads
            if start:
                self._active += 1
        if start:
            self._pool.start(_Decoder(self))

    def _take(self) -> str | None:
        with self._lock:
            if not self._pending:
                self._active -= 1
                return None
            path, _ = self._pending.popitem(last=True)  # newest first
            self._in_flight.add(path)
            return path

    def _on_loaded(self, path: str, image: QImage) -> None:
        with self._lock:
            self._in_flight.discard(path)
        if image.isNull():
            self._failed.add(path)
        else:
            self._memory[path] = QPixmap.fromImage(image)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)
        self._batch.append(path)
        if not self._flush.isActive():
            self._flush.start()

    def _emit_batch(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self.ready.emit(batch)
