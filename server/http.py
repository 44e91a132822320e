"""Streamable HTTP: bearer-token auth, Host/Origin checks and a request-size limit around the SDK's app."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from mcp.server.transport_security import TransportSecuritySettings

from .task_protocol import IDENTITY

if TYPE_CHECKING:
    from .settings import HttpSettings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_settings(host: str, port: int, extra_hosts: list[str], extra_origins: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection always on: loopback names when bound to loopback, else the bind address."""
    if is_loopback(host):
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    else:
        hosts = [f"{host}:{port}"]
    hosts += extra_hosts
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts] + extra_origins
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerAuth:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>`, one of
    the configured tokens (space-separated). The request is marked with a digest of the token,
    the caller's identity (its tasks are its own)."""

    def __init__(self, app: Any, tokens: str):
        self.app = app
        self._expected = [t.encode() for t in tokens.split()]
        if not self._expected:
            raise ValueError("the HTTP token is empty")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            scheme, _, credentials = given.strip().partition(b" ")
            credentials = credentials.strip()
            # The scheme is case-insensitive (RFC 9110, section 11.1); tokens are compared in constant time, all of them.
            matches = [hmac.compare_digest(credentials, token) for token in self._expected]
            if scheme.lower() != b"bearer" or not any(matches):
                await _unauthorized(send)
                return
            scope[IDENTITY] = "token:" + hashlib.sha256(credentials).hexdigest()[:16]
        await self.app(scope, receive, send)


async def _unauthorized(send: Any) -> None:
    body = json.dumps({"error": "unauthorized", "error_description": "missing or wrong bearer token"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="lego-edit-mcp"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def http_app(server: Any, http: HttpSettings) -> Any:
    """The ASGI app; without a token only on a loopback address."""
    token = http.token.get_secret_value() if http.token is not None else None
    if token is None and not is_loopback(http.host):
        raise ValueError(f"refusing to serve without authentication on non-loopback address {http.host}")
    app = server.streamable_http_app(
        max_request_body_size=http.max_request_bytes,
        transport_security=security_settings(http.host, http.port, list(http.allowed_hosts), list(http.allowed_origins)),
        host=http.host,
    )
    return BearerAuth(app, token) if token is not None else app
