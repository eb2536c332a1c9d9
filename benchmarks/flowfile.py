"""Load the reference synthetic flow (../shared/flow CSV: kind,order_id,side,price_ticks,qty) as engine
commands, before any timing starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.paths import SHARED_DIR
from engine.commands import Cancel, NewOrder
from engine.types import OrderType, Side, TimeInForce

SYMBOL = "FLOW"
ACCOUNT_BASE = 1000
FLOW_DIR = Path(os.environ.get("BOURSE_FLOW_DIR", SHARED_DIR / "flow"))


def account_of(order_id: int) -> int:
    """Spread orders over many accounts so STP (default cancel_resting) almost never fires, as in the
    peer engines that have no accounts: order ids are unique, so each order is its own account."""
    return ACCOUNT_BASE + order_id


def load_rows(path: str | os.PathLike) -> list[tuple[str, int, str, int, int]]:
    rows = []
    with open(path) as f:
        for line in f:
            k, oid, side, price, qty = line.rstrip("\n").split(",")
            rows.append((k, int(oid), side, int(price), int(qty)))
    return rows


def to_commands(rows, symbol: str = SYMBOL) -> list:
    """One engine command per flow row. Limits are GTC, markets IOC, no holds (as in the peer runs)."""
    buy, sell = Side.BUY, Side.SELL
    limit, market = OrderType.LIMIT, OrderType.MARKET
    gtc, ioc = TimeInForce.GTC, TimeInForce.IOC
    cmds = []
    append = cmds.append
    for k, oid, s, price, qty in rows:
        side = buy if s == "B" else sell
        acct = ACCOUNT_BASE + oid
        if k == "L":
            append(NewOrder(oid, acct, symbol, side, limit, qty, price, None, gtc))
        elif k == "C":
            append(Cancel(oid, acct, symbol))
        else:
            append(NewOrder(oid, acct, symbol, side, market, qty, None, None, ioc))
    return cmds


def load_commands(path: str | os.PathLike, symbol: str = SYMBOL) -> list:
    return to_commands(load_rows(path), symbol)


def generate_csv(n: int, seed: int, out_dir: str = "/tmp") -> Path:
    """Generate the flow with ../shared/flow/flow.py (cached in out_dir) and return the CSV path."""
    path = Path(out_dir) / f"flow_{n}_{seed}.csv"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        subprocess.run(
            [sys.executable, "flow.py", "--n", str(n), "--seed", str(seed), "--csv", str(tmp)],
            cwd=FLOW_DIR,
            check=True,
        )
        os.replace(tmp, path)
    return path
