"""`make bench`: run every CPU benchmark script in turn; each prints its own table with baselines.

GPU scripts (bench/gpu_*.py) are not run here: they need a CUDA machine and are run by hand there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in BENCH_DIR.glob("bench_*.py"))
    failures = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        result = subprocess.run([sys.executable, str(script)], cwd=BENCH_DIR.parent)
        if result.returncode != 0:
            failures.append(script.name)
    if failures:
        print(f"\nbenchmarks that did not finish: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
