"""Job start cost (issue 11): time from `vision-platform train job.yaml` — and from the GUI's Queue
button — to the worker's first training step, phase by phase, against the bare timm loop's time to
its first step (same model, data and seed, fresh interpreter, same run).

How it is timed: each engine run is a fresh interpreter running a small driver that wraps the CLI's
own functions (config load, preflight, store open, queue, runner start, worker ``Popen``) to stamp
when each returns, then calls the real ``vision_platform.launcher.main(["train", job])``. Worker-side
phases come from the worker's own events, which carry the worker's ``time.time()`` (``hello`` after
its imports, ``status`` "Reading the dataset", ``dataset``, ``status`` "Building the model", the
first ``metrics`` step). The worker process's creation time comes from psutil. The bare loop stamps
its own phases. All times are wall-clock seconds from the parent's ``Popen`` (process start).

Each attempt stops the job right after its first step (a STOP file, as the CLI's Ctrl+C does), so a
run costs seconds. Runs alternate bare / CLI / queue; medians and [min–max] over ``--repeat`` runs.

Run: ``python bench/bench_job_start.py [--images 800] [--repeat 3]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402
from bench.bench_engine import BARE_DATA  # noqa: E402

# The bare loop of bench_engine, stopped after its first step, stamping its phases.
BARE_FIRST_STEP = r'''
import json, sys, time
marks = {"interpreter": time.time()}
import numpy as np, timm, torch
from PIL import Image
from core.datasets import open_dataset, split_dataset
marks["imports"] = time.time()
''' + BARE_DATA + r'''
marks["dataset"] = time.time()
model = timm.create_model(cfg["model"], num_classes=len(names))
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1) * 255; std = mean.clone()
marks["model"] = time.time()
model.train()
idx = torch.randperm(len(xtr))[:cfg["batch"]]
loss = torch.nn.functional.cross_entropy(model((xtr[idx].float() - mean) / std), ytr[idx])
opt.zero_grad(); loss.backward(); opt.step()
marks["first step"] = time.time()
print(json.dumps(marks))
'''

# Shared by both engine drivers: stamp when wrapped functions return, record worker events, stop
# the job at its first step.
_DRIVER_COMMON = r'''
import json, sys, threading, time
marks = {"interpreter": time.time()}
first_step = threading.Event()

def stamp(owner, name, label):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        marks.setdefault(label, time.time())
        return result
    setattr(owner, name, wrapped)

# Stamps are installed when a module is first imported, not by importing it here: the CLI imports
# what it needs lazily (and starts its worker first), and the driver may not change that order.
import importlib.abc, importlib.util
_after_import = {}

def when_imported(name, patch):
    if name in sys.modules:
        patch(sys.modules[name])
    else:
        _after_import.setdefault(name, []).append(patch)

class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _after_import:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        patches, exec_module = _after_import.pop(name), spec.loader.exec_module
        def exec_and_patch(module):
            exec_module(module)
            for patch in patches:
                patch(module)
        spec.loader.exec_module = exec_and_patch
        return spec

sys.meta_path.insert(0, _PostImportFinder())

def install_runner_stamps():
    import subprocess
    original_popen = subprocess.Popen
    class StampedPopen(original_popen):
        def __init__(self, *args, **kwargs):
            if "worker" in args[0]:
                marks.setdefault("runner ready to spawn", time.time())
            super().__init__(*args, **kwargs)
            if "worker" in args[0]:
                marks.setdefault("worker process created", time.time())  # fork + exec returned
    subprocess.Popen = StampedPopen

    def patch_spawn(spawn):  # a standby worker (started before the job exists) is handed its run dir
        original_hand_over = spawn.StandbyWorker.hand_over
        def hand_over(self, *args, **kwargs):
            process = original_hand_over(self, *args, **kwargs)
            if process is not None:
                marks.setdefault("run dir handed to the standby worker", time.time())
            return process
        spawn.StandbyWorker.hand_over = hand_over

    def patch_runner(runner_module):
        original_run = runner_module.JobRunner.run
        def run(self, job_id, **kwargs):
            marks.setdefault("runner start", time.time())
            return original_run(self, job_id, **kwargs)
        runner_module.JobRunner.run = run

    when_imported("core.jobs.spawn", patch_spawn)  # absent in older checkouts: never called there
    when_imported("core.jobs.runner", patch_runner)

def record(job_id, event):
    from core.jobs import store as job_store
    kind = event.get("type")
    label = {"hello": "worker hello (imports + config)", "dataset": "dataset read + decoded"}.get(kind)
    if kind == "status" and event.get("message") == "Reading the dataset":
        label = "adapter ready"
    elif kind == "status" and event.get("message") == "Building the model":
        label = "model build starts"
    elif kind == "status" and event.get("state") == "training":
        label = "model built"
    elif kind == "metrics" and event.get("kind") == "step":
        label = "first step"
    if label:
        marks.setdefault(label, float(event["t"]))
    if label == "first step" and not first_step.is_set():
        marks["first step seen by the runner"] = time.time()
        first_step.set()
        job_store.stop_file_for(job_id).touch()  # what Ctrl+C does: end after this batch
'''

CLI_DRIVER = _DRIVER_COMMON + r'''
install_runner_stamps()
if sys.argv[2:] == ["no-standby"]:  # the same tree with a plain worker started when the job is ready
    when_imported("core.jobs.spawn", lambda spawn: setattr(spawn.StandbyWorker, "start", classmethod(lambda cls, *a: None)))
from core import cli
marks["CLI imports"] = time.time()
stamp(cli, "build_parser", "arguments parsed")
if hasattr(cli, "load_config"):  # older checkouts import it at the top
    stamp(cli, "load_config", "config loaded")
else:
    when_imported("core.config", lambda module: stamp(module, "load_config", "config loaded"))
when_imported("core.jobs.preflight", lambda module: stamp(module, "preflight", "preflight done"))
stamp(cli, "_store", "store open + reconciled")
when_imported("core.services.jobs", lambda module: stamp(module, "queue_job", "job queued"))
printer_call = cli._ProgressPrinter.__call__
def printer(self, job_id, event):
    record(job_id, event)
    printer_call(self, job_id, event)
cli._ProgressPrinter.__call__ = printer
from vision_platform.launcher import main
main(["train", sys.argv[1]])
print("MARKS " + json.dumps(marks))
'''

QUEUE_DRIVER = _DRIVER_COMMON + r'''
from core.config import load_config
from core.db.engine import open_store
from core.jobs.preflight import preflight
from core.jobs.queue import JobQueue
from core.services.jobs import queue_job
install_runner_stamps()
config = load_config(sys.argv[1])
store = open_store()
ended = threading.Event()
def on_event(job_id, event):
    record(job_id, event)
    if event.get("type") == "job_end":
        ended.set()
queue = JobQueue(store, on_event=on_event)
queue.start()
catalog = None
try:  # the app lists the frameworks' models through its helper long before anyone clicks
    from core.frameworks import listed_framework
    catalog = {config.framework: listed_framework(config.framework)}
except ImportError:  # an older checkout: no model check in preflight
    pass
time.sleep(1.0)  # the GUI's queue runs long before anyone clicks
marks = {"click": time.time()}
# The Queue button's checks (app/pages/train_page.py runs the same, with the helper's catalog).
problems = preflight(config, catalog=catalog) if catalog is not None else preflight(config)
marks["preflight done"] = time.time()
job_id = queue_job(store, config)
marks["job queued"] = time.time()
queue.wake()
first_step.wait(600)
ended.wait(600)
queue.stop()
print("MARKS " + json.dumps(marks))
'''

CLI_PHASES = [
    ("interpreter start", "interpreter"),
    ("CLI imports", "CLI imports"),
    ("parse arguments (parser build)", "arguments parsed"),
    ("config load", "config loaded"),
    ("preflight (dataset check, disk)", "preflight done"),
    ("store open + reconcile", "store open + reconciled"),
    ("queue job (DB row)", "job queued"),
    ("runner set-up (listeners, claim, run dir)", "runner ready to spawn"),
    ("runner set-up, run dir handed to the standby worker", "run dir handed to the standby worker"),
]
QUEUE_PHASES = [
    ("preflight (dataset check, disk)", "preflight done"),
    ("queue job (DB row)", "job queued"),
    ("queue pickup → runner start", "runner start"),
    ("runner set-up (run dir, listeners)", "runner ready to spawn"),
]
WORKER_PHASES = [
    ("worker spawn (Popen: fork + exec)", "worker process created"),
    ("worker: interpreter, imports (a standby: torch + timm too), run dir → hello", "worker hello (imports + config)"),
    ("adapter import + set-up", "adapter ready"),
    ("dataset read + decode (a plain worker: + torch import)", "dataset read + decoded"),
    ("model build", "model built"),
    ("first training step", "first step"),
]
BARE_PHASES = [
    ("interpreter start", "interpreter"),
    ("imports (torch, timm, numpy, PIL)", "imports"),
    ("dataset read + decode", "dataset"),
    ("model build", "model"),
    ("first training step", "first step"),
]


def _run_driver(code: str, args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a driver in a fresh interpreter; its marks as seconds after its process started."""
    started = time.time()
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                            cwd=env["PYTHONPATH"], timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("MARKS ", "{"))]
    if not lines:
        raise RuntimeError(f"driver failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    marks = json.loads(lines[-1].removeprefix("MARKS "))
    if "first step" not in marks:
        raise RuntimeError(f"no first step (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    origin = marks.pop("click", started)
    return {label: stamp - origin for label, stamp in marks.items()}


def _phase_rows(runs: list[dict[str, float]], phases: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """One row per phase, in the order the phases end (a standby worker starts before the CLI's own
    work, so the order differs between checkouts): median time since the previous mark [min–max]
    over runs, and the median time the phase ends at. Phases a checkout does not have are left out."""
    present = [(name, label) for name, label in phases if all(label in run for run in runs)]
    present.sort(key=lambda phase: statistics.median(run[phase[1]] for run in runs))
    rows = []
    previous: str | None = None
    for name, label in present:
        durations = [run[label] - (run[previous] if previous else 0.0) for run in runs]
        ends = [run[label] for run in runs]
        rows.append((f"  {name}", _spread(durations), f"ends at {statistics.median(ends):.2f} s", ""))
        previous = label
    return rows


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}–{max(values):.3f}]"


def job_start(images: int, repeat: int, work: Path, before: Path | None = None) -> None:
    """``before``: another checkout of the app (e.g. ``git archive HEAD``) timed in the same run."""
    from tests.helpers.datasets_gen import make_imagefolder

    data = work / "data"
    make_imagefolder(data, classes=("red", "green", "blue", "white"), per_class=images // 4, size=64, ext=".jpg")
    job = work / "job.yaml"
    job.write_text(json.dumps({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 32,
                               "image_size": 64, "learning_rate": 0.003, "seed": 0}))
    bare_cfg = json.dumps({"dataset": str(data), "model": "test_resnet", "batch": 32, "size": 64, "lr": 0.003, "seed": 0})
    env = dict(os.environ, PYTHONPATH=str(ROOT), VP_HOME=str(work / "home"), OMP_NUM_THREADS=str(os.cpu_count()))
    # The other checkout gets its own data dir: its migrations may be older than this one's.
    old_env = dict(env, PYTHONPATH=str(before), VP_HOME=str(work / "home_before")) if before is not None else None
    for settings_env in (env, old_env):
        if settings_env is not None:
            subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                            "s=open_store(); c=Settings.load(s); c.tracking_enabled=False; c.sync_enabled=False; c.save(s)"],
                           env=settings_env, check=True, cwd=settings_env["PYTHONPATH"])
    bare, cli, gui, old, plain = [], [], [], [], []
    for _ in range(repeat):  # alternate, to spread machine noise over all of them
        bare.append(_run_driver(BARE_FIRST_STEP, [bare_cfg], env))
        cli.append(_run_driver(CLI_DRIVER, [str(job)], env))
        plain.append(_run_driver(CLI_DRIVER, [str(job), "no-standby"], env))
        if old_env is not None:
            old.append(_run_driver(CLI_DRIVER, [str(job)], old_env))
        gui.append(_run_driver(QUEUE_DRIVER, [str(job)], env))
    if old:
        print_table(f"`vision-platform train` before ({before}) vs now, same run", [
            ("before: process start → worker spawn", _spread([r["runner ready to spawn"] for r in old]), "", ""),
            ("now: process start → worker spawn", _spread([r["runner ready to spawn"] for r in cli]), "", ""),
            ("before: process start → first step", _spread([r["first step"] for r in old]), "", ""),
            ("now: process start → first step", _spread([r["first step"] for r in cli]), "", ""),
        ])
    print_table("`vision-platform train`: standby worker vs a plain worker started when the job is ready, same run", [
        ("plain worker: process start → first step", _spread([r["first step"] for r in plain]), "", ""),
        ("standby worker: process start → first step", _spread([r["first step"] for r in cli]), "", ""),
        ("plain worker: process start → model built", _spread([r["model built"] for r in plain]), "", ""),
        ("standby worker: process start → model built", _spread([r["model built"] for r in cli]), "", ""),
    ])
    bare_total = statistics.median(r["first step"] for r in bare)
    cli_total = statistics.median(r["first step"] for r in cli)
    gui_total = statistics.median(r["first step"] for r in gui)
    print_table(
        f"Time to first step, CPU, {images} images (median [min–max] of {repeat}, same run)",
        [
            ("bare timm loop: process start → first step", _spread([r["first step"] for r in bare]), "baseline", ""),
            *_phase_rows(bare, BARE_PHASES),
            ("`vision-platform train`: process start → first step", _spread([r["first step"] for r in cli]),
             f"+{cli_total - bare_total:.2f} s vs bare", ""),
            *_phase_rows(cli, CLI_PHASES + WORKER_PHASES),
            ("  first step seen by the runner (batched flush)", _spread([r["first step seen by the runner"] - r["first step"] for r in cli]),
             "after the step", ""),
            ("`vision-platform train`, plain worker (no standby)", _spread([r["first step"] for r in plain]), "", ""),
            *_phase_rows(plain, CLI_PHASES + WORKER_PHASES),
            ("GUI Queue (warm app): click → first step", _spread([r["first step"] for r in gui]),
             f"+{gui_total - bare_total:.2f} s vs bare", ""),
            *_phase_rows(gui, QUEUE_PHASES + WORKER_PHASES),
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout to time in the same run (git archive HEAD)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vp-bench-start-") as tmp:
        job_start(args.images, args.repeat, Path(tmp), args.before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
