"""``vision-platform weights``: download from a loopback server that answers the way the Hugging Face
Hub does (model info API, ``resolve`` URLs with commit/etag headers), list, and the offline refusal.
No real network: the server is 127.0.0.1 in this test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.hub_server import REPO, HubHandler, hub_fixture  # noqa: F401 - the `hub` fixture


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
