"""botbuilder's CloudAdapter wired to Nurture's settings, with the outbound service-URL guard.

Inbound tokens are validated by `bot.security.tokens` before an activity reaches the adapter; the adapter only gets
an already-authenticated `AuthenticateRequestResult`. Outbound, every connector the SDK creates (replies, proactive
sends, create-conversation) goes through `GuardedConnectorFactory`, which refuses hosts not on the allow-list, and
every request such a connector makes passes `TokenDestinationGuard` before the bot's token is attached to it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import CallerIdConstants
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from msrest.pipeline import AsyncHTTPPolicy, AsyncPipeline
from requests import PreparedRequest, RequestException
from urllib3.util.retry import Retry

from bot.config import Settings
from bot.policies import service_url_policy
from bot.security.service_urls import ServiceUrlPolicy

log = logging.getLogger(__name__)

CredentialsFactory = ServiceClientCredentialsFactory  # what create_app accepts to replace msal (tests, custom clouds)


class ServiceUrlRefused(PermissionError):
    """The SDK was about to send the bot's token to a host that is not allow-listed."""


@dataclass(frozen=True)
class BotIdentity:
    """The configuration object botbuilder reads (`APP_ID`, `APP_PASSWORD`, `APP_TYPE`, `APP_TENANTID`)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str

    @classmethod
    def from_settings(cls, settings: Settings) -> BotIdentity:
        return cls(settings.app_id, settings.app_password, settings.app_type.value, settings.app_tenant_id)


ConnectorCache = dict[tuple[str, str | None], ConnectorClient]


class TokenDestinationGuard(AsyncHTTPPolicy):
    """First in a connector client's pipeline, before the credentials policy signs the session with the bot's token:
    refuses a request whose URL `requests` would send to a host off the allow-list."""

    def __init__(self, policy: ServiceUrlPolicy) -> None:
        super().__init__()
        self._policy = policy

    async def send(self, request: Any, **kwargs: Any) -> Any:
        refusal = requests_destination_refusal(self._policy, request.http_request.url)
        if refusal:
            log.warning("refused to send the bot's token: %s", refusal)
            raise ServiceUrlRefused(refusal)
        return await self.next.send(request, **kwargs)


def requests_destination_refusal(policy: ServiceUrlPolicy, url: str) -> str | None:
    """Judges `url` where requests will connect: prepared as requests prepares it (IDNA, re-quoting), then split with
    `urlparse`, as its HTTPAdapter does to pick the connection."""
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parts = urlparse(prepared.url or "")
        port = parts.port
    except (RequestException, ValueError):
        return "serviceUrl is not a URL requests can send to"
    return policy.endpoint_refusal(parts.scheme, parts.hostname, port)


def guard_connector(client: ConnectorClient, policy: ServiceUrlPolicy) -> None:
    """Puts TokenDestinationGuard in front of the SDK's policies, and follows no redirect: a redirect would take the
    request to a host that was never checked.

    Redirects stay "allowed" with a limit of zero: requests then refuses the first one (TooManyRedirects, which msrest
    reports like any failed request) before sending anything. Turning them off instead breaks on a 301 or 302 to a
    POST: msrest's redirect patch hands requests a list where it expects an iterator (a TypeError, not an answer)."""
    pipeline = client.config.pipeline  # msrest has no public way to add a policy to a client it has built
    client.config.pipeline = AsyncPipeline([TokenDestinationGuard(policy), *pipeline._impl_policies], pipeline._sender)
    client.config.redirect_policy.max_redirects = 0


