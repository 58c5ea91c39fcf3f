"""`digest demo` from an empty directory: sends three digests, then nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app

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

    second = runner.invoke(app, ["demo"], env=env)
    assert second.exit_code == 0, second.output
    assert "Nothing new to send" in second.output
    assert len(list((tmp_path / "var" / "mail" / "new").iterdir())) == 3
