"""The send loop: a producer claims and renders, one sender per connection sends.

`send_due` empties the outbox once; `work` keeps doing so until told to stop (SIGTERM):
the message in flight is finished and recorded, every other claimed digest is released
for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from digest.clock import Clock
from digest.config import Settings
from digest.db import make_engine
from digest.delivery import children
from digest.delivery.outbox import Job, Outbox, Outcome, SendReport
from digest.delivery.planning import PlanReport, plan
from digest.delivery.transport import Failure, SendError, Transport
from digest.mail.dkim import SigningError
from digest.mail.render import Renderer
from digest.match.engine import Matcher
from digest.models import DigestStatus

log = logging.getLogger(__name__)

# Leases are renewed, and results recorded, for groups of at least this many digests:
# one transaction per message would cost more than the SMTP conversation.
GROUP = 16
# A result waits at most this long (seconds) to be recorded.
RECORD_DELAY = 0.05


class SendPass:
    """One pass over the outbox: a producer claims and renders, `senders` tasks send.

    The producer is pipelined: the next batch is claimed and rendered while this one is
    sent. Results wait in `pending` and are recorded in groups (`flush`). A refusal of
    us by the SMTP server (`Failure.sender`) or `stop` halts the pass; every digest
    claimed and not yet handed to SMTP is then released.
    """

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        *,
        clock: Clock,
        stop: asyncio.Event,
        limit: int | None,
        senders: int,
        pool: RenderPool | None,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.clock = clock
        self.stop = stop
        self.limit = limit
        self.senders = senders
        self.pool = pool
        self.batch = outbox.settings.send_batch
        self.group = max(senders, GROUP)
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=senders)
        self.report = SendReport()
        self.pending: list[tuple[Job, str | SendError]] = []  # accepted or refused, unrecorded
        self.timer: asyncio.TimerHandle | None = None  # records `pending` a little later

    async def run(self) -> SendReport:
        """Send until the outbox is empty, `limit` is reached, or the pass is halted."""
        try:
            await asyncio.gather(self.produce(), *(self.send() for _ in range(self.senders)))
        finally:
            self.flush()
        return self.report

    def halted(self) -> bool:
        """Whether to stop: told to, or the SMTP server refused us."""
        return self.stop.is_set() or self.report.aborted is not None

    def abort(self, reason: str, ids: list[int], reply: str) -> None:
        """Halt the pass for `reason`; hand `ids` back with the server's `reply` noted."""
        if self.report.aborted is None:
            self.report.aborted = reason  # reported by whoever started the pass
        self.release(ids, reply)

    def release(self, ids: list[int], reply: str | None = None) -> None:
        """Hand claimed digests back to the outbox, unsent."""
        self.report.released += self.outbox.release(ids, reply)

    async def produce(self) -> None:
        """Claim and render batch after batch, as many rendering at once as there are
        render processes (one, without); each is queued once the next is rendering."""
        claimed = 0
        depth = 1 + (self.pool.size if self.pool is not None else 1)
        ahead: deque[tuple[list[int], asyncio.Task[Any]]] = deque()
        try:
            while True:
                while len(ahead) < depth and (ids := self.claim(claimed)):
                    claimed += len(ids)
                    ahead.append((ids, asyncio.create_task(self.prepare(ids))))
                if not ahead:
                    return
                ids, rendering = ahead.popleft()
                if not await self.feed(ids, rendering):
                    for ids, rendering in ahead:  # halted: hand the batches ahead back
                        with contextlib.suppress(SigningError):
                            await rendering
                        self.release(ids)
                    return
        finally:
            for _ in range(self.senders):
                await self.queue.put(None)

    def claim(self, claimed: int) -> list[int]:
        """The next batch of digests, within the pass's limit; none once halted."""
        if self.halted():
            return []
        size = self.batch if self.limit is None else min(self.batch, self.limit - claimed)
        return self.outbox.claim(self.clock(), size) if size > 0 else []

    async def prepare(self, ids: list[int]) -> tuple[list[Job], list[Outcome]]:
        """Render claimed digests, in the render process when there is one."""
        if self.pool is None:
            return self.outbox.prepare(ids, self.clock())
        return await self.pool.prepare(ids, self.clock(), self.outbox.token)

    async def feed(self, ids: list[int], rendering: asyncio.Task[Any]) -> bool:
        """Queue a rendered batch, renewing leases in small groups; False once halted."""
        try:
            jobs, closed = await rendering
        except SigningError as exc:  # the operator's DKIM key: our problem, stop
            self.abort(str(exc), ids, str(exc))
            return False
        self.report.outcomes.extend(closed)
        for start in range(0, len(jobs), self.group):
            if self.halted():
                self.release([job.digest_id for job in jobs[start:]])
                return False
            # Renewed just before they can be handed to SMTP.
            ready, dropped = self.outbox.touch(jobs[start : start + self.group], self.clock())
            self.report.outcomes.extend(dropped)
            for job in ready:
                await self.queue.put(job)
        return True

    async def send(self) -> None:
        """One sender: hand queued messages to SMTP until the producer says it is done."""
        while (job := await self.queue.get()) is not None:
            if self.halted():
                self.release([job.digest_id])
                continue
            result: str | SendError
            try:
                result = await self.transport.send(job.envelope)
            except SendError as exc:
                if exc.failure is Failure.sender:
                    reason = f"the SMTP server refused us: {exc.reply}"
                    self.abort(reason, [job.digest_id], exc.reply)
                    continue
                result = exc
            self.pending.append((job, result))
            if len(self.pending) >= self.group:
                self.flush()
            elif self.timer is None:
                loop = asyncio.get_running_loop()
                self.timer = loop.call_later(RECORD_DELAY, self.flush_later)

    def flush(self) -> None:
        """Record every pending result now."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            try:
                self.report.outcomes.extend(self.outbox.record(batch, self.clock()))
            except BaseException:
                self.pending[:0] = batch  # recorded by the next flush, or reported by the last
                raise

    def flush_later(self) -> None:
        """The timer's flush: a failure is logged and retried by the next flush."""
        try:
            self.flush()
        except Exception:
            log.exception("recording sent digests failed; will try again")


