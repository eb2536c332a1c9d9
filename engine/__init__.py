"""Bourse's matching engine: pure, deterministic price-time order books (see docs/engine.md).

Entry points: `engine.exchange.Exchange` (routes commands by symbol), `engine.book.OrderBook`,
`engine.symbols.Instrument`, the commands in `engine.commands` and the events in `engine.events`.
"""
