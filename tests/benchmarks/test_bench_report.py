"""Percentiles, metadata, plots and compare."""

from __future__ import annotations

import json

from benchmarks import compare, meta, report


def test_percentiles_are_nearest_rank() -> None:
    s = report.summarize(float(i) for i in range(1, 1001))
    assert s["n"] == 1000
    assert (s["p50"], s["p90"], s["p99"], s["p99_9"], s["max"]) == (500.0, 900.0, 990.0, 999.0, 1000.0)
    empty = report.summarize([])
    assert empty["n"] == 0 and empty["p99"] is None


def test_buckets_count_per_second() -> None:
    assert report.buckets([0.1, 0.2, 1.5, 3.9], 1.0) == [2, 1, 0, 1]
    assert report.buckets([0.1, 5.0], 1.0, length=2) == [1, 0]


def test_metadata_has_commit_python_cpu_and_cores() -> None:
    result = {"meta": meta.metadata("unit", settings={"x": 1}, flow={"n": 3})}
    assert meta.missing_metadata(result) == []
    m = result["meta"]
    assert m["machine"]["nproc"] >= 1 and m["machine"]["python"].startswith("3.")
    assert len(m["machine"]["git_commit"]) == 40
    assert meta.missing_metadata({"meta": {"benchmark": "x"}}) != []


def test_plot_and_table_from_a_result(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    result = {
        "meta": meta.metadata("unit"),
        "summary": {"orders_per_s": 100.0},
        "latency_ms": {"post_ack": report.summarize([1.0, 2.0, 3.0])},
        "samples_ms": {"POST-ack": [1.0, 2.0, 3.0, 10.0]},
        "timeline": {"bucket_s": 1.0, "sent": [5, 6, 7]},
        "errors": {"INSUFFICIENT_FUNDS": 2},
    }
    path = report.write_json(result, tmp_path / "r.json")
    assert report.main([str(path)]) == 0
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert "INSUFFICIENT_FUNDS" in capsys.readouterr().out


def test_compare_prints_ratios(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = {"meta": meta.metadata("unit"), "summary": {"rate": 100.0}, "latency_ms": {"ack": {"p99": 10.0}}}
    b = {"meta": meta.metadata("unit"), "summary": {"rate": 150.0}, "latency_ms": {"ack": {"p99": 5.0}}}
    rows = {k: r for k, _, _, r in compare.ratios(a, b)}
    assert rows == {"rate": 1.5, "ack p99 (ms)": 0.5}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "1.500" in capsys.readouterr().out
