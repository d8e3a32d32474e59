"""Engine benchmarks (issue 2).

1. Engine overhead: the same timm model, data, epochs and seed through `vision-platform train`
   (runner + worker subprocess + SQLite persistence) vs a bare timm loop written here, each in a fresh
   interpreter, in one run. Prints the wall-time ratio (target ≤ 1.03 on CPU) and the host time per
   step the engine adds (target ≤ 0.3 ms). A third loop, the bare one with the cyclic GC paused while
   it imports (as our worker does, ``core.gc_policy``), shows how much of the result is that one thing.
2. Metric persistence: 100k metric rows through the runner's batched persistence vs raw sqlite3
   executemany (and one commit per row, for scale), in one run (target ≥ 0.5× raw).

Run: `python bench/bench_engine.py [--images N] [--epochs E]` (or `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402

# The bare loop's data part (after its imports), shared with bench_job_start's first-step variant.
BARE_DATA = r'''
cfg = json.loads(sys.argv[1])
torch.manual_seed(cfg["seed"])
index = open_dataset(cfg["dataset"])
split = split_dataset(index, "stratified", 0.8, 42)
names = index.class_names
def load(records):
    xs = np.stack([np.asarray(Image.open(r.path).convert("RGB").resize((cfg["size"], cfg["size"])), dtype=np.uint8).transpose(2, 0, 1) for r in records])
    ys = torch.tensor([names.index(r.labels[0]) for r in records])
    return torch.from_numpy(xs), ys
xtr, ytr = load(split.train); xva, yva = load(split.val)
'''

BARE_LOOP = r'''
import json, math, sys, time
t0 = time.perf_counter()
import numpy as np, timm, torch
from PIL import Image
from core.datasets import open_dataset, split_dataset
''' + BARE_DATA + r'''
model = timm.create_model(cfg["model"], num_classes=len(names))
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1) * 255; std = mean.clone()
steps = 0
for epoch in range(cfg["epochs"]):
    model.train()
    order = torch.randperm(len(xtr))
    for s in range(math.ceil(len(xtr) / cfg["batch"])):
        idx = order[s * cfg["batch"]:(s + 1) * cfg["batch"]]
        if len(idx) < 2: continue
        x = (xtr[idx].float() - mean) / std
        loss = torch.nn.functional.cross_entropy(model(x), ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step(); steps += 1
    model.eval()
    with torch.no_grad():
        for s in range(0, len(xva), cfg["batch"]):
            model((xva[s:s + cfg["batch"]].float() - mean) / std)
    torch.save(model.state_dict(), cfg["out"])
print(json.dumps({"wall": time.perf_counter() - t0, "steps": steps}))
'''


# The same loop with the cyclic GC paused while it imports, as our worker does (core.gc_policy): the
# bare loop above is what users write, this one says how much of the difference is that one thing.
BARE_LOOP_GC_PAUSED = BARE_LOOP.replace("import numpy as np, timm, torch\n", "import gc\ngc.disable()\nimport numpy as np, timm, torch\n", 1).replace(
    "from core.datasets import open_dataset, split_dataset\n", "from core.datasets import open_dataset, split_dataset\ngc.freeze()\ngc.enable()\n", 1)
assert BARE_LOOP_GC_PAUSED.count("gc.") == 3


def engine_overhead(images: int, epochs: int, work: Path, runs: int = 2) -> list[tuple[str, str, str, str]]:
    from tests.helpers.datasets_gen import make_imagefolder

    data = work / "data"
    make_imagefolder(data, classes=("red", "green", "blue", "white"), per_class=images // 4, size=64, ext=".jpg")
    cfg = {"dataset": str(data), "model": "test_resnet", "epochs": epochs, "batch": 32, "size": 64, "lr": 0.003,
           "seed": 0, "out": str(work / "bare.pt")}
    env = dict(os.environ, PYTHONPATH=str(ROOT), VP_HOME=str(work / "home"), OMP_NUM_THREADS=str(os.cpu_count()))
    job = work / "job.yaml"
    job.write_text(json.dumps({"dataset": str(data), "model": "test_resnet", "epochs": epochs, "batch_size": 32,
                               "image_size": 64, "learning_rate": 0.003, "seed": 0}))
    # Tracking and sync off: this measures the engine alone (bench_storage measures those).
    subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                    "s=open_store(); c=Settings.load(s); c.tracking_enabled=False; c.sync_enabled=False; c.save(s)"],
                   env=env, check=True, cwd=ROOT)
    results = []
    paused: list[float] = []
    for _ in range(runs):  # alternate to spread machine noise over both
        started = time.perf_counter()
        bare = subprocess.run([sys.executable, "-c", BARE_LOOP, json.dumps(cfg)], env=env, capture_output=True,
                              text=True, check=True, cwd=ROOT)
        bare_wall = time.perf_counter() - started
        bare_steps = json.loads(bare.stdout.strip().splitlines()[-1])["steps"]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE_LOOP_GC_PAUSED, json.dumps(cfg)], env=env, capture_output=True,
                       text=True, check=True, cwd=ROOT)
        paused_wall = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vision_platform", "train", str(job)], env=env, capture_output=True,
                       text=True, check=True, cwd=ROOT)
        engine_wall = time.perf_counter() - started
        results.append((bare_wall, engine_wall, bare_steps))
        paused.append(paused_wall)
    bare_wall = min(r[0] for r in results)
    engine_wall = min(r[1] for r in results)
    steps = results[0][2]
    pairs = ", ".join(f"{engine:.2f}/{bare:.2f}" for bare, engine, _steps in results)
    # The verdict takes the median of the per-pair ratios: a pair runs back to back, so a slow spell of
    # the machine (this VM's identical bare runs spread by ±8 %) mostly cancels; fastest-of-each is shown too.
    ratio = statistics.median(engine / bare for bare, engine, _steps in results)
    fastest_ratio = engine_wall / bare_wall
    per_step_ms = (ratio - 1) * statistics.median(bare for bare, _engine, _steps in results) / steps * 1000
    paused_ratio = statistics.median(engine / other for (_bare, engine, _steps), other in zip(results, paused, strict=True))
    return [
        ("bare timm loop (fresh process, wall, fastest)", f"{bare_wall:.2f} s", "baseline", ""),
        ("vision-platform train (wall, fastest)", f"{engine_wall:.2f} s", f"{steps} steps, {epochs} epochs", ""),
        ("wall ratio engine / bare (median of the pairs)", f"{ratio:.3f}", "≤ 1.03", "PASS" if ratio <= 1.03 else "FAIL"),
        ("  each pair, engine / bare (s)", pairs, f"{runs} alternated pairs", ""),
        ("  fastest engine run / fastest bare run", f"{fastest_ratio:.3f}", "for scale", ""),
        ("engine time added per step (all causes)", f"{per_step_ms:.3f} ms", "≤ 0.3 ms",
         "PASS" if per_step_ms <= 0.3 else "over"),
        ("bare loop with GC paused while importing (wall, median)", f"{statistics.median(paused):.2f} s",
         "what our worker does at import", ""),
        ("  engine / that loop (median of the runs)", f"{paused_ratio:.3f}", "for scale: the engine's own cost", ""),
    ]


_COMPLETED_LINE = re.compile(r"^job (\d+) (completed|failed|cancelled)\b")
_FINISHING_LINE = re.compile(r"done in ([0-9.]+) s")


def _train_timed(job: Path, home: Path, *, tracking: bool, sync: bool, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `vision-platform train` in a fresh process, timed at two points: the "job N completed"
    line (with the job row's status read from SQLite at that moment) and the process's exit, after
    MLflow's last writes and the checkpoint uploads ("finishing …  done in X s", also returned)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), VP_HOME=str(home), **(extra_env or {}))
    subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                    f"s=open_store(); c=Settings.load(s); c.tracking_enabled={tracking}; c.sync_enabled={sync}; c.save(s)"],
                   env=env, check=True, cwd=ROOT)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "vision_platform", "train", str(job)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    result: dict[str, Any] = {}
    for line in process.stdout:
        match = _COMPLETED_LINE.match(line)
        if match and "completed" not in result:
            result["completed"] = time.perf_counter() - started
            # CPU of the CLI process (runner, listeners' threads) so far: what tracking costs the machine
            # before "completed", readable even when other work shares it (wall time then is not).
            cpu = psutil.Process(process.pid).cpu_times()
            result["runner_cpu"] = cpu.user + cpu.system
            with sqlite3.connect(home / "vision_platform.db") as db:
                row = db.execute("SELECT status FROM training_jobs WHERE id = ?", (int(match.group(1)),)).fetchone()
            result["db_status"] = row[0] if row else None
        finishing = _FINISHING_LINE.search(line)
        if finishing:
            result["finishing_reported"] = float(finishing.group(1))
    stderr = process.stderr.read() if process.stderr else ""
    if process.wait() != 0 or "completed" not in result:
        raise RuntimeError(f"train failed (exit {process.returncode}): {stderr[-3000:]}")
    result["exit"] = time.perf_counter() - started
    return result


def tracking_and_sync_overhead(images: int, epochs: int, work: Path, attempts: int = 3) -> list[tuple[str, str, str, str]]:
    """Issue 5/11: the same job with MLflow tracking + R2/S3 sync on (local SeaweedFS) vs both off.

    What tracking adds before the job reads "completed" (target ≤ 2 %) is reported apart from the
    time after it: MLflow's last writes and the checkpoint uploads, which are upload time, not job time.
    """
    from tests.fixtures.s3server import SeaweedFS
    from tests.helpers.datasets_gen import make_imagefolder

    data = work / "data_ts"
    make_imagefolder(data, classes=("red", "green", "blue", "white"), per_class=images // 4, size=64, ext=".jpg")
    job = work / "job_ts.yaml"
    job.write_text(json.dumps({"dataset": str(data), "model": "test_resnet", "epochs": epochs, "batch_size": 32,
                               "image_size": 64, "learning_rate": 0.003, "seed": 0}))
    server = SeaweedFS(work / "weed")
    server.start()
    try:
        s3_env = {"AWS_S3_ENDPOINT_URL": server.endpoint_url, "AWS_ACCESS_KEY_ID": server.access_key,
                  "AWS_SECRET_ACCESS_KEY": server.secret_key, "R2_BUCKET": server.bucket}
        off, on = [], []
        # Same data dir across attempts: MLflow creates its database once per install, not per job.
        for _attempt in range(attempts):  # alternate, to spread machine noise over both
            off.append(_train_timed(job, work / "off", tracking=False, sync=False))
            on.append(_train_timed(job, work / "on", tracking=True, sync=True, extra_env=s3_env))
        listing = server.client().list_objects_v2(Bucket=server.bucket, Prefix="checkpoints/")
        uploaded = [o["Key"] for o in listing.get("Contents", [])]
    finally:
        server.stop()
    statuses = sorted({str(r["db_status"]) for r in off + on})
    ratio = statistics.median(r["completed"] for r in on) / statistics.median(r["completed"] for r in off)
    exit_ratio = statistics.median(r["exit"] for r in on) / statistics.median(r["exit"] for r in off)
    after = [r["exit"] - r["completed"] for r in on]
    return [
        ("train, tracking + sync off: start → \"completed\"", _spread([r["completed"] for r in off]), "baseline", ""),
        ("  CPU of the CLI/runner process until then", _spread([r["runner_cpu"] for r in off]), "", ""),
        ("train, MLflow + upload on: start → \"completed\"", _spread([r["completed"] for r in on]),
         f"DB status then: {', '.join(statuses)}", ""),
        ("  CPU of the CLI/runner process until then", _spread([r["runner_cpu"] for r in on]),
         "MLflow import + store + sends, boto3 …", ""),
        ("ratio on / off, start → \"completed\" (medians)", f"{ratio:.3f}", "≤ 1.02", "PASS" if ratio <= 1.02 else "FAIL"),
        ("on: \"completed\" → exit (MLflow flush + uploads)", _spread(after), f"{len(uploaded)} objects uploaded", ""),
        ("on: upload + flush time the CLI reports", _spread([r.get("finishing_reported", float("nan")) for r in on]),
         "upload time", ""),
        ("off: \"completed\" → exit", _spread([r["exit"] - r["completed"] for r in off]), "", ""),
        ("ratio on / off, whole process (medians)", f"{exit_ratio:.3f}", "for scale", ""),
    ]


def _spread(values: list[float]) -> str:
    """Median [min–max] of repeated runs (the machine may be shared: one run proves little)."""
    return f"{statistics.median(values):.2f} s [{min(values):.2f}–{max(values):.2f}]"


def reporter_host_cost(n: int = 20000) -> list[tuple[str, str, str, str]]:
    """Host time of the per-step reporting calls alone (encode + write to a pipe read by another process)."""
    from core.events import EventWriter
    from core.reporter import JsonLinesReporter

    reader = subprocess.Popen([sys.executable, "-c", "import sys\nfor _ in sys.stdin: pass"], stdin=subprocess.PIPE, text=True)
    assert reader.stdin is not None
    reporter = JsonLinesReporter(EventWriter(reader.stdin))
    started = time.perf_counter()
    for step in range(n):
        reporter.metrics({"train/loss": 0.5, "lr": 0.001}, epoch=1, step=step, kind="step")
        reporter.progress(1, 10, step, n)
        reporter.should_stop()
    per_step = (time.perf_counter() - started) / n * 1000
    reader.stdin.close()
    reader.wait()
    return [("reporter calls per step (metrics+progress+stop check)", f"{per_step:.4f} ms", "≤ 0.3 ms",
             "PASS" if per_step <= 0.3 else "FAIL")]


def metric_persistence(rows: int, work: Path) -> list[tuple[str, str, str, str]]:
    from core.config import config_from_dict
    from core.db.engine import Store
    from core.jobs import store as job_store
    from core.jobs.runner import FLUSH_MAX_EVENTS, _Persistence
    from core.jobs.spool import EventSpool

    os.environ["VP_HOME"] = str(work / "persist_home")
    store = Store(work / "persist.db")
    store.migrate()
    store.ensure_defaults()
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(work)}))
    events = [{"type": "metrics", "kind": "step", "epoch": 1 + i // 1000, "step": i,
               "values": {"train/loss": 0.5, "lr": 0.001, "train/box_loss": 0.1}} for i in range(rows)]
    # The runner's own write path: batches through the spool (empty here, as when SQLite is writable).
    persistence = _Persistence(store, job_id, EventSpool(work / "persist_run"), {})
    started = time.perf_counter()
    for start in range(0, rows, FLUSH_MAX_EVENTS):
        persistence.write(events[start : start + FLUSH_MAX_EVENTS])
    ours = rows / (time.perf_counter() - started)
    assert not persistence.spool.events, "every batch was written"

    # Raw baseline: the same schema (a fresh copy of the app's DB: same table, index and foreign key),
    # rows already encoded, plain sqlite3 executemany in the same batch size.
    store.dispose()
    fresh = Store(work / "raw.db")
    fresh.migrate()
    fresh.ensure_defaults()
    raw_job = job_store.create_job(fresh, config_from_dict({"dataset": str(work)}))
    fresh.dispose()
    raw = sqlite3.connect(work / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("PRAGMA foreign_keys=ON")
    sql = ("INSERT INTO training_metrics (job_id, epoch, step, kind, loss, accuracy, learning_rate, extra_metrics, "
           "created_at) VALUES (?,?,?,?,?,?,?,?,?)")
    tuples = [(raw_job, 1 + i // 1000, i, "step", 0.5, None, 0.001, json.dumps(e["values"]), "2026-01-01 00:00:00.000000")
              for i, e in enumerate(events)]
    started = time.perf_counter()
    for start in range(0, rows, FLUSH_MAX_EVENTS):
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(sql, tuples[start : start + FLUSH_MAX_EVENTS])
        raw.execute("COMMIT")
    raw_rate = rows / (time.perf_counter() - started)
    store = Store(work / "persist.db")
    per_row_n = min(rows, 5000)
    started = time.perf_counter()
    for item in tuples[:per_row_n]:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(sql, item)
        raw.execute("COMMIT")
    per_row_rate = per_row_n / (time.perf_counter() - started)
    ratio = ours / raw_rate
    assert job_store.metric_count(store, job_id) == rows
    return [
        ("raw sqlite3 executemany, same table (pre-encoded rows)", f"{raw_rate:,.0f} rows/s", "baseline", ""),
        ("one commit per row (raw)", f"{per_row_rate:,.0f} rows/s", "for scale", ""),
        (f"runner batching ({rows:,} rows, events → rows)", f"{ours:,.0f} rows/s", "≥ 0.5× raw",
         "PASS" if ratio >= 0.5 else "FAIL"),
        ("ratio runner / raw", f"{ratio:.2f}×", "≥ 0.5", "PASS" if ratio >= 0.5 else "FAIL"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--engine-runs", type=int, default=5, help="alternated bare/engine pairs")
    parser.add_argument("--only-engine", action="store_true", help="run only the engine overhead comparison")
    parser.add_argument("--only-tracking", action="store_true", help="run only the tracking + sync comparison")
    parser.add_argument("--attempts", type=int, default=3, help="runs of each side in the tracking comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vp-bench-engine-") as tmp:
        work = Path(tmp)
        if args.only_engine:
            print_table("Engine overhead, CPU (issue 2)", engine_overhead(args.images, args.epochs, work, args.engine_runs))
            return 0
        if args.only_tracking:
            print_table("Tracking + sync overhead, CPU (issue 5)",
                        tracking_and_sync_overhead(args.images, args.epochs, work, args.attempts))
            return 0
        print_table("Metric persistence (issue 2)", metric_persistence(args.rows, work))
        print_table("Reporter host cost (issue 2)", reporter_host_cost())
        if not args.skip_training:
            print_table("Engine overhead, CPU (issue 2)", engine_overhead(args.images, args.epochs, work, args.engine_runs))
            print_table("Tracking + sync overhead, CPU (issue 5)",
                        tracking_and_sync_overhead(args.images, args.epochs, work, args.attempts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
