"""A loopback HTTP server that answers the way the Hugging Face Hub does (model info API, ``resolve``
URLs with commit/etag headers) and serves a tiny model's files: the download path is tested against it,
never against the real network. A test module imports ``hub_fixture`` and asks for ``hub``.

``HubHandler.hold`` names a file whose download the server pauses right before sending the body
(``HubHandler.holding`` is set, the server waits for ``HubHandler.release``): a test then sees the
download in progress and may cancel it, without depending on how fast anything runs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from safetensors.numpy import save

REPO = "tiny-org/tiny-vit"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HOLD_TIMEOUT_S = 120.0  # only a broken test reaches it (then the download fails instead of hanging)


def tiny_model_files() -> dict[str, bytes]:
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
    hold: str | None = None
    holding = threading.Event()
    release = threading.Event()

    def log_message(self, *_: object) -> None:
        pass

    def _send(self, body: bytes, content_type: str, extra: dict[str, str] | None = None, head: bool = False,
              name: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        if name and name == self.hold:
            self.wfile.flush()
            HubHandler.holding.set()
            HubHandler.release.wait(HOLD_TIMEOUT_S)
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
                           {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'}, head=head, name=name)
                return
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._route(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(head=True)


@pytest.fixture(name="hub")
def hub_fixture() -> Iterator[str]:
    """``hub``: the server's base URL (for ``HF_ENDPOINT``), serving :func:`tiny_model_files` as ``REPO``."""
    HubHandler.files = tiny_model_files()
    HubHandler.requested = []
    HubHandler.hold = None
    HubHandler.holding = threading.Event()
    HubHandler.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    HubHandler.release.set()  # a test that failed while a download was held must not hang the shutdown
    server.shutdown()
    server.server_close()
