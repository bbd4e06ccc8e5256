"""The service-URL allow-list: only plain URLs pass the first check, and the check where the token is attached judges
the host each HTTP client (requests for botbuilder's replies, aiohttp/yarl for Nurture's sends) really connects to."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests import PreparedRequest
from urllib3.util import parse_url
from yarl import URL

from bot.security.service_urls import ServiceUrlPolicy, plain_endpoint
from bot.teams.adapter import requests_destination_refusal

POLICY = ServiceUrlPolicy.from_setting(["smba.trafficmanager.net", "*.example.com", "127.0.0.1"], dev_mode=False)
DEV = ServiceUrlPolicy.from_setting(["smba.trafficmanager.net"], dev_mode=True)
TEAMS_ONLY = ServiceUrlPolicy.from_setting(["smba.trafficmanager.net"], dev_mode=False)


def _hosts_as_parsers_read(url: str) -> set[str | None]:
    """The host urlsplit, yarl (aiohttp), requests and urllib3 each read from `url`."""
    prepared = PreparedRequest()
    prepared.prepare_url(url, None)
    urllib3_host = parse_url(url).host
    return {
        urlsplit(url).hostname,
        URL(url).raw_host,
        urlsplit(prepared.url or "").hostname,
        urllib3_host.strip("[]") if urllib3_host else None,
    }


# case: (service URL, None when allowed or a piece of the reason given)
FIRST_CHECK: dict[str, tuple[str, str | None]] = {
    "Teams' own": ("https://smba.trafficmanager.net/amer/", None),
    "no path": ("https://smba.trafficmanager.net", None),
    "explicit port 443": ("https://smba.trafficmanager.net:443/emea/", None),
    "mixed-case scheme and host": ("HTTPS://SMBA.TrafficManager.NET/amer/", None),
    "escaped path": ("https://smba.trafficmanager.net/a%2Fb/~x_y-z./", None),
    "wildcard sub-domain": ("https://teams.a.example.com/", None),
    "listed loopback, http, other port": ("http://127.0.0.1:5000/", None),
    "backslash before @": ("https://127.0.0.1:4000\\@smba.trafficmanager.net/", "backslash"),
    "backslash before @, /amer/": ("https://127.0.0.1:4000\\@smba.trafficmanager.net/amer/", "backslash"),
    "backslash as slash": ("https://smba.trafficmanager.net\\evil.net/", "backslash"),
    "user info": ("https://smba.trafficmanager.net@evil.net/", "user information"),
    "user info before the listed host": ("https://evil.net:443@smba.trafficmanager.net/", "user information"),
    "@ in the path": ("https://smba.trafficmanager.net/@evil.net/", "path may only hold"),
    "fragment before @": ("https://evil.net#@smba.trafficmanager.net/", "fragment"),
    "query before @": ("https://evil.net?@smba.trafficmanager.net/", "query"),
    "query after the path": ("https://smba.trafficmanager.net/amer/?x=1", "query"),
    "empty fragment": ("https://smba.trafficmanager.net/amer/#", "fragment"),
    "percent-encoded dot": ("https://smba%2etrafficmanager.net/", "percent-encoded"),
    "percent-encoded at": ("https://evil.net%40smba.trafficmanager.net/", "percent-encoded"),
    "percent-encoded slash": ("https://evil.net%2fsmba.trafficmanager.net/", "percent-encoded"),
    "percent-encoded letter": ("https://%73mba.trafficmanager.net/", "percent-encoded"),
    "IPv6 loopback outside dev mode": ("https://[::1]/", "not allowed"),
    "IPv4-mapped loopback": ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    "IPv4-mapped loopback, hex": ("https://[::ffff:7f00:1]/", "IPv4-mapped"),
    "IPv6 with a zone": ("https://[fe80::1%25eth0]/", "percent-encoded"),
    "unclosed IPv6": ("https://[::1/", "IPv6"),
    "IPv4 in brackets": ("https://[127.0.0.1]/", "IPv6"),
    "text after the brackets": ("https://[::1]x/", "IPv6"),
    "trailing dot": ("https://smba.trafficmanager.net./", "DNS labels"),
    "empty label": ("https://smba..trafficmanager.net/", "DNS labels"),
    "leading dot": ("https://.smba.trafficmanager.net/", "DNS labels"),
    "underscore": ("https://smba_x.trafficmanager.net/", "DNS labels"),
    "a host longer than DNS allows": ("https://" + "a." * 130 + "example.com/", "DNS labels"),
    "fullwidth dots": ("https://smba\uff0etrafficmanager\uff0enet/", "ASCII"),
    "ideographic full stops": ("https://smba\u3002trafficmanager\u3002net/", "ASCII"),
    "Cyrillic look-alike": ("https://smb\u0430.trafficmanager.net/", "ASCII"),
    "fullwidth backslash": ("https://127.0.0.1:4000\uff3c@smba.trafficmanager.net/", "ASCII"),
    "punycode of a look-alike": ("https://xn--smb-8cd.trafficmanager.net/", "not allowed"),
    "tab in the host": ("https://smba.trafficmanager.net\t/", "white space"),
    "tab inside the host": ("https://smba.traffic\tmanager.net/", "white space"),
    "newline": ("https://evil.net\n.smba.trafficmanager.net/", "white space"),
    "carriage return": ("https://smba.trafficmanager.net/\r\nHost: evil.net", "white space"),
    "space": ("https://smba.trafficmanager.net /", "white space"),
    "leading space": (" https://smba.trafficmanager.net/", "white space"),
    "NUL": ("https://evil.net\x00.smba.trafficmanager.net/", "control"),
    "DEL": ("https://smba.trafficmanager.net\x7f/", "control"),
    "decimal IPv4": ("https://2130706433/", "dotted-quad"),
    "hexadecimal IPv4": ("https://0x7f000001/", "dotted-quad"),
    "short IPv4": ("https://127.1/", "dotted-quad"),
    "octal IPv4": ("https://0177.0.0.1/", "dotted-quad"),
    "hex last label": ("https://evil.0x7f/", "dotted-quad"),
    "missing host": ("https:///amer/", "DNS labels"),
    "only a port": ("https://:443/", "DNS labels"),
    "no scheme": ("smba.trafficmanager.net/amer/", "http(s)"),
    "scheme-relative": ("//smba.trafficmanager.net/", "http(s)"),
    "one slash": ("https:/smba.trafficmanager.net/", "http(s)"),
    "ftp": ("ftp://smba.trafficmanager.net/", "http(s)"),
    "javascript": ("javascript://smba.trafficmanager.net/", "http(s)"),
    "plain http": ("http://smba.trafficmanager.net/amer/", "https on port 443"),
    "other port": ("https://smba.trafficmanager.net:8443/", "https on port 443"),
    "port 0": ("https://smba.trafficmanager.net:0/", "port must be"),
    "port above 65535": ("https://smba.trafficmanager.net:65536/", "port must be"),
    "empty port": ("https://smba.trafficmanager.net:/", "port must be"),
    "signed port": ("https://smba.trafficmanager.net:+443/", "port must be"),
    "two ports": ("https://smba.trafficmanager.net:443:4000/", "port must be"),
    "wildcard without a sub-domain": ("https://example.com/", "not allowed"),
    "look-alike of the wildcard": ("https://evil-example.com/", "not allowed"),
    "wildcard domain as a prefix": ("https://example.com.evil.net/", "not allowed"),
    "listed host as a prefix": ("https://smba.trafficmanager.net.evil.net/", "not allowed"),
    "loopback name outside dev mode": ("http://localhost:3978/", "not allowed"),
    "other loopback address, not listed": ("http://127.0.0.2:3978/", "not allowed"),
    "quote in the path": ("https://smba.trafficmanager.net/a'b/", "path may only hold"),
    "broken escape in the path": ("https://smba.trafficmanager.net/a%zz/", "path may only hold"),
    "empty": ("", "no serviceUrl"),
}


@pytest.mark.parametrize("case", list(FIRST_CHECK))
def test_only_plain_urls_to_listed_hosts_pass(case: str) -> None:
    url, reason = FIRST_CHECK[case]
    refusal = POLICY.refusal(url)
    if reason is None:
        assert refusal is None
        assert _hosts_as_parsers_read(url) == {plain_endpoint(url).host}
    else:
        assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://localhost:56150/", True),
        ("http://LocalHost:56150/", True),
        ("http://127.0.0.1:3000/", True),
        ("http://127.0.0.2:3000/", True),
        ("http://[::1]:3000/", True),
        ("https://smba.trafficmanager.net/amer/", True),
        ("http://10.0.0.5/", False),
        ("http://localhost.:3000/", False),
        ("http://2130706433:3000/", False),
        ("http://[::ffff:127.0.0.1]:3000/", False),
        ("http://127.0.0.1:3000\\@smba.trafficmanager.net/", False),
        ("http://smba.trafficmanager.net/amer/", False),  # a listed host still needs https outside loopback
    ],
)
def test_dev_mode_adds_loopback_hosts_only(url: str, allowed: bool) -> None:
    assert (DEV.refusal(url) is None) is allowed


# what HTTP clients hand over: urlparse and yarl drop IPv6 brackets, urllib3 keeps them; yarl fills the default port
WHERE_THE_TOKEN_GOES: list[tuple[str, str | None, int | None, str | None]] = [
    ("https", "smba.trafficmanager.net", None, None),
    ("https", "smba.trafficmanager.net", 443, None),
    ("HTTPS", "SMBA.trafficmanager.net", 443, None),
    ("http", "127.0.0.1", 4000, None),  # listed loopback
    ("https", "127.0.0.1", 4000, None),
    ("https", "127.0.0.2", 443, "not allowed"),
    ("https", "[::1]", None, "not allowed"),
    ("https", "::1", 443, "not allowed"),
    ("https", "::ffff:7f00:1", 443, "IPv4-mapped"),
    ("https", "[::ffff:127.0.0.1]", None, "IPv4-mapped"),
    ("https", "smba.trafficmanager.net.", None, "DNS labels"),
    ("https", "2130706433", 443, "dotted-quad"),
    ("https", "evil.net\\@smba.trafficmanager.net", None, "DNS labels"),
    ("https", "smba\uff0etrafficmanager\uff0enet", None, "DNS labels"),
    ("https", None, None, "DNS labels"),
    ("https", "", 443, "DNS labels"),
    ("http", "smba.trafficmanager.net", 80, "https on port 443"),
    ("https", "smba.trafficmanager.net", 8443, "https on port 443"),
    ("wss", "smba.trafficmanager.net", 443, "http(s)"),
]


@pytest.mark.parametrize(("scheme", "host", "port", "reason"), WHERE_THE_TOKEN_GOES)
def test_the_check_where_the_token_is_attached(scheme: str, host: str | None, port: int | None, reason: str) -> None:
    refusal = POLICY.endpoint_refusal(scheme, host, port)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://smba.trafficmanager.net/amer/v3/conversations/a%3A1/activities", None),
        ("http://127.0.0.1:4000/v3/conversations", "127.0.0.1 is not allowed"),
        ("https://127.0.0.1:4000\\@smba.trafficmanager.net/amer/v3/conversations", "127.0.0.1 is not allowed"),
        ("http://10.0.0.1\\@smba.trafficmanager.net/amer/v3/conversations", "10.0.0.1 is not allowed"),
        ("https://evil.net#@smba.trafficmanager.net/", "evil.net is not allowed"),
        ("https://smba.trafficmanager.net@evil.net/", "evil.net is not allowed"),
        ("https://smba\uff0etrafficmanager\uff0enet/", "requests can send to"),  # IDNA refuses fullwidth dots
        ("https://2130706433/", "dotted-quad"),
        ("https://[::ffff:127.0.0.1]:4000/", "IPv4-mapped"),
    ],
)
def test_requests_reading_of_a_url_that_bypassed_the_first_check(url: str, reason: str | None) -> None:
    refusal = requests_destination_refusal(TEAMS_ONLY, url)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None and reason in refusal


SCHEMES = ["https://", "http://", "HTTPS://", "https:/", ""]
HOST_PIECES = [
    "smba.trafficmanager.net",
    "a.example.com",
    "127.0.0.1",
    "evil.net",
    "localhost",
    "[::1]",
    ":4000",
    ":443",
    "@",
    "\\",
    "#",
    "?",
    ".",
    ":",
    "%2e",
    "%40",
    "\t",
    "\uff0e",
]
PATHS = ["", "/", "/amer/", "/a%2Fb/", "/#x", "/?x=1", "\\@evil.net/", "/@evil.net/"]
URLISH = st.builds(
    lambda scheme, host, path: scheme + "".join(host) + path,
    st.sampled_from(SCHEMES),
    st.lists(st.sampled_from(HOST_PIECES), min_size=1, max_size=4),
    st.sampled_from(PATHS),
)


def test_every_parser_reads_the_same_listed_host_from_an_accepted_url() -> None:
    accepted: list[str] = []

    @settings(max_examples=500, deadline=None, database=None)
    @given(URLISH)
    def check(url: str) -> None:
        for policy in (POLICY, DEV):
            if policy.refusal(url) is None:
                accepted.append(url)
                assert _hosts_as_parsers_read(url) == {plain_endpoint(url).host}
                parsed = URL(url)
                assert policy.endpoint_refusal(parsed.scheme, parsed.raw_host, parsed.port) is None

    check()
    assert len(accepted) >= 10, "the generator must also make URLs the policy accepts"