async def send_due(
    engine: Engine,
    transport: Transport,
    renderer: Renderer,
    *,
    clock: Clock,
    stop: asyncio.Event | None = None,
    limit: int | None = None,
    senders: int | None = None,
    pool: RenderPool | None = None,
) -> SendReport:
    """Send every claimable digest (at most `limit`); the caller closes the transport.

    With a `pool`, digests are rendered in another process while this one sends. If the
    SMTP server refuses us, the pass stops and `SendReport.aborted` says why.
    """
    settings = renderer.settings
    return await SendPass(
        Outbox(engine, renderer),
        transport,
        clock=clock,
        stop=stop or asyncio.Event(),
        limit=limit or settings.max_per_run,
        senders=senders or settings.smtp_connections,
        pool=pool,
    ).run()


async def run(
    engine: Engine,
    matcher: Matcher,
    transport: Transport,
    renderer: Renderer,
    now: datetime,
    *,
    clock: Clock | None = None,
) -> tuple[PlanReport, SendReport]:
    """The digest job: plan every due digest, send whatever is sendable, close the transport."""
    planned = plan(engine, matcher, renderer.settings, now)
    pool = RenderPool.start(engine, renderer.settings, expected=planned.planned)
    try:
        sent = await send_due(engine, transport, renderer, clock=clock or (lambda: now), pool=pool)
    finally:
        await transport.close()
        if pool is not None:
            pool.close()
    return planned, sent


async def work(
    engine: Engine,
    transport: Transport,
    renderer: Renderer,
    *,
    clock: Clock,
    stop: asyncio.Event,
    poll: float,
    once: bool = False,
    wake: asyncio.Event | None = None,
) -> SendReport:
    """Send due digests until `stop` is set (or once); `wake` cuts an idle wait short.

    Returns every pass's outcomes; stops early, with `aborted` set, if the SMTP server
    refuses us (another pass would only be refused again).
    """
    total = SendReport()
    pool = RenderPool.start(engine, renderer.settings)
    try:
        while not stop.is_set():
            report = await send_due(engine, transport, renderer, clock=clock, stop=stop, pool=pool)
            total.outcomes.extend(report.outcomes)
            total.released += report.released
            if report.outcomes:
                sent = report.count(DigestStatus.sent)
                log.info("sent %d of %d digests", sent, len(report.outcomes))
            if report.aborted:
                total.aborted = report.aborted
                break
            if once:
                break
            if not report.outcomes:
                await _idle(stop, wake, poll)
    finally:
        await transport.close()
        if pool is not None:
            pool.close()
    return total


async def _idle(stop: asyncio.Event, wake: asyncio.Event | None, poll: float) -> None:
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll)
        return
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        wake.clear()


class RenderPool:
    """Renders claimed digests in separate processes, so the event loop keeps sending.

    Rendering (templates, CSS inlining, MIME) costs more CPU than the SMTP conversation;
    on a machine with two or more cores, doing it beside the sender nearly doubles the
    rate. There are `render_processes` of them (by default one per core beyond the
    sender's), each with its own database engine and template caches, and as many
    batches render at once.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        url = engine.url.render_as_string(hide_password=False)
        self.size = max(1, settings.render_processes)
        self.executor = children.pool(self.size, _start_renderer, (url, settings))

    @classmethod
    def start(
        cls, engine: Engine, settings: Settings, expected: int | None = None
    ) -> RenderPool | None:
        """A pool, unless configured off or too few digests (`expected`) to repay its start."""
        if settings.render_processes < 1:
            return None
        if expected is not None and expected < settings.render_pool_min_digests:
            return None
        return cls(engine, settings)

    async def prepare(
        self, ids: list[int], now: datetime, token: str
    ) -> tuple[list[Job], list[Outcome]]:
        """Outbox.prepare, run in the render process under the caller's claim token."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _prepare, ids, now, token)

    def close(self) -> None:
        """Stop the render process."""
        self.executor.shutdown(wait=True, cancel_futures=True)


_renderer_outbox: Outbox | None = None


def _start_renderer(url: str, settings: Settings) -> None:
    """Set up the render process (children.pool has made it end with the sender)."""
    global _renderer_outbox
    # Rendering allocates many short-lived objects beside caches of long-lived ones (cards,
    # views): collected for cycles at Python's default pace, 6% of the render time went
    # to the collector, 1.5% at this one.
    gc.set_threshold(10_000, 10, 10)
    # Not niced: on a busy machine a niced renderer gets almost no CPU, and the sender,
    # which waits for its batches, stalls with it. Render processes are one per spare core.
    _renderer_outbox = Outbox(make_engine(url), Renderer(settings))


def _prepare(ids: list[int], now: datetime, token: str) -> tuple[list[Job], list[Outcome]]:
    assert _renderer_outbox is not None, "render process not initialised"
    _renderer_outbox.token = token
    return _renderer_outbox.prepare(ids, now)
