"""Real Nasdaq flow: the bundled LOBSTER sample (AAPL level 10, first 999 rows) replays to 100% of rows."""

from __future__ import annotations

from pathlib import Path

from benchmarks.lobster import _open_text, read_messages, read_orderbook, replay

DATA = Path(__file__).parent / "data"
STEM = "AAPL_2012-06-21_34200000_57600000_"


def _load():
    with _open_text(DATA / f"{STEM}message_10.csv.gz") as f:
        messages = read_messages(f)
    with _open_text(DATA / f"{STEM}orderbook_10.csv.gz") as f:
        books = read_orderbook(f)
    return messages, books


def test_lobster_sample_reproduces_every_orderbook_row():
    messages, books = _load()
    assert len(messages) == len(books) == 999
    stats = replay(messages, books, 10)
    assert stats.rows == 998
    assert stats.matched == 998 and stats.mismatched == 0
    assert stats.levels_compared > 15_000  # the comparison really looked at the levels
    assert stats.executions_matched_by_engine == 98  # every type-4 row went through the match loop
    assert stats.trades == 98 and stats.engine_rejects == 0


def test_lobster_replay_detects_a_dropped_cancel():
    messages, books = _load()
    broken = list(messages)
    i = next(i for i, m in enumerate(messages) if i > 10 and m[0] == 3)
    broken[i] = (5, 0, 0, 0, 1)  # the delete never reaches the engine
    stats = replay(broken, books, 10)
    assert stats.mismatched > 0 and stats.first_mismatch == i
