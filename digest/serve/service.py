"""`digest serve`: the scheduler and the send worker in one asyncio loop.

Every process sends (workers share the outbox safely); only the elected leader ingests
and plans. Blocking database and HTTP work runs in threads so the loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from digest.clock import utcnow
from digest.config import Settings, SourceConfig
from digest.delivery.inbox import ImapError, ImapUrlError, InboxReport, read_inbox
from digest.delivery.outbox import SendReport
from digest.delivery.planning import PlanReport, plan
from digest.delivery.sender import work
from digest.delivery.transport import Transport
from digest.mail.render import Renderer
from digest.match.engine import Matcher
from digest.privacy import purge_unconfirmed
from digest.serve.jobs import build_scheduler, missed
from digest.serve.leader import Leadership
from digest.sources.runner import SourceReport, ingest_source, last_runs

log = logging.getLogger(__name__)


class Service:
    """The scheduled jobs of one process: elect, dispatch, ingest, read the inbox, purge."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        matcher: Matcher,
        *,
        clock: Callable[[], datetime] = utcnow,
        leadership: Leadership | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.matcher = matcher
        self.clock = clock
        self.leadership = leadership or Leadership(engine, settings.leader_lock_id)
        self.wake = asyncio.Event()
        self.leading = False
        self.checked = False

    async def elect(self) -> None:
        """Take or keep the leadership; a new leader dispatches at once (catch-up)."""
        held = await asyncio.to_thread(self.leadership.check)
        first, self.checked = not self.checked, True
        if held == self.leading:
            if first:
                log.info("scheduler: another process is the leader; standing by")
            return
        self.leading = held
        if held:
            log.info("scheduler: this process is the leader")
            await self.catch_up()
            await self.dispatch()
        else:
            log.warning("scheduler: leadership lost; standing by")

    async def catch_up(self) -> None:
        """Run the ingests whose time passed while no scheduler was running."""
        last = {
            row.source: row.started_at for row in await asyncio.to_thread(last_runs, self.engine)
        }
        for source in missed(self.settings, last, self.clock()):
            log.info("catching up the missed ingest of %s", source.label())
            await self.ingest(source)

    async def dispatch(self) -> PlanReport | None:
        """Plan the digests now due (leader only) and wake the sender if any were planned."""
        if not self.leading:
            return None
        now = self.clock()
        report = await asyncio.to_thread(
            plan, self.engine, self.matcher, self.settings, now, on_schedule=True
        )
        if report.planned or report.notes:
            log.info(
                "planned %d digest(s) and %d note(s); %d with nothing new",
                report.planned,
                report.notes,
                report.empty,
            )
            self.wake.set()
        return report

    async def ingest(self, source: SourceConfig) -> SourceReport | None:
        """Ingest one source (leader only)."""
        if not self.leading:
            return None
        return await asyncio.to_thread(
            ingest_source, self.engine, self.settings, source, self.clock()
        )

    async def inbox(self) -> InboxReport | None:
        """Read the inbox (leader only): bounces and emailed unsubscribe requests. A mailbox
        that cannot be read is logged and tried again on the next run."""
        if not self.leading:
            return None
        try:
            report = await asyncio.to_thread(read_inbox, self.engine, self.settings)
        except (ImapError, ImapUrlError, FileNotFoundError) as exc:
            log.error("inbox: %s", exc)
            return None
        for line in report.lines():
            log.info("inbox: %s", line)
        return report

    async def purge(self) -> int | None:
        """Erase the sign-ups never confirmed within `pending_purge_days` (leader only)."""
        if not self.leading:
            return None
        days = self.settings.pending_purge_days
        count = await asyncio.to_thread(purge_unconfirmed, self.engine, self.clock(), days)
        if count:
            log.info("erased %d sign-up(s) never confirmed within %g days", count, days)
        return count

    def close(self) -> None:
        """Give up the leadership."""
        self.leadership.close()
        self.leading = False


async def serve(
    engine: Engine,
    settings: Settings,
    matcher: Matcher,
    transport: Transport,
    renderer: Renderer,
    *,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = utcnow,
    web: tuple[str, int] | None = None,
) -> SendReport:
    """Run the scheduler, the send worker and (given `web`: host, port) the web app.

    Returns what was sent; stops early, with `aborted` set, if the SMTP server refuses us.
    """
    service = Service(engine, settings, matcher, clock=clock)
    # APScheduler runs on the real clock; `clock` is the time planning and sending use.
    scheduler = build_scheduler(settings, service, utcnow())
    scheduler.start()
    site: asyncio.Task[None] | None = None
    if web is not None:
        from digest.web.app import serve_web

        host, port = web
        site = asyncio.create_task(
            serve_web(settings, engine, host=host, port=port, stop=stop, clock=clock)
        )
        site.add_done_callback(lambda _: stop.set())  # the web app failing stops the rest
    try:
        return await work(
            engine,
            transport,
            renderer,
            clock=clock,
            stop=stop,
            poll=settings.worker_poll_seconds,
            wake=service.wake,
        )
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.to_thread(service.close)
        if site is not None:
            stop.set()
            await site  # raises OSError when the port could not be bound
