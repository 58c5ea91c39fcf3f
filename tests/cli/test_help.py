"""The command line: every command, option and argument explains itself."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from digest.cli import app

runner = CliRunner()


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(typer.main.get_command(app))
    names = {" ".join(path) for path, _ in commands}
    assert {"db upgrade", "ingest", "subscribe", "run", "preview", "smtp-capture", "demo"} <= names
    assert {"search", "explain"} <= names
    for path, command in commands:
        label = " ".join(("digest", *path))
        assert command.help, f"`{label}` has no help text"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{param.name} of `{label}` has no help"
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert command.help.split("\n")[0][:30] in " ".join(result.output.split())
