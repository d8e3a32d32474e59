"""When Python's cyclic garbage collector runs: never in the middle of a burst of long-lived allocations.

A full (generation 2) collection scans every tracked object and holds the GIL while it does. Three
places allocate millions of objects that all live on, and each collection during them is wasted work:

- the desktop app's start-up and a dataset index being built: with the app's modules loaded plus a
  20,000-image index, one collection took 0.3-1 s here, and the GUI thread, which needs the GIL for
  every slot, stalled that long (bench/bench_gui.py); indexing alone spent 0.5-0.7 s of a 5 s, 20k-image
  index in collections;
- a worker importing torch and its framework: 2.8 s with collection on, 2.1 s paused, on 2 cores
  (the largest part of a job's start, bench/bench_job_start.py); the inference worker's first model
  (spawn → a timm checkpoint loaded) 2.67 s → 2.12 s.

Two remedies:

- ``paused()`` disables collection meanwhile (nestable, any thread); reference counting still frees
  everything non-cyclic. On the way out the survivors are frozen (``gc.freeze``) before collection
  resumes: otherwise the first collection scans all of them at once (~90 ms for a 20k index, which a
  GUI thread shows as a stall). Frozen objects are still freed by reference counting when dropped.
- ``freeze_long_lived()`` moves everything alive now into the permanent generation, so later
  collections skip it: called once start-up is done and after a dataset index is loaded.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0
_was_enabled = True


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (a collector disabled before the first entry stays so)."""
    global _paused, _was_enabled
    with _lock:
        _paused += 1
        if _paused == 1:
            _was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.freeze()
                gc.enable()


def freeze_long_lived() -> None:
    gc.freeze()
