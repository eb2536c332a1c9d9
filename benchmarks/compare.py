"""`bourse bench compare A.json B.json`: the ratio B / A of every figure two results share.

Summary figures and latency percentiles are compared key by key. For throughput a ratio above 1 means B
is faster; for latency a ratio below 1 means B is faster. The machines, commits and load averages of the
two runs are printed first: a ratio between runs on different machines or under different load says
little (prefer ratios within one run, see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from benchmarks.report import load_json


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or isinstance(a, bool):
        return None
    if a == 0 or math.isnan(a) or math.isnan(b):
        return None
    return b / a


def ratios(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, float | None]]:
    """(figure, value in A, value in B, B/A) for every numeric figure both results have."""
    rows: list[tuple[str, Any, Any, float | None]] = []
    sa, sb = a.get("summary", {}), b.get("summary", {})
    for key in sa:
        if key in sb:
            r = _ratio(sa[key], sb[key])
            if r is not None:
                rows.append((key, sa[key], sb[key], r))
    la, lb = a.get("latency_ms", {}), b.get("latency_ms", {})
    for kind in la:
        if kind not in lb:
            continue
        for pct in ("p50", "p90", "p99", "p99_9", "max"):
            r = _ratio(la[kind].get(pct), lb[kind].get(pct))
            if r is not None:
                rows.append((f"{kind} {pct.replace('_', '.')} (ms)", la[kind][pct], lb[kind][pct], r))
    return rows


def _who(result: dict[str, Any]) -> str:
    meta = result.get("meta", {})
    mach = meta.get("machine", {})
    return (
        f"{meta.get('benchmark')} {meta.get('date')} commit {(mach.get('git_commit') or '?')[:10]} "
        f"{mach.get('cpu_model')} x{mach.get('nproc')} load {meta.get('load_average_start')} "
        f"settings {meta.get('settings')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bourse bench compare", description="Print B/A for two results.")
    ap.add_argument("a", help="baseline result JSON")
    ap.add_argument("b", help="result JSON to compare with the baseline")
    args = ap.parse_args(argv)
    a, b = load_json(args.a), load_json(args.b)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"A: {args.a}\n   {_who(a)}")
    console.print(f"B: {args.b}\n   {_who(b)}")
    if a.get("meta", {}).get("machine", {}).get("cpu_model") != b.get("meta", {}).get("machine", {}).get(
        "cpu_model"
    ):
        console.print("[yellow]warning: different CPU models; the ratios compare machines too[/yellow]")
    table = Table(title="B / A")
    table.add_column("figure", style="bold")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B/A", justify="right")
    rows = ratios(a, b)
    for key, va, vb, r in rows:
        table.add_row(key, f"{va:,.3f}" if isinstance(va, float) else f"{va:,}",
                      f"{vb:,.3f}" if isinstance(vb, float) else f"{vb:,}", f"{r:.3f}")  # fmt: skip
    console.print(table)
    if not rows:
        console.print("the two results share no numeric figure")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
