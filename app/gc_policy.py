"""Keep Python's garbage collector from freezing the window.

A full (generation 2) collection scans every tracked object and holds the GIL while it does: with
the app's modules loaded plus a 20,000-image index, one took 0.3-1 s here, and the GUI thread, which
needs the GIL for every slot, stalls that long (measured by bench/bench_gui.py). Two remedies:

- ``freeze_long_lived()`` moves everything alive now into the permanent generation (``gc.freeze``),
  so later collections skip it: called once start-up is done and after a dataset index is loaded
  (both live for the session).
- ``paused()`` disables collection while a worker builds a big index (millions of allocations that
  would trigger repeated full scans); reference counting still frees everything non-cyclic.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0


@contextmanager
def paused() -> Iterator[None]:
    global _paused
    with _lock:
        _paused += 1
        if _paused == 1:
            gc.disable()
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                # Objects allocated while paused are mostly the new index (long-lived): freeze them
                # first, or the first collection after enable() would scan them all at once.
                gc.freeze()
                gc.enable()


def freeze_long_lived() -> None:
    gc.freeze()
