"""Subscribers as CSV: the export's cells, and the import that stores its rows in chunks.

An import reads the request body as it arrives, checks each row as it is read (every bad
row is reported with its line number, address and error), and stores the good ones
`CHUNK` to a transaction in a few statements (`subscribers.save_all`): a transaction and
four statements a row were most of an import's time (docs/benchmarks.md).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from anyio import from_thread
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from digest import subscribers
from digest.clock import Clock
from digest.subscribers import Entry, SubscriberError, normalise_email

CSV_FIELDS = ["email", "status", "timezone", "send_hour", "cadence", "weekday", "max_papers"]
CHUNK = 1000  # rows stored a transaction
PROGRESS = 5000  # rows read between two progress lines in the log
log = logging.getLogger(__name__)

# A cell a spreadsheet would run as a formula starts with one of these (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a formula's start gets a leading '."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def uncell(value: str) -> str:
    """An exported cell read back: the ' that kept it from being a formula removed."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


class ImportReport(BaseModel):
    """What a CSV import did; rows with errors are reported and the rest are stored."""

    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)


@dataclass
class Row:
    """A checked row waiting to be stored."""

    line: int
    email: str | None  # as the file has it, for the report
    entry: Entry


@dataclass
class CsvImport:
    """One import: its report so far, the addresses its rows named, the checked rows not
    yet stored. `run` it over the lines of an exported CSV, in a worker thread."""

    engine: Engine
    clock: Clock
    default_max: int = 20
    chunk: int = CHUNK
    report: ImportReport = field(default_factory=ImportReport)
    seen: dict[str, int] = field(default_factory=dict)  # address -> the line naming it first
    waiting: list[Row] = field(default_factory=list)

    def run(self, lines: Iterable[str]) -> ImportReport:
        """Create or update a subscriber by address for each good row; report the others."""
        for number, record in enumerate(csv.DictReader(lines), start=2):
            self.read(number, record)
            if len(self.waiting) >= self.chunk:
                self.store()
            if (number - 1) % PROGRESS == 0:
                self._progress(number - 1)
        self.store()
        self.report.errors.sort(key=lambda e: int(e["line"]))  # a chunk's refusals come late
        return self.report

    def read(self, number: int, record: dict[str | Any, Any]) -> None:
        """Check one row: queue it to be stored, or report why it is not imported."""
        record = {k: uncell(v) if isinstance(v, str) else v for k, v in record.items()}
        data: dict[str, Any] = {k: v for k, v in record.items() if k and v not in (None, "")}
        data["interests"] = [s for s in str(record.get("interests") or "").split("|") if s.strip()]
        email = record.get("email")
        try:
            entry: Entry | None = subscribers.check(data, default_max=self.default_max)
        except SubscriberError as exc:
            entry, problem = None, str(exc)
        address = entry.address if entry else _address(email)
        if address and address in self.seen:
            error = f"{address} is already on line {self.seen[address]}: this row is not imported"
            self._error(number, email, error)
            return
        self.seen[address] = number
        if entry is None:
            self._error(number, email, problem)
            return
        self.waiting.append(Row(number, email, entry))

    def store(self) -> None:
        """Store the rows waiting, in one transaction (one for each if one is refused)."""
        rows, self.waiting = self.waiting, []
        if not rows:
            return
        saved = subscribers.save_all(self.engine, [row.entry for row in rows], now=self.clock())
        for row, result in zip(rows, saved, strict=True):
            if isinstance(result, Exception):
                self._error(row.line, row.email, str(result))
            else:
                self.report.created += result[1]
                self.report.updated += not result[1]

    def _progress(self, rows: int) -> None:
        stored = self.report.created + self.report.updated
        errors = len(self.report.errors)
        log.info("CSV import: %d rows read, %d stored, %d errors so far", rows, stored, errors)

    def _error(self, line: int, email: str | None, error: str) -> None:
        self.report.errors.append({"line": line, "email": email, "error": error})


def _address(email: str | None) -> str:
    """The normalised address, or "" if it is not one (reported with the row's problems)."""
    try:
        return normalise_email(str(email or ""))
    except SubscriberError:
        return ""


class Body(io.RawIOBase):
    """A request body as a binary file for a worker thread: a read waits (on the event loop)
    for the next piece the client sends, so that one piece at a time is held."""

    def __init__(self, pieces: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._piece:
            piece = from_thread.run(self._next)
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        size = min(len(buffer), len(self._piece))
        buffer[:size] = self._piece[:size]
        self._piece = self._piece[size:]
        return size

    async def _next(self) -> bytes | None:
        return await anext(self._pieces, None)


def text_of(pieces: AsyncIterator[bytes]) -> io.TextIOWrapper:
    """A CSV body's text, read as it arrives (UTF-8, a byte-order mark skipped, bad bytes
    replaced), for `CsvImport.run` in a worker thread."""
    raw = io.BufferedReader(Body(pieces), buffer_size=1 << 16)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
