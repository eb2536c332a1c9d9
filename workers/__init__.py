"""Workers around the engine: matchers (apply + settle + publish), the reconciler, and their entry points.

Entry points for the bourse/ CLI:
- `build_matcher(settings, symbols, ...)`: a Matcher wired from Settings (Redis or embedded);
- `run_matchers(settings, symbols, stop=None, worker_id=None)`: the `bourse worker` loop, blocking;
- `run_matcher_loop(matcher, stop)`: the same loop for a matcher built by the caller (`bourse serve`);
- `python -m workers --symbols AAPL,MSFT | --all [--shard I/N]`.
"""

from workers.runner import build_matcher, run_matcher_loop, run_matchers, shard_symbols

__all__ = ["build_matcher", "run_matcher_loop", "run_matchers", "shard_symbols"]
