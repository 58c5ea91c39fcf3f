"""The send loop: a producer claims and renders, one sender per connection sends.

`send_due` empties the outbox once; `work` keeps doing so until told to stop (SIGTERM):
the message in flight is finished and recorded, every other claimed digest is released
for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import Engine

from digest.delivery import Clock, Job, Outbox, Outcome, SendReport
from digest.mailer import Failure, SendError, Transport
from digest.match import Matcher
from digest.models import DigestStatus
from digest.planning import PlanReport, plan
from digest.render import Renderer
from digest.signing import SigningError

log = logging.getLogger(__name__)


async def send_due(
    engine: Engine,
    transport: Transport,
    renderer: Renderer,
    *,
    clock: Clock,
    stop: asyncio.Event | None = None,
    limit: int | None = None,
    senders: int | None = None,
) -> SendReport:
    """Send every claimable digest (at most `limit`); the caller closes the transport."""
    settings = renderer.settings
    outbox = Outbox(engine, renderer)
    report = SendReport()
    stop = stop or asyncio.Event()
    cap = limit or settings.max_per_run
    workers = senders or settings.smtp_connections
    queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=workers)
    abort: list[SendError] = []
    pending: list[tuple[Job, str | SendError]] = []  # accepted or refused, not yet recorded

    def halted() -> bool:
        return stop.is_set() or bool(abort)

    async def produce() -> None:
        claimed = 0
        try:
            while not halted():
                size = (
                    settings.send_batch if cap is None else min(settings.send_batch, cap - claimed)
                )
                ids = outbox.claim(clock(), size) if size > 0 else []
                if not ids:
                    return
                claimed += len(ids)
                try:
                    jobs, closed = outbox.prepare(ids, clock())
                except SigningError as exc:  # the operator's DKIM key: our problem, stop
                    abort.append(SendError(str(exc), Failure.sender))
                    report.released += outbox.release(ids, str(exc))
                    return
                report.outcomes.extend(closed)
                for start in range(0, len(jobs), workers):
                    if halted():
                        report.released += outbox.release([j.digest_id for j in jobs[start:]])
                        return
                    # Renewed in small groups, just before they can be handed to SMTP.
                    ready, dropped = outbox.touch(jobs[start : start + workers], clock())
                    report.outcomes.extend(dropped)
                    for job in ready:
                        await queue.put(job)
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
            if len(pending) >= workers or queue.empty():
                flush()

    def flush() -> None:
        batch = pending.copy()
        pending.clear()
        if batch:
            report.outcomes.extend(outbox.record(batch, clock()))

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
    try:
        sent = await send_due(engine, transport, renderer, clock=clock or (lambda: now))
    finally:
        await transport.close()
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
    try:
        while not stop.is_set():
            report = await send_due(engine, transport, renderer, clock=clock, stop=stop)
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


class SendAborted(RuntimeError):
    """The SMTP server refused us (authentication, policy): sending stopped."""
