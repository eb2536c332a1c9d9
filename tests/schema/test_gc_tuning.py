"""schema.gc_tuning, in a fresh interpreter (freezing the test process's heap would leak its cycles)."""

from __future__ import annotations

import json
import subprocess
import sys

from schema.gc_tuning import YOUNG_THRESHOLD

SCRIPT = """
import gc, json
from schema.gc_tuning import freeze_startup_heap
before = gc.get_freeze_count()
startup = [[] for _ in range(1000)]  # containers alive at startup: frozen with the modules
freeze_startup_heap()
print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0], len(startup)]))
"""


def test_the_startup_heap_is_frozen_and_young_collections_are_rarer() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, young, _ = json.loads(out.stdout)
    assert before == 0 and after > 1000
    assert young == YOUNG_THRESHOLD
