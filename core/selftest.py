"""``vision-platform selftest``: can this install (source or frozen) do its job on this machine?

One check per thing a support request would ask about, each a PASS/FAIL line with what was found:
versions, the compute devices (a small matrix product on each; no GPU is not a failure), the data
dir, the keyring, the MLflow store, the S3 settings (reachability only when configured), Qt's
platform-plugin libraries, then a real 1-epoch training on the shipped sample dataset through a real
worker process and an inference on its checkpoint. The training runs in a throw-away data dir, so the
user's projects never see it. A frozen app that opens its window can still be unable to train (a
missing compiled op, a data file left out): only this last check finds that.

Everything heavy runs in subprocesses started with ``core.launch.subcommand`` — the same executable
the app uses for its workers — so the check covers the way the app really starts them.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import paths
from core.launch import child_env, subcommand
from core.resources import is_frozen
from core.samples import SAMPLE_TRAINING, copy_sample, first_image

PASS, FAIL = "PASS", "FAIL"
VERSION_PACKAGES = ("vision-platform", "torch", "torchvision", "timm", "ultralytics", "transformers",
                    "PySide6-Essentials", "mlflow", "boto3")
REQUIRED_PACKAGES = ("torch", "torchvision", "timm")
SUBPROCESS_TIMEOUT_S = 600.0
SELFTEST_TRAINING = {**SAMPLE_TRAINING, "epochs": 1, "project": "Selftest"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # PASS | FAIL
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == PASS

    def line(self) -> str:
        return f"{self.status}  {self.name}: {self.detail}"


def _passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, PASS, detail)


def _failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, FAIL, detail)


# -- versions ----------------------------------------------------------------------------------------
def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_versions() -> CheckResult:
    found = {name: _version(name) for name in VERSION_PACKAGES}
    text = ", ".join(f"{name} {version or 'missing'}" for name, version in found.items())
    head = f"Python {platform.python_version()}, {'frozen' if is_frozen() else 'source'} on {platform.platform()}; "
    missing = [name for name in REQUIRED_PACKAGES if found[name] is None]
    if missing:
        return _failed("versions", head + text + f" ({', '.join(missing)} needed to train)")
    return _passed("versions", head + text)


# -- subprocesses --------------------------------------------------------------------------------------
def _run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(subcommand(*args), env=env or child_env(), cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=SUBPROCESS_TIMEOUT_S)


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


# -- devices -------------------------------------------------------------------------------------------
def _describe_device(device: dict[str, Any]) -> str:
    memory = device.get("memory_bytes")
    size = f" {memory / 2**30:.1f} GiB" if memory else ""
    product = device.get("matmul", {})
    verdict = "matmul ok" if product.get("ok") else f"matmul FAILED ({product.get('error', 'no result')})"
    return f"{device['id']} {device['name']}{size} {verdict}"


def device_result(report: dict[str, Any]) -> CheckResult:
    """PASS when every listed device computes; a machine without a GPU passes (CPU only)."""
    if "error" in report:
        return _failed("devices", f"torch could not start: {report['error']}")
    devices = report.get("devices", [])
    text = "; ".join(_describe_device(device) for device in devices)
    gpus = [device for device in devices if device["id"] != "cpu"]
    suffix = f" (torch {report.get('torch')}, CUDA {report.get('cuda') or 'none'})"
    if not gpus:
        text += "; no GPU (CPU only)"
    if all(device.get("matmul", {}).get("ok") for device in devices):
        return _passed("devices", text + suffix)
    return _failed("devices", text + suffix)


def check_devices() -> CheckResult:
    done = _run(["device-probe"])
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return _failed("devices", f"the device probe exited {done.returncode}: {_tail(done.stderr)}")
    return device_result(report)


# -- data dir, keyring, MLflow, S3 ---------------------------------------------------------------------
def check_data_dir() -> CheckResult:
    try:
        folder = paths.data_dir()
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".selftest-", delete=True) as handle:
            handle.write(b"ok")
            handle.flush()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return _failed("data dir", f"cannot write in the data dir: {exc} (set VP_HOME to a writable folder)")
    return _passed("data dir", f"{folder} is writable, {free / 2**30:.1f} GiB free")


def check_keyring() -> CheckResult:
    from core.services.settings import credentials_status

    status = credentials_status()
    if status.backend_notice.startswith("The keyring could not be read"):
        return _failed("keyring", status.backend_notice)
    keys = f"keys from {status.source}" if status.source else "no keys saved"
    return _passed("keyring", f"{status.backend_notice} ({keys})")


def _settings() -> Any:
    from core.services.settings import load_settings, open_data_store

    return load_settings(open_data_store())


def check_mlflow(settings: Any) -> CheckResult:
    from core.tracking.mlflow_logger import tracking_uri

    uri = tracking_uri(settings)
    try:
        from mlflow.tracking import MlflowClient

        experiments = MlflowClient(tracking_uri=uri).search_experiments(max_results=5)
    except Exception as exc:
        return _failed("mlflow", f"the tracking store {uri} cannot be opened: {type(exc).__name__}: {exc}")
    state = "on" if settings.tracking_enabled else "off (settings)"
    return _passed("mlflow", f"{uri} opens ({len(experiments)} experiment(s) listed), tracking {state}")


def check_s3(settings: Any) -> CheckResult:
    from core.services import ServiceError
    from core.services.settings import check_connection

    if not settings.r2_endpoint_url:
        return _passed("s3", "not configured (no r2_endpoint_url): checkpoints stay local")
    try:
        return _passed("s3", check_connection(settings))
    except ServiceError as exc:
        return _failed("s3", str(exc))


def check_platform_plugin() -> CheckResult:
    from core.platform_plugin import check_platform_plugin as check

    result = check()
    if result.platform != "xcb":
        return _passed("qt platform", f"{result.platform}: no X11 libraries needed")
    if result.ok:
        return _passed("qt platform", "xcb: every library the plugin links is installed")
    return _failed("qt platform", result.message().replace("\n", " "))


# -- a real training and an inference --------------------------------------------------------------------
def _isolated_env(home: Path) -> dict[str, str]:
    env = child_env()
    env["VP_HOME"] = str(home)
    for name in ("MLFLOW_TRACKING_URI", "AWS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)  # the throw-away run tracks locally and uploads nothing
    return env


def _write_job(work: Path) -> Path:
    import yaml

    data = copy_sample(work / "shapes")
    job = work / "job.yaml"
    job.write_text(yaml.safe_dump({**SELFTEST_TRAINING, "dataset": str(data)}), encoding="utf-8")
    return job


def _predicted_rows(csv_file: Path) -> list[dict[str, str]]:
    with open(csv_file, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check_training(work: Path) -> tuple[CheckResult, CheckResult]:
    """Train 1 epoch in a real worker, then predict one image with its checkpoint (both via the CLI)."""
    env = _isolated_env(work / "home")
    trained = _run(["train", str(_write_job(work))], env=env, cwd=work)
    if trained.returncode != 0:
        detail = f"`train` exited {trained.returncode}: {_tail(trained.stdout + trained.stderr)}"
        return _failed("training", detail), _failed("inference", "skipped: no checkpoint")
    outcome = [line for line in trained.stdout.splitlines() if line.startswith("job ")] or [_tail(trained.stdout, 1)]
    training = _passed("training", f"1 epoch of {SELFTEST_TRAINING['model']} on the sample dataset in a worker "
                                   f"process: {outcome[-1].strip()}")
    out = work / "predictions"
    image = first_image(work / "shapes")
    predicted = _run(["predict", "1", str(image), "--format", "csv", "--out", str(out)], env=env, cwd=work)
    files = sorted(out.glob("*.csv")) if out.is_dir() else []
    rows = _predicted_rows(files[0]) if files else []
    if predicted.returncode != 0 or not rows:
        return training, _failed("inference", f"`predict` exited {predicted.returncode}, {len(rows)} rows: "
                                              f"{_tail(predicted.stdout + predicted.stderr)}")
    return training, _passed("inference", f"{image.name}: {_tail(predicted.stdout, 1)} ({len(rows)} CSV row(s))")


# -- the whole run ------------------------------------------------------------------------------------
def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # one broken check never hides the others
        return _failed(name, f"{type(exc).__name__}: {exc}")


def run_selftest(*, train: bool = True, on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Every check in order; ``on_result`` sees each one as it finishes (the CLI prints it)."""
    results: list[CheckResult] = []

    def record(result: CheckResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    record(_guarded("versions", check_versions))
    record(_guarded("devices", check_devices))
    record(_guarded("data dir", check_data_dir))
    record(_guarded("keyring", check_keyring))
    try:
        settings = _settings()
    except Exception as exc:  # no readable settings: the checks that need them fail, the rest still run
        settings, problem = None, f"the settings could not be read: {type(exc).__name__}: {exc}"
    record(_guarded("mlflow", lambda: check_mlflow(settings)) if settings else _failed("mlflow", problem))
    record(_guarded("s3", lambda: check_s3(settings)) if settings else _failed("s3", problem))
    record(_guarded("qt platform", check_platform_plugin))
    if train:
        with tempfile.TemporaryDirectory(prefix="vp-selftest-") as work:
            for result in check_training(Path(work)):
                record(result)
    return results


def as_json(results: list[CheckResult]) -> dict[str, Any]:
    return {"ok": all(result.ok for result in results), "frozen": is_frozen(), "executable": sys.executable,
            "pid": os.getpid(), "checks": [asdict(result) for result in results]}
