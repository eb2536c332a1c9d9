"""The seeded flow generator: deterministic, the shared flow's mix by default, cancels always valid."""

from __future__ import annotations

from benchmarks import generator
from benchmarks.generator import CANCEL, LIMIT, MARKET, FlowParams, ReferenceBook


def test_same_params_give_the_same_flow() -> None:
    p = FlowParams(n=3_000, seed=7, symbols=("AAPL", "MSFT"), rate=500.0)
    assert generator.generate(p) == generator.generate(p)
    assert generator.generate(p) != generator.generate(FlowParams(n=3_000, seed=8, symbols=("AAPL", "MSFT")))


def test_default_mix_matches_the_shared_flow() -> None:
    s = generator.stats(generator.generate(FlowParams(n=20_000)))
    assert abs(s["limit_pct"] - 55) < 2
    assert abs(s["cancel_pct"] - 35) < 2
    assert abs(s["market_pct"] - 10) < 1


def test_every_cancel_targets_an_order_resting_at_that_moment() -> None:
    msgs = generator.generate(FlowParams(n=5_000, seed=3, symbols=("A", "B", "C"), price_process="gbm"))
    books = {s: ReferenceBook() for s in ("A", "B", "C")}
    for m in msgs:
        book = books[m.symbol]
        if m.kind == CANCEL:
            assert m.order_id in book.orders, m
            assert book.orders[m.order_id] == (m.side, m.price)
            book.cancel(m.order_id)
        elif m.kind == LIMIT:
            book.limit(m.order_id, m.side, m.price, m.qty)
        else:
            assert m.kind == MARKET and m.price == 0
            book.market(m.side, m.qty)


def test_new_order_ids_are_consecutive_across_symbols() -> None:
    msgs = generator.generate(FlowParams(n=2_000, symbols=("A", "B")))
    ids = [m.order_id for m in msgs if m.kind != CANCEL]
    assert ids == list(range(1, len(ids) + 1))


def test_open_loop_send_times_follow_the_offered_rate() -> None:
    msgs = generator.generate(FlowParams(n=1_000, rate=250.0))
    assert msgs[0].t == 0.0 and abs(msgs[-1].t - 999 / 250) < 1e-9
    poisson = generator.retime(msgs, 250.0, "poisson", seed=1)
    assert all(b.t >= a.t for a, b in zip(poisson, poisson[1:], strict=False))
    assert 3.0 < poisson[-1].t < 5.0
    flat = generator.retime(msgs, None)
    assert {m.t for m in flat} == {0.0}


def test_reads_a_shared_flow_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "flow.csv"
    path.write_text("L,1,B,99996,10\nL,2,S,100003,5\nC,1,B,99996,0\nM,3,S,0,7\n")
    msgs = generator.load_csv(path, "AAPL", rate=100.0)
    assert [m.kind for m in msgs] == ["L", "L", "C", "M"]
    assert msgs[2].order_id == 1 and msgs[3].t == 0.03 and {m.symbol for m in msgs} == {"AAPL"}
