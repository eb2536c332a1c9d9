"""Results: percentiles, the end-of-run table, the JSON file and the plots (PNG, matplotlib).

Every benchmark result is one JSON document:
    {"meta": {...machine and run metadata, see benchmarks.meta...},
     "summary": {name: number, ...},                     # the headline figures
     "latency_ms": {kind: {n, p50, p90, p99, p99_9, max, mean}},
     "errors": {code: count},
     "timeline": {"bucket_s": 1.0, series: [count per bucket], ...},
     "samples_ms": {kind: [latency, ...]},               # raw, for the histogram
     ...benchmark-specific blocks}

`python -m benchmarks.report RESULT.json [--png OUT.png]` (or `bourse bench report`) prints the table
again and redraws the plots from a saved result.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(round(q / 100.0 * len(sorted_values), 9)))  # 99.9% of 1000 is 999, not 1000
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p99, p99.9, max and mean of latencies (ms), rounded to microseconds. A percentile the
    sample is too small to support (p99.9 needs 1,000 values) is still given, with `n` next to it."""
    data = sorted(values)
    out: dict[str, float | int | None] = {"n": len(data)}
    for name, q in PERCENTILES:
        out[name] = None if not data else round(percentile(data, q), 3)
    out["max"] = None if not data else round(data[-1], 3)
    out["mean"] = None if not data else round(sum(data) / len(data), 3)
    return out


def buckets(times: Iterable[float], bucket_s: float = 1.0, length: int | None = None) -> list[int]:
    """Counts per bucket of relative times (seconds from the start)."""
    counts: list[int] = [0] * (length or 0)
    for t in times:
        if t < 0:
            continue
        i = int(t / bucket_s)
        if length is not None and i >= length:
            continue
        if i >= len(counts):
            counts.extend([0] * (i + 1 - len(counts)))
        counts[i] += 1
    return counts


def print_arms(runs: dict[str, list[dict[str, float]]], keys: Sequence[str]) -> None:
    """Per arm and key: the median over rounds and its min-max (the A/B benchmarks' summary)."""
    width = max(len(k) for k in keys)
    for arm, rounds in runs.items():
        for key in keys:
            values = [r[key] for r in rounds]
            spread = f"{min(values):.1f}-{max(values):.1f}"
            print(f"{arm:10s} {key:{width}s} median {statistics.median(values):10.1f}  min-max {spread}")


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=False, default=str) + "\n")
    return path


