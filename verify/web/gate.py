"""The front gate of `esign serve`: a pure ASGI middleware that judges a request by its request
line and headers before a single body byte is read, then counts the body as it streams.

Why outside FastAPI: by the time a route runs, FastAPI has already read (JSON) or spooled to
disk (multipart) the whole body; an unauthenticated 400 MiB body cost the server 1.3 GB that
way. Here, in order: a per-client rate limit (429), the API key of an agency route (401), the
declared Content-Length against the route's cap (413), and the streamed bytes against the same
cap (413 and the connection closed the moment the cap is passed).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from .config import Client, ServerConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A multipart form wraps the file in boundaries and part headers; the file itself is held to
# max_upload_bytes by the route.
MULTIPART_SLACK = 64 * 1024

_REVOKE = re.compile(r"^/api/v1/documents/[^/]+/revoke$")


@dataclass(frozen=True)
class Rule:
    """What a route may receive: at most ``cap`` body bytes; ``bucket`` names its rate limit
    (None: not limited); ``agency`` routes need a known API key before their body is read."""

    cap: int
    bucket: str | None
    agency: bool


class BodyTooLarge(Exception):
    """Raised into the application from ``receive`` once the body passes its cap; the gate has
    already answered 413 by then."""


class Gate:
    """Wraps the whole application (outside FastAPI's own middleware)."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self.limits: dict[str, list[RateLimitItem]] = {
            "upload": parse_many(config.upload_rate),
            "api": parse_many(config.api_rate),
        }
        # Two counters per client and limit (a moving window keeps every hit: 600 timestamps
        # per address for "600/hour", and an attacker has many addresses).
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def rule(self, method: str, path: str) -> Rule:
        c = self.config
        if method != "POST":
            return Rule(cap=0, bucket=None, agency=False)
        if path == "/verify":
            return Rule(cap=c.max_upload_bytes + MULTIPART_SLACK, bucket="upload", agency=False)
        if path == "/api/v1/verify":
            return Rule(cap=c.max_upload_bytes, bucket="upload", agency=False)
        if path == "/api/v1/sign":
            return Rule(cap=c.max_upload_bytes, bucket="api", agency=True)
        if path == "/api/v1/issue" or _REVOKE.match(path):
            return Rule(cap=c.max_json_bytes, bucket="api", agency=True)
        if path.startswith("/api/"):
            return Rule(cap=c.max_json_bytes, bucket="api", agency=False)
        return Rule(cap=0, bucket=None, agency=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule(scope["method"], scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"

        async def refuse(status: int, detail: str, extra: dict[str, str] | None = None) -> None:
            # The body was not read: close the connection rather than drain it.
            await _answer(send, status, detail, extra, close=has_body)

        who: Client | None = None
        unauthorised: str | None = None
        if rule.agency:
            who, unauthorised = self.authenticate(headers.get("authorization"))
        if rule.bucket is not None:
            key = f"client:{who.name}" if who else f"ip:{_peer(scope)}"
            retry = await self.over_limit(rule.bucket, key)
            if retry is not None:
                await refuse(429, "too many requests", {"retry-after": str(retry)})
                return
        if unauthorised is not None:
            await refuse(401, unauthorised, {"www-authenticate": "Bearer"})
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > rule.cap):
            await refuse(413, _too_large(rule.cap))
            return

        received = 0
        tripped = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.cap and not tripped:
                    tripped = True
                    if not started:
                        await _answer(send, 413, _too_large(rule.cap), None, close=True)
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:  # the 413 is out; whatever the application answers goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not tripped:
                raise

    def authenticate(self, authorization: str | None) -> tuple[Client | None, str | None]:
        """The agency client of a Bearer key, or the reason for a 401 (as FastAPI's HTTPBearer
        and the route's own dependency would say it)."""
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None, "API key required"
        found = self.config.client_for(credentials.strip())
        return (found, None) if found else (None, "unknown API key")

    async def over_limit(self, bucket: str, key: str) -> int | None:
        """Seconds until ``key`` may come back, or None if this request is within its limits."""
        retry: int | None = None
        for item in self.limits[bucket]:
            if not await self.limiter.hit(item, bucket, key):
                stats = await self.limiter.get_window_stats(item, bucket, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                retry = max(retry or 0, wait)
        return retry


def _peer(scope: Scope) -> str:
    """The client's address; for IPv6 its /64, which one subscriber usually holds whole."""
    client = scope.get("client")
    if not client:
        return "-"
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:  # a Unix socket path
        return str(client[0])
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _too_large(cap: int) -> str:
    if cap == 0:
        return "this request takes no body"
    if cap >= 1024 * 1024:
        return f"request body over {cap // (1024 * 1024)} MiB"
    return f"request body over {max(1, cap // 1024)} KiB"


async def _answer(
    send: Send, status: int, detail: str, extra: dict[str, str] | None, *, close: bool
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
