"""The automation scheduler and the automation outcome consumer, each one server at a time.

``scheduler`` (every ``services.scheduler_interval_s``): fires every due schedule once for its
latest slot and moves it to the next one (``AutomationEngine.tick``), then repairs what a crash
left (``AutomationEngine.recover``). Several servers may run a pass at once (a lease handed over
after a stall): a slot's run key makes a second firing the same run, so nothing fires twice.

``automation_runs`` (every ``services.automation_runs_poll_s``): reads the global event feed
from its durable cursor ``automation_runs`` and turns prompts' events into run outcomes
(``AutomationEngine.on_feed``, in the cursor's transaction), then starts the next queued runs.
"""

from __future__ import annotations

import logging

from openinspect.automations.runs import CONSUMER, AutomationEngine
from openinspect.services.registry import ServiceContext
from openinspect.sessions.feed import FeedConsumer

log = logging.getLogger(__name__)
OUTCOME_EVENTS = ("prompt-queued", "prompt-started", "prompt-finished", "prompt-cancelled")


class Scheduler:
    name = "scheduler"
    one_replica = True

    def __init__(self, engine: AutomationEngine, *, interval_s: float) -> None:
        self._engine = engine
        self.interval_s = interval_s

    async def run_once(self) -> None:
        tick = await self._engine.tick()
        if tick.fired:
            log.info("scheduler: %d schedules fired", len(tick.fired))
        await self._engine.recover()


class RunOutcomes:
    name = "automation_runs"
    one_replica = True

    def __init__(self, engine: AutomationEngine, consumer: FeedConsumer, *, interval_s: float):
        self._engine = engine
        self._consumer = consumer
        self.interval_s = interval_s

    async def run_once(self) -> None:
        """Handle the feed up to its head, starting queued runs after each committed batch."""
        while await self._consumer.step():
            await self._engine.after_feed()
        await self._engine.after_feed()


def scheduler(context: ServiceContext) -> Scheduler | None:
    engine = context.automations
    if engine is None or not context.settings.services.scheduler_enabled:
        return None
    return Scheduler(engine, interval_s=context.settings.services.scheduler_interval_s)


def automation_runs(context: ServiceContext) -> RunOutcomes | None:
    engine, bus = context.automations, context.bus
    settings = context.settings.services
    if engine is None or bus is None or not settings.automation_runs_enabled:
        return None
    consumer = FeedConsumer(
        context.store, bus, CONSUMER, engine.on_feed, types=OUTCOME_EVENTS, start="end"
    )
    return RunOutcomes(engine, consumer, interval_s=settings.automation_runs_poll_s)
