"""Wait for a condition, not for a time: the one polling loop tests outside Qt use.

``timeout`` is a generous bound that only a broken build reaches (then the test fails naming what it
waited for); how long the wait really takes never decides whether a test passes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

POLL_S = 0.02


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Return once ``condition()`` is truthy; fail the test after ``timeout`` seconds."""
    pause = threading.Event()
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        pause.wait(POLL_S)
        waited += POLL_S
