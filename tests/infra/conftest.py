from pathlib import Path
from typing import Any

import typer

from app import cli

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def steward_command_exists(argv: list[str]) -> bool:
    """Whether `steward <argv...>` names a command of app/cli.py (options after the command are not checked)."""
    # Duck-typed: typer may ship its own copy of click, whose Group is not click.Group.
    command: Any = typer.main.get_command(cli.app)
    for word in argv:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        command = command.commands.get(word)
        if command is None:
            return False
    return not hasattr(command, "commands")
