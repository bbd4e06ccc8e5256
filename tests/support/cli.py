"""Running `nurture` as a user would: a child process with only the settings the test names."""

from __future__ import annotations

import asyncio
import os
import sys


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any Nurture or bot-identity setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NURTURE_", "MicrosoftApp"))}
    env.update(values)
    return env


async def nurture(database_url: str, *args: str, wait_seconds: float = 120, **env: str) -> tuple[int, str, str]:
    """`python -m bot ARGS` against `database_url`; returns (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=clean_env(NURTURE_DATABASE_URL=database_url, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), wait_seconds)
    return process.returncode or 0, out.decode(), err.decode()
