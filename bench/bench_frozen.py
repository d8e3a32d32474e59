"""Frozen app vs source: cold start to the first painted window, bundle size, build time.

Each run starts a fresh process of each build in turn (same machine, same run, alternating so a
busier moment hurts both alike) with ``VP_QUIT_AFTER_FIRST_PAINT=1``: the app prints a mark at its
first paint and quits; the time is from spawning the process to reading that mark, so interpreter
start-up and, frozen, the bootloader count. One warm-up start per build first (the database is
created and migrated then). Target: frozen ≤ 1.2 × source (median).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_frozen.py [--runs 5] [--app dist/vision-platform/vision-platform]

The bundle is built by ``make package`` / ``scripts/smoke_frozen.sh`` (which records its build time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.main import FIRST_PAINT_MARK, QUIT_AFTER_FIRST_PAINT  # noqa: E402

DEFAULT_APP = ROOT / "dist" / "vision-platform" / "vision-platform"
BUILD_SECONDS = ROOT / "build" / "pyinstaller" / "build_seconds.txt"
TARGET_RATIO = 1.2
TIMEOUT_S = 300


def first_paint_seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == FIRST_PAINT_MARK:
                elapsed = time.perf_counter() - started
                process.wait(TIMEOUT_S)
                return elapsed
        raise SystemExit(f"{command[0]} exited {process.wait()} without painting a window")


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--app", type=Path, default=DEFAULT_APP)
    args = parser.parse_args()
    if not args.app.is_file():
        print(f"no frozen app at {args.app}: build it first (make package)", file=sys.stderr)
        return 2
    builds = {"source": [sys.executable, "-m", "vision_platform"], "frozen": [str(args.app)]}
    times: dict[str, list[float]] = {name: [] for name in builds}
    with tempfile.TemporaryDirectory(prefix="vp-bench-frozen-") as home:
        env = {**os.environ, "VP_HOME": home, QUIT_AFTER_FIRST_PAINT: "1",
               "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
        for command in builds.values():
            first_paint_seconds(command, env)  # warm-up: creates the database
        for _ in range(args.runs):
            for name, command in builds.items():
                times[name].append(first_paint_seconds(command, env))
    source, frozen = statistics.median(times["source"]), statistics.median(times["frozen"])
    print(f"Cold start to first paint (median of {args.runs}, fresh process each, alternating)")
    print(f"{'':<10}{'median s':>10}{'min':>8}{'max':>8}")
    for name, values in times.items():
        print(f"{name:<10}{statistics.median(values):>10.3f}{min(values):>8.3f}{max(values):>8.3f}")
    print(f"ratio frozen/source: {frozen / source:.2f} (target <= {TARGET_RATIO})")
    bundle = args.app.parent
    print(f"bundle: {folder_size(bundle) / 2**30:.2f} GiB in {bundle}")
    if BUILD_SECONDS.is_file():
        print(f"build time (last scripts/smoke_frozen.sh build): {BUILD_SECONDS.read_text().strip()} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
