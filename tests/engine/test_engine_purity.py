"""engine/ stays pure: only an allow-list of side-effect-free stdlib modules, sortedcontainers and itself.

import-linter (pyproject) forbids the project's other packages and the I/O libraries by name; this test
is the stricter allow-list: anything not listed (os, io, time, random, socket, threading...) fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "enum",
    "typing",
    "operator",
    "functools",
    "itertools",
    "math",
    "hashlib",  # state_hash: pure function of its input
    "gc",  # load_resting pauses the cyclic collector; no I/O, no clock
    "sortedcontainers",
    "engine",
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_imports_only_pure_modules():
    files = sorted(ENGINE.glob("*.py"))
    assert len(files) >= 10
    bad = {f.name: sorted(imported_roots(f) - ALLOWED) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_purity_check_catches_an_io_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import time\nfrom socket import socket\nfrom engine.book import OrderBook\n")
    assert imported_roots(probe) - ALLOWED == {"time", "socket"}
