from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.s3server import SeaweedFS, s3, seaweedfs  # noqa: F401


@pytest.fixture(autouse=True)
def _no_os_keyring() -> Iterator[None]:
    """Never read or write the developer's real keyring from tests (a failing backend instead)."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def s3_env(s3: SeaweedFS, vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:  # noqa: F811
    """The seed's environment variables pointing at the test server."""
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("R2_BUCKET", s3.bucket)
    return s3
