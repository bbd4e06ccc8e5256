"""A real OpenID metadata + JWKS server in a thread, with our own RSA keys, and a token signer.

It runs in its own thread (not on the test's event loop) so that a fetch which hangs or blocks cannot stall the loop
under test, exactly like Microsoft's key endpoint being slow in production.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class RsaKey:
    kid: str
    endorsements: list[str] | None = field(default_factory=lambda: ["msteams"])
    private_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        entry: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }
        if self.endorsements is not None:
            entry["endorsements"] = self.endorsements
        return entry

    def sign(self, claims: dict[str, Any], *, kid: str | None = "same", algorithm: str = "RS256") -> str:
        headers = {} if kid is None else {"kid": self.kid if kid == "same" else kid}
        return jwt.encode(claims, self.private_key, algorithm=algorithm, headers=headers)


class KeyServer:
    """Serves /openid (metadata) and /keys (JWKS). `hang()` makes every request wait until `release()`."""

    def __init__(self, keys: list[RsaKey], issuer: str = ISSUER) -> None:
        self.keys = keys
        self.issuer = issuer
        self.requests = 0
        self._released = threading.Event()
        self._released.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests += 1
                server._released.wait(timeout=60)
                if self.path == "/openid":
                    body = {
                        "issuer": server.issuer,
                        "jwks_uri": f"{server.base_url}/keys",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == "/keys":
                    body = {"keys": [key.jwk() for key in server.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
                return

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that gave up on a hanging fetch is expected here

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.metadata_url = f"{self.base_url}/openid"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> KeyServer:
        self._thread.start()
        return self

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()


def claims(
    app_id: str, service_url: str, *, issuer: str = ISSUER, lifetime: int = 3600, **overrides: Any
) -> dict[str, Any]:
    """Claims like the Bot Connector's: iss, aud = bot app id, serviceurl, nbf/exp. None in overrides drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "aud": app_id,
        "serviceurl": service_url,
        "nbf": now - 10,
        "iat": now - 10,
        "exp": now + lifetime,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}
