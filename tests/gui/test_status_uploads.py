"""The status bar's upload count reads the outbox through core.services.sync (the CLI's `sync status`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import update


def test_status_bar_counts_uploads_not_synced(window: Any, qtbot: Any, store: Any, tmp_path: Path) -> None:
    from core.db.models import Upload
    from core.services.sync import sync_status
    from core.storage.outbox import enqueue_upload

    def add(name: str, state: str) -> None:
        upload_id = enqueue_upload(store, job_id=None, checkpoint_id=None, local_path=tmp_path / name,
                                   bucket="bucket", key=f"checkpoints/{name}")
        with store.write() as session:
            session.execute(update(Upload).where(Upload.id == upload_id).values(state=state))

    qtbot.waitUntil(lambda: window.uploads_label.text() == "Uploads: all synced", timeout=10_000)
    for name, state in (("a.pt", "pending"), ("b.pt", "failed"), ("c.pt", "synced"), ("d.pt", "uploading")):
        add(name, state)
    window._refresh_uploads()
    qtbot.waitUntil(lambda: window.uploads_label.text() == "3 uploads pending", timeout=10_000)
    assert sync_status(store).pending == 3
