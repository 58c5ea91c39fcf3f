"""The send loop: a producer claims and renders, one sender per connection sends.

`send_due` empties the outbox once; `work` keeps doing so until told to stop (SIGTERM):
the message in flight is finished and recorded, every other claimed digest is released
for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from digest.clock import Clock
from digest.config import Settings
from digest.db import make_engine
from digest.delivery.outbox import Job, Outbox, Outcome, SendReport
from digest.delivery.planning import PlanReport, plan
from digest.delivery.transport import Failure, SendError, Transport
from digest.mail.dkim import SigningError
from digest.mail.render import Renderer
from digest.match import Matcher
from digest.models import DigestStatus

log = logging.getLogger(__name__)

# Leases are renewed, and results recorded, for groups of at least this many digests:
# one transaction per message would cost more than the SMTP conversation.
GROUP = 16
# A result waits at most this long (seconds) to be recorded.
RECORD_DELAY = 0.05
# The render process yields the CPU to the sender (and anything else) when both want it.
RENDER_NICENESS = 10


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

    With a `pool`, digests are rendered in another process while this one sends.
    """
    settings = renderer.settings
    outbox = Outbox(engine, renderer)
    report = SendReport()
    stop = stop or asyncio.Event()
    cap = limit or settings.max_per_run
    workers = senders or settings.smtp_connections
    group = max(workers, GROUP)
    queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=workers)
    abort: list[SendError] = []
    pending: list[tuple[Job, str | SendError]] = []  # accepted or refused, not yet recorded
    timer: list[asyncio.TimerHandle] = []  # records `pending` RECORD_DELAY after the first

    def halted() -> bool:
        return stop.is_set() or bool(abort)

    async def prepare(ids: list[int]) -> tuple[list[Job], list[Outcome]]:
        if pool is None:
            return outbox.prepare(ids, clock())
        return await pool.prepare(ids, clock(), outbox.token)

    async def feed(ids: list[int], rendering: asyncio.Task[Any]) -> bool:
        """Queue a rendered batch, renewing leases in small groups; False once halted."""
        try:
            jobs, closed = await rendering
        except SigningError as exc:  # the operator's DKIM key: our problem, stop
            abort.append(SendError(str(exc), Failure.sender))
            report.released += outbox.release(ids, str(exc))
            return False
        report.outcomes.extend(closed)
        for start in range(0, len(jobs), group):
            if halted():
                report.released += outbox.release([j.digest_id for j in jobs[start:]])
                return False
            # Renewed just before they can be handed to SMTP.
            ready, dropped = outbox.touch(jobs[start : start + group], clock())
            report.outcomes.extend(dropped)
            for job in ready:
                await queue.put(job)
        return True

    async def produce() -> None:
        # Pipelined: the next batch is claimed and rendered while this one is sent.
        claimed = 0
        ahead: tuple[list[int], asyncio.Task[Any]] | None = None
        try:
            while True:
                ids: list[int] = []
                if not halted():
                    room = settings.send_batch if cap is None else cap - claimed
                    size = min(settings.send_batch, room)
                    ids = outbox.claim(clock(), size) if size > 0 else []
                    claimed += len(ids)
                rendering = asyncio.create_task(prepare(ids)) if ids else None
                if ahead is not None and not await feed(*ahead):
                    if rendering is not None:  # halted: hand the next batch back
                        with contextlib.suppress(SigningError):
                            await rendering
                        report.released += outbox.release(ids)
                    return
                if rendering is None:
                    return
                ahead = (ids, rendering)
        finally:
            for _ in range(workers):
                await queue.put(None)

    async def send() -> None:
        while (job := await queue.get()) is not None:
            if halted():
                report.released += outbox.release([job.digest_id])
                continue
            result: str | SendError
            try:
                result = await transport.send(job.envelope)
            except SendError as exc:
                if exc.failure is Failure.sender:
                    abort.append(exc)
                    report.released += outbox.release([job.digest_id], exc.reply)
                    continue
                result = exc
            pending.append((job, result))
            if len(pending) >= group:
                flush()
            elif not timer:
                timer.append(asyncio.get_running_loop().call_later(RECORD_DELAY, flush_later))

    def flush() -> None:
        while timer:
            timer.pop().cancel()
        batch = pending.copy()
        pending.clear()
        if batch:
            try:
                report.outcomes.extend(outbox.record(batch, clock()))
            except BaseException:
                pending[:0] = batch  # recorded by the next flush, or reported by the last
                raise

    def flush_later() -> None:
        try:
            flush()
        except Exception:
            log.exception("recording sent digests failed; will try again")

    try:
        await asyncio.gather(produce(), *(send() for _ in range(workers)))
    finally:
        flush()
    if abort:
        report.aborted = abort[0].reply
        log.error("sending stopped: the SMTP server refused us: %s", abort[0].reply)
    return report


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
) -> list[Outcome]:
    """Send due digests until `stop` is set (or once); `wake` cuts an idle wait short."""
    outcomes: list[Outcome] = []
    pool = RenderPool.start(engine, renderer.settings)
    try:
        while not stop.is_set():
            report = await send_due(engine, transport, renderer, clock=clock, stop=stop, pool=pool)
            outcomes.extend(report.outcomes)
            sent = report.count(DigestStatus.sent)
            if report.outcomes:
                log.info("sent %d of %d digests", sent, len(report.outcomes))
            if report.aborted:
                raise SendAborted(report.aborted)
            if once:
                break
            if not report.outcomes:
                await _idle(stop, wake, poll)
    finally:
        await transport.close()
        if pool is not None:
            pool.close()
    return outcomes


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
    """Renders claimed digests in a separate process, so the event loop keeps sending.

    Rendering (templates, CSS inlining, MIME) costs more CPU than the SMTP conversation;
    on a machine with two or more cores, doing it beside the sender nearly doubles the
    rate. The render process has its own database engine and template caches.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        url = engine.url.render_as_string(hide_password=False)
        self.executor = ProcessPoolExecutor(
            max_workers=settings.render_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_renderer,
            initargs=(url, settings),
        )

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
    global _renderer_outbox
    # Rendering ahead is background work: the sender's SMTP round trips come first.
    os.nice(RENDER_NICENESS)
    _renderer_outbox = Outbox(make_engine(url), Renderer(settings))
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End the render process when its parent is gone (killed with SIGKILL, say)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _prepare(ids: list[int], now: datetime, token: str) -> tuple[list[Job], list[Outcome]]:
    assert _renderer_outbox is not None, "render process not initialised"
    _renderer_outbox.token = token
    return _renderer_outbox.prepare(ids, now)


class SendAborted(RuntimeError):
    """The SMTP server refused us (authentication, policy): sending stopped."""
