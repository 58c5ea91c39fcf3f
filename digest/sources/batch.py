"""A batch of entries parsed from one response: the valid papers and the rejected entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import struct_time
from typing import Any

from pydantic import ValidationError

from digest.sources.ingest import PaperIn, describe


class SourceError(Exception):
    """A whole response is unusable (not the expected format, an error document)."""


@dataclass
class Batch:
    """Papers parsed from one response, and one message per entry that was skipped."""

    papers: list[PaperIn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fetched: int = 0

    def add(self, where: str, build: Callable[[], dict[str, Any]]) -> PaperIn | None:
        """Validate the fields `build` returns; on any problem record it under `where`."""
        self.fetched += 1
        try:
            paper = PaperIn.model_validate(build())
        except ValidationError as exc:
            self.errors.append(f"{where}: {describe(exc, 'entry')}")
            return None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            self.errors.append(f"{where}: {type(exc).__name__}: {exc}")
            return None
        self.papers.append(paper)
        return paper

    def skip(self, where: str, reason: str) -> None:
        """Count an entry that cannot be used, with the reason."""
        self.fetched += 1
        self.errors.append(f"{where}: {reason}")


def from_struct(value: struct_time | None) -> datetime | None:
    """A feedparser date (a UTC struct_time) as an aware datetime."""
    if value is None:
        return None
    return datetime(*value[:6], tzinfo=UTC)
