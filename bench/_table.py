"""Tiny helper to print benchmark results as an aligned table."""

from __future__ import annotations


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """rows: (measurement, value, baseline/target, verdict)."""
    header = ("measurement", "value", "baseline / target", "verdict")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)