def load_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_table(result: dict[str, Any], console: Any = None) -> None:
    """The end-of-run table: summary, latency percentiles and errors (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    meta = result.get("meta", {})
    mach = meta.get("machine", {})
    title = f"{meta.get('benchmark', 'benchmark')} — {mach.get('cpu_model', '?')} x{mach.get('nproc', '?')}"
    summary = Table(title=title, show_header=False)
    summary.add_column("figure", style="bold")
    summary.add_column("value", justify="right")
    for k, v in result.get("summary", {}).items():
        summary.add_row(k, _fmt(v))
    load = meta.get("load_average_start"), result.get("summary", {}).get("load_average_end")
    if load[0] is not None:
        summary.add_row("load average at start (1/5/15 min)", " ".join(map(str, load[0])))
    console.print(summary)

    lat = result.get("latency_ms") or {}
    if lat:
        table = Table(title="latency (ms)")
        table.add_column("measure", style="bold")
        for col in ("n", "p50", "p90", "p99", "p99_9", "max"):
            table.add_column(col.replace("_", "."), justify="right")
        for kind, s in lat.items():
            table.add_row(kind, *(_fmt(s.get(c)) for c in ("n", "p50", "p90", "p99", "p99_9", "max")))
        console.print(table)

    errors = result.get("errors") or {}
    if errors:
        table = Table(title="responses that were not 2xx, by code")
        table.add_column("code", style="bold")
        table.add_column("count", justify="right")
        for code, n in sorted(errors.items(), key=lambda kv: -kv[1]):
            table.add_row(code, _fmt(n))
        console.print(table)

    rec = result.get("reconcile") or {}
    if rec:
        table = Table(title="reconciliation", show_header=False)
        table.add_column("check", style="bold")
        table.add_column("value", justify="right")
        for k, v in rec.items():
            table.add_row(k, _fmt(v))
        console.print(table)


def plot(result: dict[str, Any], path: str | Path) -> Path | None:
    """A PNG with a latency histogram (log x) and throughput over time. None if there is nothing to draw."""
    samples: dict[str, list[float]] = {k: v for k, v in (result.get("samples_ms") or {}).items() if v}
    timeline: dict[str, Any] = result.get("timeline") or {}
    series = {k: v for k, v in timeline.items() if isinstance(v, list) and v}
    if not samples and not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = int(bool(samples)) + int(bool(series))
    fig, axes = plt.subplots(panels, 1, figsize=(10, 4.2 * panels), squeeze=False)
    fig.suptitle(_plot_title(result), fontsize=10)
    row = 0
    if samples:
        ax = axes[row][0]
        row += 1
        lo = max(1e-3, min(min(v) for v in samples.values()))
        hi = max(max(v) for v in samples.values())
        bins = _log_bins(lo, max(hi, lo * 10))
        for kind, values in samples.items():
            _, _, patches = ax.hist(
                values, bins=bins, histtype="step", linewidth=1.5, label=f"{kind} (n={len(values):,})"
            )
            p99 = percentile(sorted(values), 99.0)
            ax.axvline(p99, linestyle=":", linewidth=1, color=patches[0].get_edgecolor())
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale); dotted lines: p99")
        ax.set_ylabel("count")
        ax.set_title("latency histogram")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    if series:
        ax = axes[row][0]
        bucket_s = float(timeline.get("bucket_s", 1.0))
        for name, counts in series.items():
            xs = [i * bucket_s for i in range(len(counts) + 1)]
            ys = [c / bucket_s for c in counts]
            ax.step(xs, [*ys, ys[-1]], where="post", label=name)
        ax.set_xlabel("seconds since the first send")
        ax.set_ylabel("per second")
        ax.set_title("throughput over time")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_bins(lo: float, hi: float, per_decade: int = 20) -> list[float]:
    a, b = math.log10(lo), math.log10(hi)
    n = max(10, int((b - a) * per_decade) + 1)
    return [10 ** (a + (b - a) * i / n) for i in range(n + 1)]


def _plot_title(result: dict[str, Any]) -> str:
    meta = result.get("meta", {})
    mach = meta.get("machine", {})
    settings = meta.get("settings", {})
    bits = [meta.get("benchmark", ""), meta.get("date", "")]
    if settings.get("offered_rate"):
        bits.append(f"offered {settings['offered_rate']}/s")
    bits.append(f"{mach.get('cpu_model', '?')} x{mach.get('nproc', '?')}")
    commit = (mach.get("git_commit") or "")[:10]
    if commit:
        bits.append(commit)
    return " | ".join(str(b) for b in bits if b)


def replay_main(argv: Sequence[str] | None = None) -> int:
    """`bourse bench replay --lobster MESSAGE_FILE`: benchmarks.lobster's replay (the engine engineer's),
    with its result wrapped in the common shape: metadata, throughput and the match rate."""
    import tempfile
    import time

    from benchmarks import lobster, meta

    ap = argparse.ArgumentParser(
        prog="bourse bench replay", description="Replay a LOBSTER day through the engine."
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--lobster", help="LOBSTER message file (its orderbook file is found next to it)")
    src.add_argument("--zip", help="a LOBSTER sample zip")
    ap.add_argument("--orderbook", help="orderbook file (default: the message file's name with _orderbook_)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"), help="result directory")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "lobster.json"
        if a.zip:
            inner = ["--zip", a.zip]
        else:
            book = a.orderbook or a.lobster.replace("_message_", "_orderbook_")
            if book == a.lobster or not Path(book).exists():
                ap.error(f"no orderbook file next to {a.lobster}; pass --orderbook")
            inner = ["--message", a.lobster, "--orderbook", book]
        started = time.perf_counter()
        code = lobster.main([*inner, "--json", str(raw)])
        wall = time.perf_counter() - started
        stats = json.loads(raw.read_text()) if raw.exists() else {}
    seconds = float(stats.get("seconds") or 0.0)
    messages = sum(int(v) for v in (stats.get("messages_by_type") or {}).values())
    result = {
        "meta": meta.metadata(
            "replay",
            settings={"source": a.zip or a.lobster},
            flow={"file": stats.get("file"), "messages": messages},
        ),
        "summary": {
            "messages": messages,
            "orderbook_rows_compared": stats.get("rows"),
            "rows_matched": stats.get("matched"),
            "match_rate": stats.get("match_rate"),
            "replay_seconds": seconds,
            "messages_per_s": round(messages / seconds, 1) if seconds else None,
            "wall_seconds_including_load": round(wall, 3),
        },
        "lobster": stats,
    }
    stamp = meta.now_iso().replace(":", "").replace("-", "")
    path = write_json(result, Path(a.out) / f"replay-{stamp}.json")
    print_table(result)
    print(f"result: {path}")
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bourse bench report", description="Table and plots from result JSON.")
    ap.add_argument("results", nargs="+", help="result JSON files")
    ap.add_argument("--png", help="plot path (default: next to the JSON, .png)")
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args(argv)
    for name in a.results:
        result = load_json(name)
        print_table(result)
        if not a.no_plot:
            out = a.png if a.png and len(a.results) == 1 else str(Path(name).with_suffix(".png"))
            drawn = plot(result, out)
            print(f"plot: {drawn}" if drawn else "nothing to plot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
