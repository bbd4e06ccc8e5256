"""Signed activities whose serviceUrl hides another host are refused before any turn runs: 403 with a reason, nothing
stored, and no connection reaches the host hidden in the URL (a trap on 127.0.0.1, which is not listed here)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness
from tests.support.activities import install, message
from tests.support.trap import Trap

# each is formatted with the trap's port
NASTY = [
    "https://127.0.0.1:{port}\\@smba.trafficmanager.net/",
    "https://127.0.0.1:{port}\\@smba.trafficmanager.net/amer/",
    "http://127.0.0.1:{port}\\@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}\\\\@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}%5C@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}\t\\@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}\uff3c@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}#@smba.trafficmanager.net/amer/",
    "https://127.0.0.1:{port}?@smba.trafficmanager.net/amer/",
    "https://smba.trafficmanager.net@127.0.0.1:{port}/amer/",
    "https://smba.trafficmanager.net:443@127.0.0.1:{port}/amer/",
    "http://[::ffff:127.0.0.1]:{port}/amer/",
    "http://2130706433:{port}/amer/",
    "https://smba.trafficmanager.net./amer/",
    "https://SMBA.trafficmanager.net:{port}/amer/",
]


@pytest.fixture
def harness_settings() -> dict[str, Any]:
    """The app as deployed: only Teams' host is listed (the harness's usual list also names 127.0.0.1)."""
    return {"service_url_hosts": ["smba.trafficmanager.net"]}


@pytest.mark.parametrize("pattern", NASTY)
async def test_a_service_url_hiding_another_host_is_refused(harness: Harness, trap: Trap, pattern: str) -> None:
    service_url = pattern.format(port=trap.port)
    for activity in (install(service_url=service_url), message("help", service_url=service_url)):
        response = await harness.post(activity)  # signed, with the same serviceurl claim
        body = await response.json()
        assert response.status == 403, body
        assert body["error"].startswith("serviceUrl")
    assert sum((await harness.rows()).values()) == 0
    trap.assert_untouched()
