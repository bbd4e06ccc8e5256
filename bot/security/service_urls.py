"""Where the bot may send its outbound token.

botbuilder sends the bot's access token to whatever `serviceUrl` an activity names. Only hosts on this list are
ever called; in dev mode any loopback host is added so the Agents Playground on localhost works.

URL parsers disagree about odd URLs: `https://127.0.0.1:4000\\@smba.trafficmanager.net/` is smba.trafficmanager.net to
`urlsplit` but 127.0.0.1 to `requests`. So the check is done twice:

- `refusal(url)` accepts only a plain `https://host[:443]/path`, a shape every parser reads the same way;
- `endpoint_refusal(scheme, host, port)` judges what an HTTP client actually parsed, where the token is attached
  (bot.teams.adapter for botbuilder's replies, bot.teams.bot_connector for Nurture's own sends).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_HOST_LENGTH = 253

_LABEL = re.compile(r"[a-z0-9-]{1,63}")
# WHATWG URL parsers read a host whose last label is a number (decimal, or 0x hex) as an IPv4 address
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]{1,5}")
_PATH = re.compile(r"(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2})*")


class UnsafeServiceUrl(ValueError):
    """The service URL is not one the bot may call; the message is the reason."""


@dataclass(frozen=True)
class Endpoint:
    """Where a plain URL connects: lower-case scheme and host (IPv6 without brackets); port None = the default."""

    scheme: str
    host: str
    port: int | None


def plain_endpoint(url: str) -> Endpoint:
    """The endpoint of `https://host[:port][/path]`; UnsafeServiceUrl naming anything else the URL holds."""
    _check_characters(url)
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        raise UnsafeServiceUrl("serviceUrl is not an http(s) URL")
    authority, _, path = rest.partition("/")
    if not _PATH.fullmatch(path):
        raise UnsafeServiceUrl("serviceUrl path may only hold letters, digits, '-._~/' and %XX escapes")
    host, port = _split_authority(authority)
    return Endpoint(scheme.lower(), canonical_host(host), port)


def _check_characters(url: str) -> None:
    if not url.isascii():
        raise UnsafeServiceUrl("serviceUrl must be ASCII (no international or look-alike characters)")
    if any(c <= " " or c == "\x7f" for c in url):
        raise UnsafeServiceUrl("serviceUrl contains white space or control characters")
    if "\\" in url:
        raise UnsafeServiceUrl("serviceUrl contains a backslash")
    if "?" in url or "#" in url:
        raise UnsafeServiceUrl("serviceUrl must not have a query or a fragment")


def _split_authority(authority: str) -> tuple[str, int | None]:
    if "@" in authority:
        raise UnsafeServiceUrl("serviceUrl must not carry user information (@)")
    if "%" in authority:
        raise UnsafeServiceUrl("serviceUrl host must not be percent-encoded")
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise UnsafeServiceUrl("serviceUrl has a malformed IPv6 address")
        host, port_text = f"[{inside}]", after[1:] if after else None
    else:
        host, colon, port_text_or_empty = authority.partition(":")
        port_text = port_text_or_empty if colon else None
    if port_text is None:
        return host, None
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise UnsafeServiceUrl("serviceUrl port must be a number from 1 to 65535")
    return host, int(port_text)


def canonical_host(host: str) -> str:
    """`host` lower-cased (IPv6 compressed, without brackets) if it is a DNS name or an IP address written plainly;
    UnsafeServiceUrl otherwise."""
    name = host.lower()
    if name.startswith("[") and name.endswith("]"):
        return _ipv6(name[1:-1])
    if ":" in name:  # HTTP clients hand an IPv6 host over without its brackets
        return _ipv6(name)
    labels = name.split(".")
    if not name or len(name) > MAX_HOST_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeServiceUrl("serviceUrl host must be DNS labels (a-z, 0-9, '-') joined by single dots")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        _check_ipv4(name)
    return name


def _ipv6(name: str) -> str:
    try:
        address = ipaddress.IPv6Address(name)
    except ValueError:
        raise UnsafeServiceUrl("serviceUrl has a malformed IPv6 address") from None
    if address.ipv4_mapped is not None:  # parsers print these differently (::ffff:127.0.0.1 or ::ffff:7f00:1)
        raise UnsafeServiceUrl("serviceUrl must not use an IPv4-mapped IPv6 address: write the IPv4 address")
    return address.compressed


def _check_ipv4(name: str) -> None:
    try:
        plain = str(ipaddress.IPv4Address(name)) == name
    except ValueError:
        plain = False
    if not plain:  # 2130706433, 0x7f000001, 127.1 and 0177.0.0.1 all mean 127.0.0.1 to some parser
        raise UnsafeServiceUrl("serviceUrl host that is a number must be a dotted-quad IPv4 address")


def is_loopback(host: str) -> bool:
    """`host` as canonical_host returns it."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceUrlPolicy:
    """Exact hosts and `*.suffix` wildcards; plain http or another port than 443 only to loopback hosts."""

    hosts: frozenset[str]
    suffixes: tuple[str, ...]
    allow_loopback: bool

    @classmethod
    def from_setting(cls, values: Iterable[str], *, dev_mode: bool) -> ServiceUrlPolicy:
        exact: set[str] = set()
        suffixes: list[str] = []
        for raw in values:
            value = raw.strip().lower()
            if not value:
                continue
            if value.startswith("*."):
                suffixes.append(value[1:])  # keeps the leading dot: "*.example.com" -> ".example.com"
            else:
                exact.add(value.removeprefix("[").removesuffix("]"))
        return cls(frozenset(exact), tuple(suffixes), allow_loopback=dev_mode)

    def refusal(self, service_url: str | None) -> str | None:
        """None when the bot may call this service URL, else the reason it may not."""
        if not service_url:
            return "activity carries no serviceUrl"
        try:
            endpoint = plain_endpoint(service_url)
        except UnsafeServiceUrl as exc:
            return str(exc)
        return self.endpoint_refusal(endpoint.scheme, endpoint.host, endpoint.port)

    def endpoint_refusal(self, scheme: str, host: str | None, port: int | None) -> str | None:
        """None when the token may go to this scheme, host and port, as an HTTP client parsed them (port None or
        the scheme's default port both mean the default)."""
        scheme = scheme.lower()
        if scheme not in ("https", "http"):
            return "serviceUrl is not an http(s) URL"
        try:
            name = canonical_host(host or "")
        except UnsafeServiceUrl as exc:
            return str(exc)
        loopback = is_loopback(name)
        if not self._listed(name) and not (self.allow_loopback and loopback):
            return f"serviceUrl host {name} is not allowed"
        if not (scheme == "https" and port in (None, 443)) and not loopback:
            return "serviceUrl must use https on port 443"
        return None

    def _listed(self, host: str) -> bool:
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)