class GuardedConnectorFactory(ConnectorFactory):
    """Refuses hosts off the allow-list; configures and reuses one connector client per service URL.

    - Each client checks every request's URL again where the token is attached (`guard_connector`).
    - Every call is bounded by `timeout_seconds`. msrest's default is 100 s — longer than an outbox lease, so a hung
      send could be claimed again by another worker and sent twice; with a shorter timeout it ends as `unknown`.
    - msrest installs a urllib3 retry policy (3 tries on 5xx for PUT and DELETE, on connection errors for all):
      retries hidden below us would break Microsoft's status-code rules and the outbox's accounting, so it is off.
    - botbuilder builds a new client per turn; each builds that retry policy with a 500 x 999 list scan and a new
      HTTP session. Reusing the client keeps connections alive and spares every send that work.
    """

    def __init__(
        self, inner: ConnectorFactory, policy: ServiceUrlPolicy, timeout_seconds: float, cache: ConnectorCache
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._timeout = timeout_seconds
        self._cache = cache

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        refusal = self._policy.refusal(service_url)
        if refusal:
            log.warning("refused to create a connector: %s", refusal)
            raise ServiceUrlRefused(refusal)
        client = self._cache.get((service_url, audience))
        if client is None:
            client = await self._inner.create(service_url, audience)
            client.config.connection.timeout = self._timeout
            _no_hidden_retries(client.config.retry_policy.policy)
            guard_connector(client, self._policy)
            self._cache[(service_url, audience)] = client
        return client


def _no_hidden_retries(retry: Retry) -> None:
    """Changed in place: the client's HTTP session may be built already, and its adapters hold this very object (a
    new Retry given to the client's configuration never reached them: a refused connection was tried 3 times)."""
    retry.total = retry.connect = retry.read = retry.redirect = retry.status = 0
    retry.raise_on_status = False


class NurtureAuthentication(BotFrameworkAuthentication):
    """botbuilder's configuration-based authentication for outbound calls; inbound is done before the adapter."""

    def __init__(
        self,
        settings: Settings,
        credentials_factory: ServiceClientCredentialsFactory | None = None,
    ) -> None:
        self._inner = ConfigurationBotFrameworkAuthentication(
            BotIdentity.from_settings(settings), credentials_factory=credentials_factory
        )
        self._policy = service_url_policy(settings)
        self._dev_mode = settings.dev_mode
        self._send_timeout = settings.send_timeout_seconds
        self._clients: ConnectorCache = {}
        self._token_clients: dict[str, UserTokenClient] = {}
        self._outbound: Any = None  # the AppCredentials proactive calls use (bot.teams.bot_connector)

    async def authenticate_request(self, activity: Any, auth_header: str) -> AuthenticateRequestResult:
        raise PermissionError("inbound activities are authenticated by bot.security.tokens, not by the SDK")

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise PermissionError("streaming connections are not supported")

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        raise PermissionError("skill callbacks are not supported")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        inner = self._inner.create_connector_factory(claims_identity)
        return GuardedConnectorFactory(inner, self._policy, self._send_timeout, self._clients)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        """botbuilder asks for one on every turn, proactive ones included; Nurture never uses user tokens (no SSO),
        so one client per app id is built and reused (each costs a fresh HTTP session and retry policy)."""
        key = str(claims_identity.claims.get(AuthenticationConstants.AUDIENCE_CLAIM) or "") if claims_identity else ""
        client = self._token_clients.get(key)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    async def outbound_token(self, app_id: str) -> str | None:
        """A Bot Connector token from the credentials botbuilder is configured with (msal client credentials, or what
        a test injects) — what continue_conversation would attach; None when unauthenticated (dev mode, no app id).
        msal blocks while it refreshes, so the call runs in a thread."""
        if self._outbound is None:
            identity = ClaimsIdentity(
                {AuthenticationConstants.AUDIENCE_CLAIM: app_id, AuthenticationConstants.APP_ID_CLAIM: app_id}, True
            )
            # botbuilder hands credentials out only inside a connector client; the URL is not called
            client = await self._inner.create_connector_factory(identity).create("https://localhost/", None)
            self._outbound = client.config.credentials
        credentials = self._outbound
        if not getattr(credentials, "microsoft_app_id", None):
            return None
        token: str = await asyncio.to_thread(credentials.get_access_token)
        return token

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    def authenticated_result(self, claims: dict[str, Any]) -> AuthenticateRequestResult:
        """The result botbuilder would have built for a token we validated (or, in dev mode, for no token)."""
        if self._dev_mode:
            identity = ClaimsIdentity({}, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE)
            caller_id = None
        else:
            identity = ClaimsIdentity(claims, True)
            caller_id = CallerIdConstants.public_azure_channel
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = self.get_originating_audience()
        result.caller_id = caller_id
        result.connector_factory = self.create_connector_factory(identity)
        return result


def build_adapter(
    settings: Settings, credentials_factory: ServiceClientCredentialsFactory | None = None
) -> tuple[CloudAdapter, NurtureAuthentication]:
    authentication = NurtureAuthentication(settings, credentials_factory)
    # no on_turn_error: errors propagate to the web layer, which answers with a status and releases the activity claim
    return CloudAdapter(authentication), authentication
