"""Liquidity agents: fair value, market makers, noise traders and a LOBSTER background replay.

The decision logic (fairvalue, marketmaker, noise, lobster) is pure: state in, desired orders out. The
runner does the I/O through the same order path as people (schema.intake, or the HTTP API).
"""
