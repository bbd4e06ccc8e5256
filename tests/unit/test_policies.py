"""Tenant and service-URL allow-lists."""

from __future__ import annotations

import pytest

from bot.security.service_urls import ServiceUrlPolicy
from bot.security.tenants import TenantPolicy


def test_tenant_list_allows_listed_only() -> None:
    policy = TenantPolicy.from_setting(["T1", " t2 "], dev_mode=False)
    assert policy.refusal("t1") is None and policy.refusal("T2") is None
    assert policy.refusal("t3") == "tenant is not allowed to use this bot"
    assert policy.refusal(None) == "activity carries no tenant id"


def test_tenant_wildcard_and_empty_list() -> None:
    assert TenantPolicy.from_setting(["*"], dev_mode=False).refusal("anything") is None
    assert TenantPolicy.from_setting([], dev_mode=False).refusal("anything") is not None
    assert TenantPolicy.from_setting([], dev_mode=True).refusal("anything") is None
    # an explicit list still applies in dev mode
    assert TenantPolicy.from_setting(["t1"], dev_mode=True).refusal("t2") is not None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://smba.trafficmanager.net/emea/", True),
        ("https://SMBA.trafficmanager.net/amer/", True),
        ("http://smba.trafficmanager.net/emea/", False),  # token over plain http
        ("https://smba.trafficmanager.net.evil.example/", False),
        ("https://evil.example/smba.trafficmanager.net/", False),
        ("https://a.teams.example.org/", True),  # *.example.org wildcard
        ("https://example.org/", False),  # the wildcard needs a sub-domain
        ("http://127.0.0.1:56150/", False),  # loopback only in dev mode
        ("ftp://smba.trafficmanager.net/", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_service_url_policy(url: str, allowed: bool) -> None:
    policy = ServiceUrlPolicy.from_setting(["smba.trafficmanager.net", "*.example.org"], dev_mode=False)
    assert (policy.refusal(url) is None) is allowed


def test_dev_mode_adds_loopback_hosts() -> None:
    policy = ServiceUrlPolicy.from_setting(["smba.trafficmanager.net"], dev_mode=True)
    assert policy.refusal("http://localhost:56150/") is None
    assert policy.refusal("http://127.0.0.1:3000/") is None
    assert policy.refusal("http://[::1]:3000/") is None
    assert policy.refusal("http://10.0.0.5/") is not None
