"""`bourse bench replay` (the CLI path and its JSON) and `bourse bench compare` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import meta
from benchmarks.paths import LOBSTER_SAMPLE_DIR

SAMPLE = LOBSTER_SAMPLE_DIR
REPO = Path(__file__).resolve().parents[2]


def bourse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bourse.cli", "bench", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_bench_replay_reports_a_full_match_on_the_bundled_sample(tmp_path: Path) -> None:
    message = next(SAMPLE.glob("*_message_10.csv"))
    done = bourse("replay", "--lobster", str(message), "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = tmp_path.glob("replay-*.json")
    result = json.loads(path.read_text())
    assert meta.missing_metadata(result) == []
    s = result["summary"]
    assert s["messages"] == 998 and s["orderbook_rows_compared"] == 998
    assert s["rows_matched"] == 998 and s["match_rate"] == 1.0
    assert s["messages_per_s"] > 0


def test_bench_compare_through_the_cli(tmp_path: Path) -> None:
    for name, rate in (("a", 100.0), ("b", 250.0)):
        (tmp_path / f"{name}.json").write_text(
            json.dumps({"meta": meta.metadata("unit"), "summary": {"orders_per_s": rate}})
        )
    done = bourse("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert done.returncode == 0, done.stderr
    assert "2.500" in done.stdout


def test_bench_lists_its_benchmarks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bourse.cli", "bench", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0
    for name in ("engine", "replay", "service", "compare", "report", "depth", "fanout"):
        assert name in done.stdout


def test_bench_engine_delegates_to_the_engine_benchmark(tmp_path: Path) -> None:
    done = bourse("engine", "--n", "2000", "--runs", "1", "--memory-orders", "0", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = tmp_path.glob("engine_*.json")
    result = json.loads(path.read_text())
    assert result["throughput"]["median_msgs_per_s"] > 0
    assert result["flow"]["messages"] == 2000


def test_bench_service_passes_server_settings_to_the_launched_servers() -> None:
    from benchmarks import service

    parser = service.build_parser()
    args = parser.parse_args(["--launch", "pg", "--server-env", "BOURSE_INTAKE_BATCH_MAX=0"])
    assert service.options_from_args(args).server_env == {"BOURSE_INTAKE_BATCH_MAX": "0"}
    for bad in ("INTAKE=0", "BOURSE_X"):
        try:
            service.options_from_args(parser.parse_args(["--launch", "pg", "--server-env", bad]))
        except SystemExit as exc:
            assert "BOURSE_NAME=VALUE" in str(exc)
        else:  # pragma: no cover - the assertion below reports it
            raise AssertionError(f"{bad!r} was accepted")
