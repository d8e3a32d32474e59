"""core.gc_policy: the cyclic collector paused around bursts of long-lived allocations (the app's start,
a dataset index, a worker's framework import), nestable, and always left as it was found."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from core import gc_policy


def test_paused_nests_and_turns_collection_back_on_only_at_the_outermost_exit() -> None:
    assert gc.isenabled()
    with gc_policy.paused():
        assert not gc.isenabled()
        with gc_policy.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block is still allocating
    assert gc.isenabled()


def test_a_collector_disabled_by_its_owner_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_policy.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_still_turns_collection_back_on() -> None:
    with pytest.raises(ValueError), gc_policy.paused():
        raise ValueError("broke mid-import")
    assert gc.isenabled()


def test_a_standby_worker_imports_its_framework_with_collection_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """adapters.worker._warm_up: the framework's warm_up (torch + timm, 2.8 s → 2.1 s paused) runs with
    the collector off; training afterwards has it on."""
    import adapters.registry
    from adapters import worker

    seen: dict[str, Any] = {}

    class Framework:
        @classmethod
        def warm_up(cls) -> None:
            seen["enabled_during_warm_up"] = gc.isenabled()

    monkeypatch.setattr(adapters.registry, "get_adapter_class", lambda name: seen.setdefault("framework", name) and Framework)
    config = tmp_path / "job.yaml"
    config.write_text("dataset: /data\nframework: timm\nmodel: resnet18\n", encoding="utf-8")
    worker._warm_up(config)
    assert seen == {"framework": "timm", "enabled_during_warm_up": False}
    assert gc.isenabled()
