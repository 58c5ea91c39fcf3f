"""The message on the wire: headers, encodings, size, and DKIM signatures."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import dkim
import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from digest.clock import utcnow
from digest.config import Settings
from digest.mail.dkim import SigningError, sign
from digest.mail.message import (
    MESSAGE_POLICY,
    Rendered,
    compose,
    envelope_sender,
    list_unsubscribe,
    new_message_id,
    sender,
)
from digest.mail.render import ConfirmView, Renderer
from digest.mail.text import one_line
from tests.kit.mail import (
    HOSTILE,
    UNSUBSCRIBE,
    digest_view,
    email_settings,
    make_dkim_key,
    paper,
    parse,
    parts,
    wire,
)


def test_digest_headers_parse_back() -> None:
    settings = email_settings(return_path="bounces@digest.test")
    message = parse(Renderer(settings).digest(digest_view([paper(1)])), settings)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == "Paper Digest <digest@digest.test>"
    assert message["From"].addresses[0].display_name == "Paper Digest"
    assert message["To"] == "reader@example.org"
    assert message["Subject"] == "1 new paper: mixture of experts"
    assert message["Message-ID"] == "<digest.1.2026-11-26@digest.test>"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["List-Id"] == '"Paper Digest" <digest.digest.test>'
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"  # no mailto: nothing reads it
    reading = email_settings(inbox_maildir=Path("/var/mail/digest"))
    assert list_unsubscribe(reading, UNSUBSCRIBE) == (
        f"<{UNSUBSCRIBE}>, <mailto:digest@digest.test?subject=unsubscribe%20tok-{'x' * 80}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Return-Path"] == "bounces@digest.test"
    assert envelope_sender(settings, "reader@example.org") == "bounces@digest.test"
    text, html = parts(message)
    assert text.splitlines()[0] == "1 new paper: mixture of experts"
    assert "<!DOCTYPE html>" in html


def test_verp_return_path_and_list_settings() -> None:
    settings = email_settings(
        return_path="bounces+{local}={domain}@bounce.digest.test",
        list_id="papers.lab.example",
        unsubscribe_mailto="leave@lab.example",
    )
    message = parse(Renderer(settings).digest(digest_view([paper(1)])), settings)
    assert (
        envelope_sender(settings, "reader@example.org")
        == "bounces+reader=example.org@bounce.digest.test"
    )
    assert message["List-Id"] == '"Paper Digest" <papers.lab.example>'
    assert "<mailto:leave@lab.example?subject=unsubscribe%20tok-" in message["List-Unsubscribe"]


def test_non_ascii_subject_is_rfc2047_encoded_and_decodes_back() -> None:
    settings = email_settings()
    papers = [paper(1, interest="émergence 🧪"), paper(2, interest="نماذج اللغة")]
    raw = wire(Renderer(settings).digest(digest_view(papers)), settings)
    message = parse(Renderer(settings).digest(digest_view(papers)), settings)
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]
    assert message["Subject"] == "2 new papers: émergence 🧪 and نماذج اللغة"


def test_no_header_injection_through_subscriber_or_paper_fields() -> None:
    settings = email_settings()
    message = parse(Renderer(settings).digest(digest_view(HOSTILE)), settings)
    assert message["Bcc"] is None and message["X-Evil"] is None
    injected = parse(Renderer(settings).digest(digest_view(HOSTILE[4:])), settings)
    assert injected["Subject"] == "1 new paper: line Bcc: victim@example.org"
    assert injected["Bcc"] is None
    with pytest.raises(ValueError):
        parse(Renderer(settings).digest(digest_view([paper(1)])), settings, unsubscribe="x\r\ny")
    rendered = Renderer(settings).digest(digest_view([paper(1)]))
    with pytest.raises(ValueError):
        compose(
            rendered,
            to="a@example.org\r\nBcc: victim@example.org",
            settings=settings,
            message_id="<x@y>",
            date=utcnow(),
        )


def test_confirmation_email_is_not_a_bulk_message() -> None:
    settings = email_settings()
    rendered = Renderer(settings).confirm(ConfirmView("new@example.org", "https://d.test/c/t"))
    message = parse(rendered, settings, unsubscribe=None)
    assert message["List-Unsubscribe"] is None and message["Precedence"] is None
    assert new_message_id(settings).endswith("@digest.test>")
    assert new_message_id(settings) != new_message_id(settings)
    assert message["Subject"] == "Confirm your subscription to Paper Digest"


def test_fifty_paper_digest_stays_under_the_size_limit() -> None:
    settings = email_settings()
    fifty = [paper(n, interest=f"interest {n % 4}") for n in range(50)]
    rendered = Renderer(settings).digest(digest_view(fifty, more=3))
    size = len(rendered.html.encode())
    assert size <= settings.email_max_bytes
    assert 10 < rendered.shown < 50
    cut = 50 - rendered.shown
    assert rendered.subject.startswith(f"{rendered.shown} new papers: ")
    assert f"And {cut + 3} more matched your interests: they are held over" in rendered.text
    few = Renderer(settings).digest(digest_view(fifty[:10]))
    assert few.shown == 10
    small = email_settings(email_max_bytes=20_000)
    assert Renderer(small).digest(digest_view(fifty)).shown < rendered.shown


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh RSA key (PEM file) and its DNS TXT record."""
    return make_dkim_key(tmp_path_factory.mktemp("dkim"))


