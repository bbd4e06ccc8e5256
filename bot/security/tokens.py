"""Validation of the Bot Connector's bearer tokens on inbound activities.

Why not botbuilder's own validator: on 4.17.1 it fetches keys with blocking `requests.get` and no timeout (the event
loop freezes), answers many bad tokens with 500, and accepts keys that carry no endorsements at all. This module
does the checks Microsoft documents for "Authenticate requests from the Bot Connector service": Bearer scheme,
RS256, issuer from the OpenID metadata, audience = our app id, lifetime with 5 minutes of clock skew, a known
signing key whose endorsements name the activity's channel, and the `serviceurl` claim equal to the activity's.
Keys are fetched asynchronously with a timeout, once at a time, and refreshed daily or on an unknown key id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 300  # Microsoft's documented leeway for Bot Connector tokens
ALLOWED_ALGORITHMS = ("RS256",)


class AuthFailure(Exception):
    """An inbound request that must be refused; `status` is 401 or 403 and `reason` is safe to return."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SigningKeysUnavailable(AuthFailure):
    """The key metadata could not be fetched and no earlier keys are known: fail closed (503, retryable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, reason)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Any
    endorsements: frozenset[str]


@dataclass
class KeyStoreStatus:
    keys: int = 0
    issuer: str | None = None
    fetched_at: float | None = None
    last_error: str | None = None


@dataclass
class OpenIdKeyStore:
    """Signing keys from an OpenID metadata document (`NURTURE_OPENID_METADATA_URL`), fetched off the request path."""

    metadata_url: str
    timeout_seconds: float = 5.0
    refresh_after_seconds: float = 24 * 3600
    unknown_kid_refetch_seconds: float = 300
    cold_retry_seconds: float = 10  # after a failed fetch, how soon another may be tried
    clock: Callable[[], float] = time.monotonic
    status: KeyStoreStatus = field(default_factory=KeyStoreStatus)
    _keys: dict[str, SigningKey] = field(default_factory=dict)
    _last_attempt: float | None = None
    _inflight: asyncio.Task[None] | None = None

    @property
    def issuer(self) -> str | None:
        return self.status.issuer

    def start_background_refresh(self) -> None:
        """Warm the cache at start-up without delaying it."""
        self._refresh_once()

    async def close(self) -> None:
        if self._inflight and not self._inflight.done():
            self._inflight.cancel()
            try:
                await self._inflight
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down; the error was logged
                log.debug("key refresh cancelled at shutdown")

    async def get(self, kid: str) -> SigningKey | None:
        """The key for `kid`, or None if unknown. Raises SigningKeysUnavailable when no keys were ever fetched."""
        now = self.clock()
        if not self._keys:
            if self._fetching() or self._may_attempt(now, self.cold_retry_seconds):
                await self._await_refresh()  # nothing cached: this request has to wait (bounded by the timeout)
        elif self._stale(now) and self._may_attempt(now, self.cold_retry_seconds):
            self._refresh_once()  # serve cached keys, refresh in the background
        key = self._keys.get(kid)
        if key is None and self._keys and self._may_attempt(now, self.unknown_kid_refetch_seconds):
            await self._await_refresh()  # keys may have rotated
            key = self._keys.get(kid)
        if key is None and not self._keys:
            raise SigningKeysUnavailable(f"signing keys unavailable: {self.status.last_error or 'not fetched yet'}")
        return key

    def _stale(self, now: float) -> bool:
        return self.status.fetched_at is None or now - self.status.fetched_at > self.refresh_after_seconds

    def _fetching(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def _may_attempt(self, now: float, interval: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt > interval

    async def _await_refresh(self) -> None:
        # shield: one caller timing out or being cancelled must not cancel the fetch the others wait on
        await asyncio.shield(self._refresh_once())

    def _refresh_once(self) -> asyncio.Task[None]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.get_running_loop().create_task(self._refresh())
        return self._inflight

    async def _refresh(self) -> None:
        self._last_attempt = self.clock()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with aiohttp.ClientSession() as session:
                    metadata = await _get_json(session, self.metadata_url)
                    jwks = await _get_json(session, str(metadata["jwks_uri"]))
            keys = _parse_jwks(jwks)
        except TimeoutError:
            self.status.last_error = f"timed out after {self.timeout_seconds:g}s fetching {self.metadata_url}"
            log.warning("signing key refresh failed: %s", self.status.last_error)
            return
        except (aiohttp.ClientError, KeyError, ValueError, TypeError) as exc:
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("signing key refresh failed: %s", self.status.last_error)
            return
        if not keys:
            self.status.last_error = "the JWKS document holds no usable RSA keys"
            log.warning("signing key refresh failed: %s", self.status.last_error)
            return
        self._keys = keys
        self.status = KeyStoreStatus(
            keys=len(keys), issuer=str(metadata.get("issuer") or ""), fetched_at=self.clock(), last_error=None
        )
        log.info("signing keys refreshed: %d keys from %s", len(keys), self.metadata_url)


async def _get_json(session: aiohttp.ClientSession, url: str) -> Mapping[str, Any]:
    async with session.get(url) as response:
        response.raise_for_status()
        data = await response.json(content_type=None)
    if not isinstance(data, Mapping):
        raise ValueError(f"{url} did not return a JSON object")
    return data


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    for jwk in jwks.get("keys", []):
        kid = jwk.get("kid")
        if not kid or jwk.get("kty") != "RSA":
            continue
        try:
            public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("skipping unusable signing key %s: %s", kid, exc)
            continue
        keys[kid] = SigningKey(kid, public_key, frozenset(jwk.get("endorsements") or ()))
    return keys


@dataclass(frozen=True)
class BotConnectorTokenValidator:
    """Checks one `Authorization` header against one activity; raises AuthFailure with the reason."""

    keys: OpenIdKeyStore
    app_id: str
    clock_skew_seconds: int = CLOCK_SKEW_SECONDS

    async def validate(self, authorization: str | None, *, channel_id: str, service_url: str) -> dict[str, Any]:
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:  # not only DecodeError: a key id that is not a string is refused here too
            raise AuthFailure(401, "malformed token") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise AuthFailure(401, f"token algorithm {algorithm!r} is not allowed")
        kid = header.get("kid")
        if not kid or not isinstance(kid, str):
            raise AuthFailure(401, "token has no key id")
        key = await self.keys.get(kid)
        if key is None:
            raise AuthFailure(401, "token signed with an unknown key")
        if channel_id not in key.endorsements:
            raise AuthFailure(403, f"signing key is not endorsed for channel {channel_id!r}")
        if not self.keys.issuer:
            raise SigningKeysUnavailable("OpenID metadata names no issuer")
        claims = _decode(token, key, audience=self.app_id, issuer=self.keys.issuer, leeway=self.clock_skew_seconds)
        claimed_url = claims.get("serviceurl")
        if not isinstance(claimed_url, str) or not claimed_url:
            raise AuthFailure(401, "token has no serviceurl claim")
        if _normalize_url(claimed_url) != _normalize_url(service_url):
            raise AuthFailure(401, "token serviceurl does not match the activity")
        return claims


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthFailure(401, "missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure(401, "Authorization must use the Bearer scheme")
    return token.strip()


def _decode(token: str, key: SigningKey, *, audience: str, issuer: str, leeway: int) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthFailure(401, "token expired") from None
    except jwt.ImmatureSignatureError:
        raise AuthFailure(401, "token not yet valid") from None
    except jwt.InvalidAudienceError:
        raise AuthFailure(401, "token audience is not this bot") from None
    except jwt.InvalidIssuerError:
        raise AuthFailure(401, "token issuer is not trusted") from None
    except jwt.InvalidSignatureError:
        raise AuthFailure(401, "token signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthFailure(401, f"token lacks the {exc.claim} claim") from None
    except jwt.InvalidTokenError:
        raise AuthFailure(401, "token is invalid") from None
    return claims


def _normalize_url(url: str) -> str:
    return url.strip().rstrip("/").lower()
