"""Machine and run metadata stamped into every benchmark JSON: what ran, where, when, under what load."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def memory_total_mb() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict[str, Any]:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(dirty) if dirty is not None else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "memory_mb": memory_total_mb(),
        "hostname": platform.node(),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def metadata(
    benchmark: str, *, settings: dict[str, Any] | None = None, flow: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `meta` block of a result: benchmark name, date, machine, load average, settings, flow."""
    return {
        "benchmark": benchmark,
        "date": now_iso(),
        "machine": machine(),
        "load_average_start": load_average(),
        "settings": settings or {},
        "flow": flow or {},
        "argv": sys.argv,
    }


REQUIRED_KEYS = ("benchmark", "date", "machine", "settings", "flow")
REQUIRED_MACHINE_KEYS = ("git_commit", "python", "cpu_model", "nproc")


def missing_metadata(result: dict[str, Any]) -> list[str]:
    """What a result JSON lacks of the required metadata (empty when complete)."""
    meta = result.get("meta")
    if not isinstance(meta, dict):
        return ["meta"]
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    mach = meta.get("machine") or {}
    missing += [f"machine.{k}" for k in REQUIRED_MACHINE_KEYS if mach.get(k) in (None, "")]
    return missing
