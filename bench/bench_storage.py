"""Storage and tracking benchmarks (issue 5).

1. Upload throughput of one file (default 64 MB) to a local SeaweedFS: our ``upload_file`` (equal
   16 MiB parts, Content-MD5, sha256 + verify) vs boto3's ``upload_file`` with its defaults (what
   ``aws s3 cp`` does: 8 MiB parts, 10 threads, default checksums), same run, median of N.
2. Tracking overhead on the runner loop: a simulated job (default 20 epochs × 200 steps) whose events
   are persisted exactly as the runner does and handed to ``MlflowListener`` (SQLite MLflow store) vs
   the same loop with no listener. Each step also burns ``--step-ms`` of CPU in this process to stand
   in for training; real training runs in a separate worker process, so this over-states contention
   (the sender thread competes for the GIL here). Target ratio ≤ 1.02.
   A full training-job ratio (tracking + sync on vs off) belongs in bench_engine.py's end-to-end
   harness; see the report of issue 5.

Run: ``python bench/bench_storage.py [--size-mb 64] [--repeat 3] [--epochs 20] [--steps 200]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402

MiB = 1024 * 1024


def bench_upload(size_mb: int, repeat: int) -> list[tuple[str, str, str, str]]:
    from boto3.s3.transfer import TransferConfig

    from core.settings import Settings
    from core.storage.client import make_s3_client, upload_file
    from core.storage.credentials import Credentials
    from tests.fixtures.s3server import SeaweedFS

    work = Path(tempfile.mkdtemp(prefix="bench_storage_"))
    server = SeaweedFS(work / "s3")
    server.start()
    try:
        source = work / "payload.bin"
        source.write_bytes(os.urandom(size_mb * MiB))
        ours_client = make_s3_client(
            Settings(r2_endpoint_url=server.endpoint_url, r2_bucket=server.bucket),
            Credentials(server.access_key, server.secret_key, "env"),
        )
        plain = server.client()
        ours: list[float] = []
        base: list[float] = []
        for i in range(repeat):
            started = time.perf_counter()
            plain.upload_file(str(source), server.bucket, f"plain/{i}.bin", Config=TransferConfig())
            base.append(time.perf_counter() - started)
            started = time.perf_counter()
            upload_file(ours_client, source, server.bucket, f"ours/{i}.bin", max_bytes=size_mb * MiB)
            ours.append(time.perf_counter() - started)
        ours_mbps = size_mb / statistics.median(ours)
        base_mbps = size_mb / statistics.median(base)
        return [
            (f"upload {size_mb} MB, ours (16 MiB parts, md5+sha256, verify)", f"{ours_mbps:.0f} MB/s",
             f"boto3 upload_file defaults: {base_mbps:.0f} MB/s", f"{ours_mbps / base_mbps:.2f}× baseline"),
        ]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1


def _simulate(store: object, job_id: int, listener: object | None, epochs: int, steps: int, step_ms: float) -> float:
    from core.jobs.runner import _EventBatch
    from tests.fixtures.tracking import epoch_events

    batcher = _EventBatch(job_id)
    if listener is not None:
        listener.on_job_start(job_id)  # type: ignore[attr-defined]
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        events = epoch_events(epoch, steps)
        # The runner flushes about once per second or per 500 events; flush every 50 steps here.
        for start in range(0, len(events), 50):
            chunk = events[start : start + 50]
            for _ in chunk:
                _busy(step_ms)
            batcher.persist(store, chunk)  # type: ignore[arg-type]
            if listener is not None:
                listener.on_events(job_id, chunk)  # type: ignore[attr-defined]
    if listener is not None:
        listener.on_job_end(job_id, "completed")  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return elapsed


def bench_tracking(epochs: int, steps: int, step_ms: float, pairs: int) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import update

    from core.db.engine import open_store
    from core.db.models import TrainingJob
    from core.settings import Settings
    from core.tracking import MlflowListener, MlflowTracker
    from core.tracking.listener import STEP_LOG_EVERY
    from tests.fixtures.tracking import make_job

    home = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    os.environ["VP_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        store = open_store()
        MlflowTracker().client.search_experiments()  # create mlflow.db outside the timed loop
        rows = []
        offs: list[float] = []
        ons: list[float] = []
        drains: list[float] = []
        for _ in range(pairs):  # alternate off/on so machine load drifts hit both alike
            off_id = make_job(store, epochs=epochs)
            offs.append(_simulate(store, off_id, None, epochs, steps, step_ms))
            on_id = make_job(store, epochs=epochs)
            listener = MlflowListener(store, Settings())
            ons.append(_simulate(store, on_id, listener, epochs, steps, step_ms))
            flush_started = time.perf_counter()
            listener.close(timeout=600)
            drains.append(time.perf_counter() - flush_started)
            with store.write() as session:
                session.execute(update(TrainingJob).where(TrainingJob.id == on_id).values(status="completed"))
        off, on = statistics.median(offs), statistics.median(ons)
        ratio = on / off
        rows.append((f"runner loop {epochs}×{steps} steps, {step_ms} ms/step, MLflow on/off (median of {pairs})",
                     f"{ratio:.3f}", f"off {off:.2f} s, on {on:.2f} s; target ≤ 1.02",
                     "ok" if ratio <= 1.02 else "over target"))
        rows.append(("MLflow drain after job end (background)", f"{statistics.median(drains):.2f} s",
                     f"{epochs * (steps + 1)} metric rows; steps every {STEP_LOG_EVERY}th", "not on the runner thread"))
        return rows
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--step-ms", type=float, default=2.0)
    parser.add_argument("--skip-upload", action="store_true")
    args = parser.parse_args()
    rows = []
    if not args.skip_upload:
        rows += bench_upload(args.size_mb, args.repeat)
    rows += bench_tracking(args.epochs, args.steps, args.step_ms, args.repeat)
    print_table("Storage and tracking (issue 5)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
