"""Images a standby worker decodes while it imports its framework (``core.jobs.spawn``).

A standby knows its job's config (``--warm-config``) seconds before it is handed the run directory,
and spends them importing torch and the framework: one core, mostly Python. Decoding the dataset's
images in a thread meanwhile (PIL decodes without the GIL) takes the decode off the way to the first
step: the job's decoded cache (``timm_data.open_source``) takes what is ready and decodes the rest.

A hint only, as the warm-up is: an image is used only when its file is unchanged since (size and
modification time) and it was decoded at the side the job asks for; everything else is decoded
again by the job, which also reports unreadable files by name. At most :data:`PREFETCH_MAX_BYTES`
are decoded (a head start for a large dataset, not a second cache), and a job that streams drops
them. A plain worker (no standby) never starts one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFETCH_MAX_BYTES = 256 * 1024**2

_Stamp = tuple[int, int]  # (size, mtime_ns): the file as it was decoded


def _stamp(path: Path) -> _Stamp:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class Prefetch:
    """One background thread: ``plan()`` names the images and their side (reading the dataset is off
    the import's way too), then it decodes them in order until stopped or done."""

    def __init__(self, plan: Callable[[], tuple[list[Path], int]]) -> None:
        self.plan = plan
        self.side = 0
        self.decoded: dict[Path, tuple[_Stamp, Any]] = {}
        self._stop = threading.Event()
        self._planned = threading.Event()  # plan() returned: from now on a stop waits one image at most
        self._thread = threading.Thread(target=self._run, daemon=True, name="standby-prefetch")

    def start(self) -> Prefetch:
        self._thread.start()
        return self

    def _run(self) -> None:
        from adapters.timm_data import cache_bytes, decode_resized

        try:
            paths, self.side = self.plan()
        except Exception as exc:  # a hint only: the job reads its dataset itself and reports problems
            logging.getLogger(__name__).debug("no prefetch: %s", exc)
            return
        self._planned.set()
        for path in paths[: PREFETCH_MAX_BYTES // cache_bytes(1, self.side)]:
            if self._stop.is_set():
                return
            try:
                stamp = _stamp(path)
                self.decoded[path] = (stamp, decode_resized(path, self.side))
            except Exception:  # noqa: S112 - the job decodes it again and reports it by name
                continue

    def finish(self, side: int) -> dict[Path, Any]:
        """Stop (after the image being decoded) and hand over what is still valid for ``side``. Still
        reading the dataset (a large one, handed over early): nothing, without waiting for the read."""
        self._stop.set()
        if not self._planned.is_set():
            return {}
        self._thread.join()
        if side != self.side:
            return {}
        return {path: array for path, (stamp, array) in self.decoded.items() if _unchanged(path, stamp)}


def _unchanged(path: Path, stamp: _Stamp) -> bool:
    try:
        return _stamp(path) == stamp
    except OSError:
        return False


_current: Prefetch | None = None


def start(plan: Callable[[], tuple[list[Path], int]]) -> None:
    """Begin decoding in the background (the standby's warm-up): ``plan()`` gives the images and the
    side to decode them at."""
    global _current
    _current = Prefetch(plan).start()


def wait() -> None:
    """Block until the running prefetch has decoded all it will (for tests: a job never waits)."""
    if _current is not None:
        _current._thread.join()


def take(side: int) -> dict[Path, Any]:
    """The images decoded so far at ``side`` (uint8 arrays (3, side, side) by path), once; empty when
    nothing was prefetched. Stops the decoding thread."""
    global _current
    prefetch, _current = _current, None
    return prefetch.finish(side) if prefetch is not None else {}
