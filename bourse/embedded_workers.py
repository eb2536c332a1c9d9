"""The workers of `bourse serve`, run as threads next to the API (one process, in-process queues):
the matcher of every symbol (with the reconciler, which re-enqueues orders a restart dropped from the
in-process queue), the job scheduler (DAY/GTD expiry, end of day, the open's queued orders) and, unless
disabled, the demo agents."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schema.calendar import calendar_from_settings
from schema.marketdata import MemoryMarketData
from schema.settings import Settings
from schema.transport import InProcessBus
from workers.agents.config import demo_config
from workers.agents.runner import AgentRunner, OrderGateway, start_thread
from workers.jobs import JobContext, use_context
from workers.matcher import Matcher
from workers.publisher import CallbackPublisher
from workers.runner import build_matcher, run_matcher_loop
from workers.scheduler import InProcessScheduler

log = logging.getLogger("bourse")


@dataclass
class Running:
    matcher: Matcher
    threads: list[threading.Thread] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)


def start(
    settings: Settings,
    session_factory: Any,
    bus: InProcessBus,
    marketdata: MemoryMarketData,
    emit: Callable[[str, dict[str, Any], str], None],
    stop: threading.Event,
    *,
    agents: bool,
) -> Running:
    matcher = build_matcher(
        settings, None, bus=bus, publisher=CallbackPublisher(emit), market_data=marketdata
    )
    owned = matcher.start()
    log.info("matching %s", ", ".join(owned))
    running = Running(matcher)
    # The shared loop also runs the reconciler and releases stranded replace holds; start() inside it is a
    # no-op for the books already opened here.
    calendar = calendar_from_settings(settings)
    thread = threading.Thread(
        target=run_matcher_loop,
        args=(matcher, stop),
        kwargs={"calendar": calendar},  # nothing re-enqueued while closed: queued orders wait for the open
        name="bourse-matcher",
        daemon=True,
    )
    thread.start()
    running.threads.append(thread)

    ctx = JobContext(session_factory, bus, calendar)
    use_context(ctx)
    scheduler = InProcessScheduler(ctx)
    scheduler.start()
    running.stoppers.append(scheduler.stop)

    if agents and owned:
        runner = AgentRunner(demo_config(owned), OrderGateway(session_factory, bus, calendar=ctx.calendar))
        running.threads.append(start_thread(runner, stop))
        log.info("demo agents trading %s", ", ".join(owned))
    return running
