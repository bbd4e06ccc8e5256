"""The `nurture` command line (also `python -m bot`): one module per group of commands, all on one command tree.

bot.cli.common holds the tree and what the commands share; each other module adds its commands to it when imported.
"""

from __future__ import annotations


def main() -> None:
    from bot.cli import admin, campaigns, server, success, surveys, usage  # noqa: F401  (each adds its commands)
    from bot.cli.common import app

    app(prog_name="nurture")
