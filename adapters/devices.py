"""Which device a job runs on, one answer for every adapter: ``device: auto`` is an NVIDIA GPU (CUDA),
else an Apple-silicon GPU (MPS), else the CPU.

A named device that this computer lacks is refused with the reason, never silently replaced by the
CPU (a job asked for ``cuda`` and quietly trained for hours on the CPU is a worse surprise). Mixed
precision (AMP) is used on CUDA only: on MPS the frameworks either lack it (Ultralytics'
``check_amp`` turns it off there) or support it only partly, and on the CPU it does not pay; a job
on MPS trains in float32.
"""

from __future__ import annotations

from typing import Any

from adapters.base import AdapterError

AUTO, CPU, CUDA, MPS = "auto", "cpu", "cuda", "mps"


def _torch() -> Any:
    import torch

    return torch


def mps_available(torch: Any = None) -> bool:
    """Whether Apple's Metal GPU can run torch here (macOS 12.3+ on Apple silicon or an AMD GPU)."""
    backend = getattr((torch or _torch()).backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str) -> str:
    """The torch device for a job's ``device`` setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    torch = _torch()
    if requested == AUTO:
        if torch.cuda.is_available():
            return CUDA
        return MPS if mps_available(torch) else CPU
    if requested.startswith(CUDA) and not torch.cuda.is_available():
        raise AdapterError(f"device {requested!r} was requested but no CUDA GPU is available; choose cpu or auto")
    if requested == MPS and not mps_available(torch):
        raise AdapterError("device 'mps' was requested but Apple's Metal GPU (MPS) is not available here "
                           "(it needs macOS 12.3 or later on Apple silicon or an AMD GPU); choose cpu or auto")
    return requested


def device_type(device: str) -> str:
    """``cuda``, ``mps`` or ``cpu``: what ``torch.autocast`` and ``torch.amp.GradScaler`` take."""
    return device.partition(":")[0]


def amp_supported(device: str) -> bool:
    """Whether the adapters use mixed precision on ``device`` (a resolved one): on CUDA only."""
    return device_type(device) == CUDA


def ultralytics_device(device: str) -> str:
    """A resolved device as Ultralytics spells it: ``0`` (GPU index), ``mps`` or ``cpu``."""
    if device_type(device) == CUDA:
        return device.partition(":")[2] or "0"
    return device


def list_devices(torch: Any = None) -> list[dict[str, Any]]:
    """The devices a job can pick (the app's device list and the device probe): CPU, each CUDA GPU,
    and Apple's MPS GPU where present."""
    torch = torch or _torch()
    devices: list[dict[str, Any]] = [{"id": "cpu", "name": "CPU", "memory_bytes": None}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({"id": f"cuda:{index}", "name": props.name, "memory_bytes": props.total_memory})
    if mps_available(torch):
        devices.append({"id": "mps", "name": "Apple GPU (MPS)", "memory_bytes": None})
    return devices
