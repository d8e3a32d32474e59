"""The job log pane: opens at the tail of a big log, follows appended lines, starts over on a re-run.

Reads happen in a background task; the test drives ``poll()`` and waits for the text (no timer races).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.widgets.log_pane import INITIAL_TAIL_BYTES, LogPane


def test_tail_follow_and_restart(qtbot: Any, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    lines = [f"line {i:07d} " + "x" * 40 for i in range(30_000)]  # ~1.6 MB: larger than the tail window
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pane = LogPane()
    qtbot.addWidget(pane)
    pane.timer.setInterval(3_600_000)  # the test polls by hand
    pane.set_log(log)
    qtbot.waitUntil(lambda: lines[-1] in pane.plain_text(), timeout=10_000)
    shown = pane.plain_text().splitlines()
    assert lines[0] not in shown and len("\n".join(shown)) <= INITIAL_TAIL_BYTES
    assert all(line in lines for line in shown)  # no fragment of a cut first line

    with open(log, "a", encoding="utf-8") as handle:
        handle.write("epoch 2: val/accuracy=0.5\npartial")
    pane.poll()
    qtbot.waitUntil(lambda: "epoch 2: val/accuracy=0.5" in pane.plain_text(), timeout=10_000)
    assert "partial" not in pane.plain_text()  # an unfinished line waits for its end

    log.write_text("a fresh run\n", encoding="utf-8")  # the job was re-run: the log is shorter
    pane.poll()
    qtbot.waitUntil(lambda: pane.plain_text().strip() == "a fresh run", timeout=10_000)
