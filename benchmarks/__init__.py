"""Benchmarks: seeded workloads built before timing; results go to benchmarks/out/ (gitignored)."""
