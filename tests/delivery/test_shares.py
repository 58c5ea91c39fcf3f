"""The cap is shared by every interest line, a followed author is never cut, and what did not
fit is held over to the next digests (within the operator's limit), never lost or doubled."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings
from digest.delivery.planning import Choice, share
from digest.match.query import readable
from digest.models import DIGEST_PAPERS, DIGESTS, SENT_PAPERS
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from digest.web.accounts import digest_papers
from tests.kit.mail import parts
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink

MATCHED = 45 + 15 + 1 + 6 + 12  # what the five lines match in `the_new_users_week`
LINES = [
    '"mixture of experts"',
    "LoRA -survey",
    'author:"Yann LeCun"',
    "cat:cs.CL diffusion",
    "(pruning OR sparsity) LLM",
]


def the_new_users_week(engine: Engine) -> None:
    """The case from the issue: one line matches 45 papers, a followed author one."""
    papers = [
        *(
            PaperIn(
                id=f"2411.{n:05d}",
                title=f"Mixture of experts routing, study {n}",
                abstract="A sparse mixture of experts. " * (1 + n % 3),
            )
            for n in range(45)
        ),
        *(
            PaperIn(id=f"2411.{100 + n:05d}", title=f"LoRA for task {n}", abstract="LoRA " * 3)
            for n in range(15)
        ),
        PaperIn(id="2411.00200", title="A survey of LoRA", abstract="LoRA survey."),
        PaperIn(
            id="2411.00300",
            title="Self-supervised world models",
            abstract="Predicting in representation space.",
            authors=["Yann LeCun", "Ada Lovelace"],
        ),
        *(
            PaperIn(
                id=f"2411.{400 + n:05d}",
                title=f"Diffusion language model {n}",
                abstract="diffusion",
                categories=["cs.CL"],
            )
            for n in range(6)
        ),
        *(
            PaperIn(
                id=f"2411.{500 + n:05d}",
                title=f"Pruning an LLM, take {n}",
                abstract="pruning LLM pruning LLM",
            )
            for n in range(12)
        ),
    ]
    store(engine, papers, now=T0 - timedelta(hours=1))
    subscribe(engine, "ada@example.org", LINES, max_papers=20, now=T0 - timedelta(days=1))


def shown_by_line(text: str) -> Counter[str]:
    """How many papers the text part shows under each interest line (as typed)."""
    headings = {readable(line): line for line in LINES}
    return Counter(
        {headings[name]: int(n) for name, n in re.findall(r"^== (.+) \((\d+)\) ==\s*$", text, re.M)}
    )


def test_every_line_gets_its_share_and_the_followed_author_comes_first(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    the_new_users_week(engine)
    send_digest(engine, settings, T0)
    (message,) = smtp.to("ada@example.org")
    text, html = parts(message)
    counts = shown_by_line(text)
    assert sum(counts.values()) == 20
    assert counts['author:"Yann LeCun"'] == 1
    assert all(counts[line] >= 4 for line in LINES if not line.startswith("author:")), counts
    # The followed author's group comes first, and their paper opens the digest.
    first_group = re.search(r"^== (.+) \(\d+\) ==\s*$", text, re.M)
    assert first_group is not None and first_group[1] == "Yann LeCun"
    assert text.index("Self-supervised world models") < text.index("Mixture of experts")
    matched = MATCHED
    assert f"And {matched - 20} more matched your interests: they are held over" in text
    assert f"See all {matched}" in html
    with engine.connect() as conn:
        (digest_id,) = conn.execute(sa.select(DIGESTS.c.id)).scalars()
        listed = digest_papers(conn, digest_id)
    assert len(listed) == matched
    assert sum(1 for p in listed if p.held) == matched - 20
    assert {p.title for p in listed if p.sent_in is None} == {p.title for p in listed if p.held}


def test_what_did_not_fit_comes_next_never_twice_and_expires(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    the_new_users_week(engine)
    matched = MATCHED
    for day in range(4):
        send_digest(engine, settings, T0 + timedelta(days=day))
    messages = smtp.to("ada@example.org")
    assert len(messages) == 4  # 20 + 20 + 20 + 19: every matched paper, each once
    titles = [t for m in messages for t in re.findall(r"^\d+\.\s+(.+)$", parts(m)[0], re.M)]
    assert len(titles) == len(set(titles)) == matched
    with engine.connect() as conn:
        sent = conn.execute(sa.select(sa.func.count()).select_from(SENT_PAPERS)).scalar()
    assert sent == matched
    # The last digest says nothing is held over any more.
    assert "held over" not in parts(messages[-1])[0]


def test_a_held_paper_older_than_the_limit_is_let_go(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    the_new_users_week(engine)
    send_digest(engine, settings, T0)
    late = T0 + timedelta(days=settings.holdover_days, hours=1)
    send_digest(engine, settings, late)
    assert len(smtp.to("ada@example.org")) == 1
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(DIGESTS.c.status).order_by(DIGESTS.c.id)).scalars()
        assert list(statuses) == ["sent", "empty"]
        held = conn.execute(
            sa.select(sa.func.count()).select_from(DIGEST_PAPERS).where(DIGEST_PAPERS.c.held)
        ).scalar()
    assert held == MATCHED - 20


def choice(paper: int, score: float) -> Choice:
    return Choice(paper, score, "line", ())


def test_share_takes_turns_and_gives_spare_room_to_the_best_of_the_rest() -> None:
    lines = {
        "a": [choice(n, 10 - n * 0.1) for n in range(10)],
        "b": [choice(100, 5.0)],
        'author:"x y"': [choice(200, 0.1), choice(201, 0.05)],
    }
    shown, held = share(lines, 6)
    assert [c.paper_id for c in shown[:2]] == [200, 201]  # the author's, first
    assert {c.paper_id for c in shown[2:]} == {0, 1, 2, 100}
    assert [c.paper_id for c in held] == list(range(3, 10))
    # Only the author's papers, even past the cap: a followed author is never cut.
    shown, held = share({'author:"x y"': [choice(n, 1.0) for n in range(3)]}, 2)
    assert len(shown) == 3 and held == []
