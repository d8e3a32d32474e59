"""``device: auto`` is CUDA, else MPS, else the CPU, for every adapter, with torch's availability faked.

A named device that is missing is refused with the reason; mixed precision only on CUDA (on MPS the
job trains in float32, as Ultralytics' own AMP check decides there); and no adapter keeps its own copy
of the decision (a scan of the adapters' source).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import torch

from adapters import devices
from adapters.base import AdapterError
from core.config import config_from_dict
from tests.conftest import ROOT


def _machine(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(("cuda", "mps", "expected"), [(True, True, "cuda"), (True, False, "cuda"),
                                                       (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str) -> None:
    _machine(monkeypatch, cuda=cuda, mps=mps)
    assert devices.resolve_device("auto") == expected


def test_a_named_device_is_kept_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, cuda=True, mps=True)
    assert [devices.resolve_device(d) for d in ("cpu", "cuda", "cuda:1", "mps")] == ["cpu", "cuda", "cuda:1", "mps"]


def test_a_missing_device_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, cuda=False, mps=False)
    with pytest.raises(AdapterError, match=r"'mps' was requested but Apple's Metal GPU \(MPS\) is not available"):
        devices.resolve_device("mps")
    with pytest.raises(AdapterError, match="'cuda:1' was requested but no CUDA GPU is available"):
        devices.resolve_device("cuda:1")
    assert devices.resolve_device("cpu") == "cpu"


def test_the_device_list_offers_mps_on_a_mac(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, cuda=False, mps=True)
    assert [d["id"] for d in devices.list_devices()] == ["cpu", "mps"]
    _machine(monkeypatch, cuda=False, mps=False)
    assert [d["id"] for d in devices.list_devices()] == ["cpu"]


def test_a_torch_without_the_mps_backend_has_no_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch.backends, "mps")
    assert devices.mps_available() is False


def test_mixed_precision_is_for_cuda_only() -> None:
    assert [devices.amp_supported(d) for d in ("cuda", "cuda:1", "mps", "cpu")] == [True, True, False, False]
    assert [devices.device_type(d) for d in ("cuda:1", "mps", "cpu")] == ["cuda", "mps", "cpu"]


def test_ultralytics_spells_devices_its_own_way() -> None:
    assert [devices.ultralytics_device(d) for d in ("cuda", "cuda:2", "mps", "cpu")] == ["0", "2", "mps", "cpu"]


@pytest.mark.parametrize(("cuda", "mps", "device", "amp"), [(False, True, "mps", False), (True, True, "0", True),
                                                            (False, False, "cpu", False)])
def test_ultralytics_trains_on_the_resolved_device(monkeypatch: pytest.MonkeyPatch, vp_home: Path,
                                                    cuda: bool, mps: bool, device: str, amp: bool) -> None:
    from adapters.ultralytics_adapter import UltralyticsAdapter

    _machine(monkeypatch, cuda=cuda, mps=mps)
    config = config_from_dict({"framework": "ultralytics", "task": "detect", "model": "yolo11n", "dataset": str(vp_home),
                               "device": "auto", "amp": True})
    args = UltralyticsAdapter(config, vp_home / "runs" / "job_1", _Silent())._train_args()
    assert (args["device"], args["amp"]) == (device, amp)


def test_no_adapter_decides_the_device_itself() -> None:
    """Only adapters/devices.py asks torch which accelerators exist to pick a job's device; the others that
    ask list devices (the selftest's probe, ``sysinfo``) or check an export's needs (TensorRT needs CUDA)."""
    allowed = {"devices.py", "device_probe.py", "worker.py", "export.py"}
    asks = []
    for path in sorted((ROOT / "adapters").glob("*.py")):
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "is_available" and _dotted(node.value) in (
                    "torch.cuda", "torch.backends.mps"):
                asks.append(f"{path.name}:{node.lineno}")
    assert asks == [], f"adapters deciding the device themselves (use adapters.devices): {asks}"


def test_every_adapter_uses_the_one_resolution() -> None:
    from adapters import timm_adapter, transformers_adapter

    assert timm_adapter.resolve_device is devices.resolve_device
    assert transformers_adapter.resolve_device is devices.resolve_device


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


class _Silent:
    """A reporter that hears nothing (building train arguments reports only ignored framework_args)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *_args, **_kwargs: None
