"""`digest demo` from an empty directory: sends three digests, then nothing new."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from tests.kit.mail import parts

runner = CliRunner()


def test_demo_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DIGEST_VAR_DIR": str(tmp_path / "var"), "DIGEST_DATABASE_URL": ""}
    first = runner.invoke(app, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    for address in ("ada@example.org", "grace@example.org", "alan@example.org"):
        assert address in first.output
    messages = sorted((tmp_path / "var" / "mail" / "new").iterdir())
    assert len(messages) == 3
    preview = tmp_path / "var" / "digest-preview.html"
    assert str(preview) in first.output.replace("\n", "")
    assert preview.read_text().startswith("<!DOCTYPE html>")
    # The sample is real arXiv metadata: the first email shows authors, links, highlights.
    ada = next(m for m in messages if b"To: ada@example.org" in m.read_bytes())
    message = message_from_bytes(ada.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = parts(message)
    assert "https://arxiv.org/abs/" in text and "Abstract:" in text
    assert "<mark" in html and "et al." in html
    assert "held over for your next digest" in " ".join(text.split())  # her cap is 10

    second = runner.invoke(app, ["demo"], env=env)
    assert second.exit_code == 0, second.output
    assert "Nothing new to send" in second.output
    assert len(list((tmp_path / "var" / "mail" / "new").iterdir())) == 3
