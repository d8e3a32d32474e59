"""``vision-platform device-probe``: the selftest's look at the compute devices, in a subprocess.

Prints one JSON object: torch's version and CUDA build, every CUDA device (name, memory), Apple's MPS GPU and the
result of a small matrix product on each device (the CPU included), checked against the CPU result —
a GPU that is listed but cannot compute shows up here, not in the middle of a training run.
"""

from __future__ import annotations

import json
import time
from typing import Any

from adapters.devices import list_devices

MATMUL_SIZE = 256


def _matmul_check(torch: Any, device: str) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    left = torch.rand(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    right = torch.rand(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    expected = left @ right
    started = time.perf_counter()
    try:
        product = (left.to(device) @ right.to(device)).cpu()
    except Exception as exc:  # a broken driver or an unsupported GPU: reported, not raised
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    ok = bool(torch.allclose(product, expected, rtol=1e-2, atol=1e-2))
    return {"ok": ok, "seconds": round(time.perf_counter() - started, 4),
            **({} if ok else {"error": "the product differs from the CPU's"})}


def probe() -> dict[str, Any]:
    import torch

    devices = list_devices(torch)
    for device in devices:
        device["matmul"] = _matmul_check(torch, device["id"])
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "devices": devices}


def main() -> int:
    try:
        report = probe()
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(report))
    return 0
