"""What the tests find around them: their folder, the shared data set, PostgreSQL, components."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

TESTS = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL")
SHARED = Path(os.environ.get("DIGEST_SHARED_DIR", TESTS.parents[1] / "shared"))
PAPERS_JSONL = SHARED / "data" / "papers.jsonl"


def missing(message: str, flag: str) -> NoReturn:
    """Skip for want of a component, or fail when CI requires it (`flag`=1 in the env)."""
    if os.environ.get(flag) == "1":
        pytest.fail(message)
    pytest.skip(message)


def shared_papers() -> Path:
    """../shared/data/papers.jsonl, or skip when the shared folder is absent."""
    if not PAPERS_JSONL.exists():
        pytest.skip(f"{PAPERS_JSONL} is absent")
    return PAPERS_JSONL


# The key test settings sign links with (long enough to be accepted anywhere).
SECRET = "test-secret-for-signing-links-0123456789"
