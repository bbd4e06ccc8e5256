"""Which interface `nurture serve` listens on when --host is not given."""

from __future__ import annotations

import pytest

from bot.cli.server import listen_host


@pytest.mark.parametrize(
    ("requested", "dev_mode", "expected"),
    [
        (None, True, "127.0.0.1"),  # dev mode checks no tokens: this machine only
        (None, False, "0.0.0.0"),  # a container or App Service must be reachable
        ("", True, "127.0.0.1"),
        ("0.0.0.0", True, "0.0.0.0"),  # asked for explicitly
        ("::1", False, "::1"),
        ("10.1.2.3", False, "10.1.2.3"),
    ],
)
def test_listen_host(requested: str | None, dev_mode: bool, expected: str) -> None:
    assert listen_host(requested, dev_mode=dev_mode) == expected
