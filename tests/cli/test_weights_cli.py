"""``vision-platform weights``: download from a loopback server that answers the way the Hugging Face
Hub does (model info API, ``resolve`` URLs with commit/etag headers), list, and the offline refusal.
No real network: the server is 127.0.0.1 in this test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

REPO = "tiny-org/tiny-vit"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _tiny_model_files() -> dict[str, bytes]:
    config = {"architectures": ["ViTForImageClassification"], "model_type": "vit", "image_size": 32,
              "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}
    weights = save({"classifier.weight": np.zeros((2, 32), dtype=np.float32)})
    return {"config.json": json.dumps(config).encode(), "model.safetensors": weights,
            "preprocessor_config.json": b'{"image_processor_type": "ViTImageProcessor"}',
            "pytorch_model.bin": b"a pickle that must never be fetched"}


class HubHandler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requested: list[str] = []

    def log_message(self, *_: object) -> None:
        pass

    def _send(self, body: bytes, content_type: str, extra: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        path = self.path.split("?")[0]
        self.requested.append(f"{self.command} {path}")
        if path.startswith(f"/api/models/{REPO}"):
            info = {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": name} for name in self.files]}
            self._send(json.dumps(info).encode(), "application/json", head=head)
            return
        prefix = f"/{REPO}/resolve/"
        if path.startswith(prefix):
            name = path[len(prefix):].split("/", 1)[1]
            if name in self.files:
                body = self.files[name]
                etag = hashlib.sha256(body).hexdigest()
                self._send(body, "application/octet-stream",
                           {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'}, head=head)
                return
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._route(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(head=True)


@pytest.fixture
def hub() -> Iterator[str]:
    HubHandler.files = _tiny_model_files()
    HubHandler.requested = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_download_needs_permission_then_fetches_safetensors_with_sha256(hub: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update({"VP_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub,
                "HF_HUB_DISABLE_XET": "1"})
    refused = _cli(env, "weights", "download", "transformers", REPO)
    assert refused.returncode == 2 and "downloads are off" in refused.stderr
    assert not HubHandler.requested  # nothing was asked of the network while offline

    assert _cli(env, "settings", "set", "offline_mode", "false").returncode == 0
    done = _cli(env, "weights", "download", "transformers", REPO)
    assert done.returncode == 0, done.stderr
    files = HubHandler.files
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        assert f"{hashlib.sha256(files[name]).hexdigest()}  {name}" in done.stdout
    assert "pytorch_model.bin" not in done.stdout
    assert not any("pytorch_model.bin" in line for line in HubHandler.requested)
    assert "[3/3] done" in done.stderr

    listed = _cli(env, "weights", "list", "--json")
    rows = json.loads(listed.stdout)
    [row] = [r for r in rows if r["name"] == REPO]
    assert row["framework"] == "transformers" and row["size_bytes"] >= len(files["model.safetensors"])

    # The downloaded model is now offered to preflight as pretrained weights on disk (workers stay offline).
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    models = _cli(offline, "models", "transformers")
    assert REPO in json.loads(models.stdout.strip().splitlines()[-1])["pretrained"]
