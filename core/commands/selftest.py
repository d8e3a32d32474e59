"""``vision-platform selftest [--json] [--no-train]``: one PASS/FAIL line per check (``core.selftest``),
exit 1 when any check fails — for support reports (``--json``) and the frozen app's smoke test."""

from __future__ import annotations

import argparse
from typing import Any

from core.commands import print_json
from core.selftest import CheckResult, as_json, run_selftest

EXIT_FAILED = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("selftest", help="check this install: devices, storage, Qt, a tiny training")
    parser.add_argument("--json", action="store_true", help="print one JSON report (for support requests)")
    parser.add_argument("--no-train", action="store_true", help="skip the 1-epoch training and the inference")
    parser.set_defaults(handler=cmd_selftest)


def _print_line(result: CheckResult) -> None:
    print(result.line(), flush=True)


def cmd_selftest(args: argparse.Namespace) -> int:
    results = run_selftest(train=not args.no_train, on_result=None if args.json else _print_line)
    if args.json:
        print_json(as_json(results))
    failed = [result.name for result in results if not result.ok]
    if not args.json:
        print(f"{len(results) - len(failed)} of {len(results)} checks passed"
              + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else 0
