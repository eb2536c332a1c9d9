"""The load generator's own garbage-collector pauses during a measured segment.

Why: a full collection of the generator's heap (the flow and the per-order records, ~100k objects)
paused it for ~110 ms about 30 s into a 1,540 msgs/s run; every request in flight then measured that
pause as server latency (benchmarks/RESULTS.md). From the command line the bench freezes its set-up heap
before the load (schema.gc_tuning, as the servers do) and runs each measured segment with the cyclic
collector off (with the freeze alone, young collections still took up to 9 ms, an older one 31 ms); it
reports the collections that did run, so an artifact of this kind shows in the result.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcPauses:
    """Counts and times the collections of each generation between start() and stop(). `quiet`: the
    cyclic collector is off in between (a bench process of its own; not a test process)."""

    def __init__(self, quiet: bool = False) -> None:
        self._quiet = quiet
        self._started_at = 0.0
        self.count = [0, 0, 0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        ms = (time.perf_counter() - self._started_at) * 1000
        g = info["generation"]
        self.count[g] += 1
        self.total_ms[g] += ms
        self.max_ms[g] = max(self.max_ms[g], ms)

    def start(self) -> None:
        gc.callbacks.append(self._callback)
        if self._quiet:
            gc.disable()

    def stop(self) -> None:
        # the callback out first: turning the collector back on can start a collection at the next allocation
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        if self._quiet:
            gc.enable()

    def summary(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "max_ms": round(self.max_ms[g], 1),
                "total_ms": round(self.total_ms[g], 1),
            }
            for g in range(3)
        }