def test_dkim_signature_verifies(dkim_key: tuple[Path, bytes]) -> None:
    key, record = dkim_key
    settings = email_settings(dkim_private_key=key, dkim_selector="s1")
    signed = sign(wire(Renderer(settings).digest(digest_view([paper(1)])), settings), settings)
    assert signed.startswith(b"DKIM-Signature:") and b"d=digest.test" in signed
    assert b"s=s1" in signed

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"s1._domainkey.digest.test." else b""

    assert dkim.verify(signed, dnsfunc=dns)
    tampered = signed.replace(b"1 new paper:", b"9 new paper:")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_is_off_by_default_and_reports_a_bad_key(tmp_path: Path) -> None:
    settings = email_settings()
    raw = wire(Renderer(settings).digest(digest_view([paper(1)])), settings)
    assert sign(raw, settings) == raw
    missing = email_settings(dkim_private_key=tmp_path / "absent.pem")
    with pytest.raises(SigningError, match=r"absent\.pem"):
        sign(raw, missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SigningError, match=r"garbage\.pem"):
        sign(raw, email_settings(dkim_private_key=garbage))


def _reference(rendered: Rendered, settings: Settings, to: str) -> EmailMessage:
    """The same message built by the email package alone, to compare `compose` against."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = one_line(rendered.subject)
    message["From"] = str(sender(settings))
    message["To"] = to
    message["Message-ID"] = "<digest.1.2026-11-26@digest.test>"
    message["List-Unsubscribe"] = list_unsubscribe(settings, UNSUBSCRIBE)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@settings_(max_examples=150, deadline=None)
@given(
    subject=TEXT,
    text=TEXT,
    html=TEXT,
    local=st.from_regex(r"[a-z0-9.+_-]{1,20}", fullmatch=True),
)
def test_composed_message_reads_back_as_the_email_package_builds_it(
    subject: str, text: str, html: str, local: str
) -> None:
    settings = email_settings()
    to = f"{local}@example.org"
    rendered = Rendered(subject=subject, text=text, html=html)
    data = compose(
        rendered,
        to=to,
        settings=settings,
        message_id="<digest.1.2026-11-26@digest.test>",
        date=utcnow(),
        unsubscribe_url=UNSUBSCRIBE,
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    got = message_from_bytes(data, policy=policy.default)
    want = message_from_bytes(_reference(rendered, settings, to).as_bytes(), policy=policy.default)
    assert isinstance(got, EmailMessage) and isinstance(want, EmailMessage)
    assert not got.defects and not any(part.defects for part in got.walk())
    for name in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe", "MIME-Version"):
        assert got[name] == want[name], name
    assert [p.get_content_type() for p in got.iter_parts()] == ["text/plain", "text/html"]
    # Line ends differ (CRLF on the wire, and the email package also breaks lines at
    # U+2028 and the like); the lines are the same.
    for ours, theirs in zip(parts(got), parts(want), strict=True):
        assert ours.splitlines() == theirs.splitlines()
