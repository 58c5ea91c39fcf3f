"""The key that signs links: made once and kept private, and never a weak one on a network."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings

runner = CliRunner()


def test_a_new_install_makes_a_random_key_once_and_keeps_it_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    first = Settings(var_dir=tmp_path / "var").secret_key.get_secret_value()
    kept = tmp_path / "var" / "secret_key"
    assert len(first) >= 32 and kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert Settings(var_dir=tmp_path / "var").secret_key.get_secret_value() == first
    assert Settings(var_dir=tmp_path / "other").secret_key.get_secret_value() != first


@pytest.mark.parametrize("key", ["change-me", "short-key"])
def test_a_weak_key_is_refused_where_the_links_reach_other_machines(key: str) -> None:
    public = Settings(secret_key=SecretStr(key), base_url="https://digest.example.org")
    problem = public.key_problem()
    assert problem is not None and "DIGEST_SECRET_KEY" in problem and "forge" in problem
    local = Settings(secret_key=SecretStr(key), base_url="http://127.0.0.1:8000")
    assert local.key_problem() is None  # a demo on this machine
    assert local.key_problem("127.0.0.1") is None
    assert local.key_problem("0.0.0.0") is not None  # the pages would be reachable
    strong = Settings(secret_key=SecretStr("k" * 40), base_url="https://digest.example.org")
    assert strong.key_problem("0.0.0.0") is None


def test_serve_and_run_refuse_the_default_key_on_a_public_url(
    cli_env: dict[str, str], engine: object
) -> None:
    weak = {**cli_env, "DIGEST_SECRET_KEY": "change-me"}
    for command in (["run"], ["worker", "--once"], ["serve", "--no-web"]):
        result = runner.invoke(app, command, env=weak)
        assert result.exit_code == 2, (command, result.output)
        assert "DIGEST_SECRET_KEY is the default key" in result.output
    local = {**weak, "DIGEST_BASE_URL": "http://127.0.0.1:8000"}
    exposed = runner.invoke(app, ["serve", "--host", "0.0.0.0"], env=local)
    assert exposed.exit_code == 2 and "serve on loopback only" in exposed.output
    assert runner.invoke(app, ["run"], env=local).exit_code == 0
