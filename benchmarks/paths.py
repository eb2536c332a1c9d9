"""Where the read-only reference data lives: the `shared/` folder beside the project checkout
(flow generator, LOBSTER files). BOURSE_SHARED_DIR overrides it; /work/shared is this workplace's copy."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    if env := os.environ.get("BOURSE_SHARED_DIR"):
        return Path(env)
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


SHARED_DIR = _find_shared()
LOBSTER_DIR = SHARED_DIR / "lobster"
LOBSTER_SAMPLE_DIR = LOBSTER_DIR / "LOBSTER_SampleFile_AAPL_2012-06-21_10_first999rows"
