"""SMTP servers on loopback: a sink that keeps what it accepts, and one that misbehaves."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from digest.mail.capture import free_port


@dataclass
class Received:
    """One message as the SMTP server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """A real SMTP server on loopback that keeps what it accepts, or refuses on demand."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK queued"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for `address`."""
        return [r.message for r in self.received if address in r.recipients]


@dataclass
class FaultySink:
    """aiosmtpd handler: random 421/451, dropped connections in DATA, stalls, 550s."""

    seed: int = 1
    port: int = 0
    p_451: float = 0.0  # temporary refusal at RCPT
    p_421: float = 0.0  # service closing at the end of DATA
    p_drop: float = 0.0  # connection dropped before DATA is acknowledged
    p_stall: float = 0.0  # no reply until after the client's timeout
    stall_seconds: float = 1.0
    delay: float = 0.0  # seconds a relay takes to accept each message
    hard_bounce: set[str] = field(default_factory=set)
    first: list[str] = field(default_factory=list)  # faults forced on the first DATAs, in order
    delivered: Counter[str] = field(default_factory=Counter)  # Message-ID -> times stored
    recipients: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each delivery

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.hard_bounce:
            self.faults["550"] += 1
            return f"550 5.1.1 <{address}>: user unknown"
        if self.rng.random() < self.p_451:
            self.faults["451"] += 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        roll = self.rng.random()
        forced = self.first.pop(0) if self.first else None
        if forced == "421" or (forced is None and roll < self.p_421):
            self.faults["421"] += 1
            return "421 4.3.2 service shutting down"
        roll -= self.p_421
        if forced == "drop" or (forced is None and roll < self.p_drop):
            self.faults["drop"] += 1
            server.transport.close()
            return "451 dropped"
        roll -= self.p_drop
        if forced == "stall" or (forced is None and roll < self.p_stall):
            self.faults["stall"] += 1
            await asyncio.sleep(self.stall_seconds)
            server.transport.close()
            return "451 stalled"
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.delivered[str(message["Message-ID"])] += 1
        self.times.append(time.monotonic())
        for address in envelope.rcpt_tos:
            self.recipients[address] += 1
        return "250 2.0.0 queued"


@contextmanager
def serving(sink: FaultySink) -> Iterator[FaultySink]:
    """Run `sink` as an SMTP server on a free loopback port (its `port`)."""
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()
