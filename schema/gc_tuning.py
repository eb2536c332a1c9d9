"""Garbage-collector settings for the long-running processes (API, matcher): no full collection of the
startup heap in the middle of a burst of orders.

Measured with GC callbacks during the service bench (1,000 msgs/s): full (gen2) collections paused the
API and the matcher for 50–265 ms, once or twice per ten seconds, and every request in flight waited:
that was the p99 of POST→settled. After startup, `freeze_startup_heap` collects once and moves every
object alive (modules, the app, routes, caches, a rebuilt book) to the permanent generation, so later
collections scan only what was allocated since. Frozen objects are still freed by reference counting;
only a reference cycle among them would stay, and they are built once at startup.
"""

from __future__ import annotations

import gc

# Objects allocated between young collections (CPython's default: 700, i.e. several collections per
# request here); each young collection stays short, there are just fewer of them.
YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
