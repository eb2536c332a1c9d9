"""When the matcher waits batch_max_ms for more commands (workers.matcher.worth_lingering)."""

from __future__ import annotations

from workers.matcher import LINGER_FROM_COMMANDS, LINGER_UNTIL_COMMANDS, worth_lingering


def test_a_quiet_market_never_waits() -> None:
    assert not worth_lingering(LINGER_FROM_COMMANDS - 1, 2)  # the previous read was a lone order or two
    assert not worth_lingering(LINGER_FROM_COMMANDS, 0)  # nothing to wait with


def test_under_load_a_small_read_waits_for_company() -> None:
    assert worth_lingering(LINGER_FROM_COMMANDS, 1)
    assert worth_lingering(50, LINGER_UNTIL_COMMANDS - 1)


def test_a_backlog_is_settled_at_once() -> None:
    assert not worth_lingering(500, LINGER_UNTIL_COMMANDS)
    assert not worth_lingering(LINGER_FROM_COMMANDS, 400)
