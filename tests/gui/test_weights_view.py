"""The Weights view (File → Pretrained weights…): real cached files listed per framework with sizes,
import (safetensors as is, a pickle only with consent), and a download from a loopback server that
answers like the Hugging Face Hub, with progress, Cancel that leaves nothing behind, and the button
off while Settings forbid downloads.

The server holds the weights file's body until the test releases it (``HubHandler.hold``), so the
test looks at a download in progress, or cancels it, at a known point: never a race with its speed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.helpers.dialogs import answer_warnings
from tests.helpers.hub_server import COMMIT, REPO, HubHandler, hub_fixture  # noqa: F401 - the `hub` fixture

TIMM_REPO = "timm/resnet18.a1_in1k"


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Hugging Face cache; the in-process hub client allowed online (tests/conftest sets it
    offline for the whole run; the network guard still refuses anything but loopback)."""
    import huggingface_hub.constants

    home = tmp_path / "hf"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "YOLO_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return home


@pytest.fixture
def endpoint(hub: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The loopback hub as the Hub endpoint (``HF_ENDPOINT``, read by the service at each call). The
    network guard fails the test on any other request, e.g. the client's telemetry to huggingface.co."""
    monkeypatch.setenv("HF_ENDPOINT", hub)
    return hub


def cache_repo(hf_home: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A repository in the Hub cache's own layout: content-addressed blobs, a snapshot of links, a ref."""
    folder = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (folder / "blobs").mkdir()
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    for name, body in files.items():
        blob = folder / "blobs" / hashlib.sha256(body).hexdigest()
        blob.write_bytes(body)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return folder


def open_view(window: Any, qtbot: Any) -> Any:
    dialog = window.open_weights()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.view.summary.text() != "Looking for weights…", timeout=60_000)
    return dialog.view


def allow_downloads(window: Any, qtbot: Any) -> None:
    """Through the Settings dialog, as a user does: untick offline mode, Save."""
    from app.settings_dialog import SettingsDialog

    dialog = window.open_settings()
    assert isinstance(dialog, SettingsDialog)
    dialog.offline.setChecked(False)
    dialog.accept()
    qtbot.waitUntil(lambda: not window.state.settings.offline_mode, timeout=20_000)


def tree_rows(view: Any) -> dict[str, list[tuple[str, str]]]:
    """What the tree shows: per framework group, its rows' (name, size) texts."""
    shown = {}
    for index in range(view.tree.topLevelItemCount()):
        group = view.tree.topLevelItem(index)
        shown[group.text(0).split(" (")[0]] = [(group.child(i).text(0), group.child(i).text(1))
                                               for i in range(group.childCount())]
    return shown


def test_lists_cached_weights_per_framework_with_sizes(window: Any, qtbot: Any, hf_home: Path, vp_home: Path) -> None:
    from core.services.weights import ultralytics_weights_dir

    vit = {"config.json": b'{"model_type": "vit"}', "model.safetensors": b"w" * 4096}
    cache_repo(hf_home, REPO, vit)
    cache_repo(hf_home, TIMM_REPO, {"model.safetensors": b"t" * 10_000, "config.json": b"{}"})
    yolo = ultralytics_weights_dir() / "yolo11n.pt"
    yolo.parent.mkdir(parents=True)
    yolo.write_bytes(b"p" * 2048)
    assert str(yolo).startswith(str(vp_home))

    view = open_view(window, qtbot)
    rows = {name: (framework, size, path) for framework, name, size, path in view.rows()}
    assert rows[REPO][:2] == ("transformers", sum(len(body) for body in vit.values()))
    assert rows[TIMM_REPO][:2] == ("timm", 10_002)
    assert rows["yolo11n.pt"] == ("ultralytics", 2048, str(yolo))
    shown = tree_rows(view)
    assert shown["transformers"] == [(REPO, "4.0 KB")] and shown["timm"] == [(TIMM_REPO, "9.8 KB")]
    assert shown["ultralytics"] == [("yolo11n.pt", "2.0 KB")]
    assert view.summary.text() == "3 models cached, 15.8 KB in all"


def test_import_safetensors_and_a_pickle_only_with_consent(window: Any, qtbot: Any, hf_home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.numpy import save

    from core import paths, trust
    from core.files import sha256_file

    view = open_view(window, qtbot)
    assert view.rows() == [] and "No pretrained weights" in view.summary.text()
    tensors = tmp_path / "tiny-vit.safetensors"
    tensors.write_bytes(save({"w": np.ones((4, 4), dtype=np.float32)}))
    monkeypatch.setattr("app.widgets.weights_view.QFileDialog.getOpenFileName", lambda *_a, **_k: (str(tensors), ""))
    qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(name == tensors.name for _f, name, _s, _p in view.rows()), timeout=60_000)
    [(_framework, _name, size, path)] = view.rows()
    assert Path(path) == paths.weights_dir() / tensors.name and size == tensors.stat().st_size
    assert trust.read_manifest() == frozenset()  # safetensors hold no code: no consent asked or recorded

    pickle = tmp_path / "yolo11n-custom.pt"
    pickle.write_bytes(b"\x80\x04 a pickle-based file")
    asked = answer_warnings(monkeypatch, QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    view.import_file(str(pickle))
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=20_000)
    assert str(pickle) in asked[0] and "runs any code" in asked[0]
    assert not (paths.weights_dir() / pickle.name).exists() and trust.read_manifest() == frozenset()
    view.import_file(str(pickle))
    qtbot.waitUntil(lambda: any(name == pickle.name for _f, name, _s, _p in view.rows()), timeout=60_000)
    assert trust.read_manifest() == {sha256_file(pickle)}


def test_download_off_in_settings_disables_the_button_with_the_reason(window: Any, qtbot: Any, hf_home: Path) -> None:
    view = open_view(window, qtbot)
    assert window.state.settings.offline_mode  # the default: nothing is downloaded until the user allows it
    view.repo_edit.setText(REPO)
    assert not view.download_button.isEnabled()
    assert not view.download_reason.isHidden() and "offline mode is on in Settings" in view.download_reason.text()
    assert "offline mode" in view.download_button.toolTip()

    qtbot.mouseClick(view.settings_button, Qt.MouseButton.LeftButton)  # "Open Settings…" opens the real dialog
    allow_downloads(window, qtbot)
    qtbot.waitUntil(view.download_button.isEnabled, timeout=5_000)
    assert view.download_reason.isHidden()


def test_download_shows_progress_completes_and_records_sha256(window: Any, qtbot: Any, hf_home: Path, endpoint: str,
                                                              shots_dir: Path) -> None:
    from core.services.weights import download_record, ultralytics_weights_dir

    cache_repo(hf_home, TIMM_REPO, {"model.safetensors": b"t" * 4_600_000})
    yolo = ultralytics_weights_dir() / "yolo11n.pt"
    yolo.parent.mkdir(parents=True)
    yolo.write_bytes(b"p" * 560_000)
    allow_downloads(window, qtbot)
    view = open_view(window, qtbot)
    seen: list[int] = []
    view.busy.bar.valueChanged.connect(seen.append)
    HubHandler.hold = "model.safetensors"
    view.repo_edit.setText(REPO)
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(HubHandler.holding.is_set, timeout=60_000)
    # config.json is in; the weights are on their way: 1 of 3 files done, the row names the file.
    qtbot.waitUntil(lambda: "model.safetensors (2 of 3)" in view.busy.label.text(), timeout=20_000)
    assert view.busy.isVisible() and view.busy.bar.maximum() == 3000 and view.busy.bar.value() == 1000
    assert not view.download_button.isEnabled()  # one download at a time
    dialog = view.window()
    dialog.resize(900, 440)
    dialog.grab().save(str(shots_dir / "weights_view.png"))
    HubHandler.release.set()
    qtbot.waitUntil(lambda: "Downloaded" in view.banner.text(), timeout=60_000)
    qtbot.waitUntil(lambda: any(name == REPO for _f, name, _s, _p in view.rows()), timeout=60_000)
    assert seen == sorted(seen) and {1000, 2000, 3000} <= set(seen) and not view.busy.isVisible()

    files = HubHandler.files
    record = download_record(window.state.store, REPO)
    assert record is not None and record["files"] == {
        name: hashlib.sha256(files[name]).hexdigest() for name in ("config.json", "model.safetensors",
                                                                  "preprocessor_config.json")}
    assert not any("pytorch_model.bin" in line for line in HubHandler.requested)  # never a pickle
    [(framework, size)] = [(f, s) for f, name, s, _p in view.rows() if name == REPO]
    assert framework == "transformers" and size == sum(len(files[n]) for n in record["files"])


def test_cancel_leaves_no_partial_file(window: Any, qtbot: Any, hf_home: Path, endpoint: str) -> None:
    from core.services.weights import download_record, list_weights

    allow_downloads(window, qtbot)
    view = open_view(window, qtbot)
    HubHandler.hold = "model.safetensors"
    view.repo_edit.setText(REPO)
    qtbot.mouseClick(view.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(HubHandler.holding.is_set, timeout=60_000)
    repo_folder = hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    assert any(p.is_file() for p in repo_folder.rglob("*"))  # config.json is in the cache already

    qtbot.mouseClick(view.busy.cancel, Qt.MouseButton.LeftButton)
    assert view.busy.label.text() == "Cancelling…"
    HubHandler.release.set()  # the body arrives: the download stops at that chunk
    qtbot.waitUntil(lambda: "cancelled; nothing was kept" in view.banner.text(), timeout=60_000)
    assert not repo_folder.exists() and not (hf_home / "hub" / ".locks" / repo_folder.name).exists()
    assert not [p for p in hf_home.rglob("*") if p.name.endswith(".incomplete")]
    assert REPO not in [w.name for w in list_weights()] and download_record(window.state.store, REPO) is None
    assert not view.busy.isVisible() and view.download_button.isEnabled()
