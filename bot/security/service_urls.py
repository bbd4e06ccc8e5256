"""Where the bot may send its outbound token.

botbuilder sends the bot's access token to whatever `serviceUrl` an activity names. Only hosts on this list are
ever called; in dev mode any loopback host is added so the Agents Playground on localhost works.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ServiceUrlPolicy:
    """Exact hosts and `*.suffix` wildcards; plain http only to loopback hosts."""

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
                exact.add(value)
        return cls(frozenset(exact), tuple(suffixes), allow_loopback=dev_mode)

    def refusal(self, service_url: str | None) -> str | None:
        """None when the bot may call this service URL, else the reason it may not."""
        if not service_url:
            return "activity carries no serviceUrl"
        try:
            parts = urlsplit(service_url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return "serviceUrl is not a valid URL"
        if parts.scheme not in ("https", "http") or not host:
            return "serviceUrl is not an http(s) URL"
        listed = host in self.hosts or any(host.endswith(s) for s in self.suffixes)
        loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
        if not listed and not (self.allow_loopback and loopback):
            return f"serviceUrl host {host} is not allowed"
        if parts.scheme == "http" and not loopback:
            return "serviceUrl must use https"
        return None
