"""benchmarks.gc_pauses: the generator's own collections, counted and timed only while started."""

from __future__ import annotations

import gc

from benchmarks.gc_pauses import GcPauses


def test_counts_the_collections_between_start_and_stop() -> None:
    pauses = GcPauses()
    gc.collect()  # before start: not counted
    pauses.start()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        pauses.stop()
    gc.collect()  # after stop: not counted
    summary = pauses.summary()
    assert summary["gen2"]["count"] == 1 and summary["gen0"]["count"] >= 1
    assert summary["gen2"]["max_ms"] >= 0 and summary["gen2"]["total_ms"] >= summary["gen2"]["max_ms"]
    assert pauses._callback not in gc.callbacks


def test_quiet_turns_the_collector_off_only_in_between() -> None:
    pauses = GcPauses(quiet=True)
    assert gc.isenabled()
    pauses.start()
    try:
        assert not gc.isenabled()
    finally:
        pauses.stop()
    assert gc.isenabled()
