"""Graph app tokens through real msal (client credentials) against a local HTTPS authority with a test certificate.

msal refuses plain-http authorities, so the stand-in serves TLS with a certificate made here for 127.0.0.1. What
is checked: one token request per tenant however many installs ask (msal's cache is reused), each tenant asked at
its own authority, and a refusal (no admin consent) becomes a clear GraphAuthError.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.graph_install import GraphAuthError, MsalGraphTokens

TENANT_A = "11111111-1111-1111-1111-111111111111"
TENANT_B = "22222222-2222-2222-2222-222222222222"
REFUSING = "33333333-3333-3333-3333-333333333333"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "authority.pem", folder / "authority.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Authority:
    base: str = ""
    token_requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        root = f"{self.base}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{root}/v2.0",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.token_requests.append((tenant, form))
        if tenant == REFUSING:
            error = {"error": "invalid_client", "error_description": "AADSTS65001: admin consent is missing"}
            return web.json_response(error, status=401)
        count = len(self.token_requests)
        return web.json_response(
            {"access_token": f"token-{tenant}-{count}", "token_type": "Bearer", "expires_in": 3600}
        )


@pytest.fixture
async def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Authority, Path]]:
    # requests lets these variables override a session's own `verify` (the CA file msal is given)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = Authority()
    app = web.Application()
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", state.configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", state.token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"https://127.0.0.1:{port}"
    yield state, cert
    await runner.cleanup()


async def test_tokens_per_tenant_are_fetched_once_and_reused(authority: tuple[Authority, Path]) -> None:
    state, cert = authority
    tokens = MsalGraphTokens(
        "app-client-id", "app-secret", login_url=state.base, verify=str(cert), instance_discovery=False
    )
    first = await tokens(TENANT_A)
    again = await asyncio.gather(*(tokens(TENANT_A) for _ in range(5)))  # many installs at once
    other = await tokens(TENANT_B)

    assert set(again) == {first} and first.startswith(f"token-{TENANT_A}-")
    assert other.startswith(f"token-{TENANT_B}-")
    assert [tenant for tenant, _ in state.token_requests] == [TENANT_A, TENANT_B]  # once each: the cache answers
    _, form = state.token_requests[0]
    assert form["grant_type"] == "client_credentials" and form["scope"] == "https://graph.microsoft.com/.default"
    assert form["client_id"] == "app-client-id"


async def test_a_refused_token_is_a_clear_error(authority: tuple[Authority, Path]) -> None:
    state, cert = authority
    tokens = MsalGraphTokens(
        "app-client-id", "app-secret", login_url=state.base, verify=str(cert), instance_discovery=False
    )
    with pytest.raises(GraphAuthError, match="invalid_client.*admin consent"):
        await tokens(REFUSING)
