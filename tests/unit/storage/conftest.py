from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.s3server import SeaweedFS


@pytest.fixture
def s3_env(s3: SeaweedFS, vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:  # noqa: F811
    """The design document's environment variables pointing at the test server."""
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("R2_BUCKET", s3.bucket)
    return s3
