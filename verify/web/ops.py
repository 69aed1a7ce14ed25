"""What operators watch of `esign serve`: Prometheus metrics, one JSON access-log line per
request, readiness checks, and the count of signings in flight that shutdown waits for.

Logs and metric labels carry the route template (``/v/{payload}``), never the raw path: a seal
payload names a document and holds a digest of its subject, and a query string may too. No
client address, user agent or API key is logged either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.routing import BaseRoute, Match

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PID = os.getpid()  # the process serving: uvicorn's workers import this module each
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REJECTED = frozenset({413, 429, 503})
# Signing takes a TSA round trip; most requests end well within a second.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The server's metrics, in a registry of its own (several apps may share one process in
    tests). With ``PROMETHEUS_MULTIPROC_DIR`` set (``esign serve --workers N`` sets it), every
    worker process writes its values there and ``/metrics`` sums them all."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "esign_http_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "esign_http_request_duration_seconds", "Time to answer, by route template",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            "esign_rejections", "Requests refused for size (413), rate (429) or busy workers "
            "or an unavailable service (503), by route template", ["route", "status"], registry=r,
        )  # fmt: skip
        self.verdicts = Counter(
            "esign_verdicts", "Verification verdicts: kind is seal (QR) or pdf (upload)",
            ["kind", "indication"], registry=r,
        )  # fmt: skip
        self.signatures = Counter(
            "esign_signatures", "PDF signatures made through /api/v1/sign, by key and outcome",
            ["key", "outcome"], registry=r,
        )  # fmt: skip
        self.signature_seconds = Histogram(
            "esign_signature_duration_seconds", "Time to sign a PDF (incl. the TSA), by key",
            ["key"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.issuances = Counter(
            "esign_issuances", "Certificates issued through /api/v1/issue, by template and "
            "outcome", ["template", "outcome"], registry=r,
        )  # fmt: skip
        self.issuance_seconds = Histogram(
            "esign_issuance_duration_seconds", "Time to render, sign and record a certificate",
            ["template"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.registry_errors = Counter(
            "esign_registry_errors", "Registry lookups or writes that failed (database "
            "unreachable or refusing)", registry=r,
        )  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class InFlight:
    """Signings and issuances running now. Shutdown waits for them: a signature whose request
    was cut at the graceful timeout still finishes and is recorded, never half-done."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    async def drain(self, timeout: float) -> int:
        """Wait until nothing is in flight or ``timeout`` passes; returns what is left."""
        deadline = time.monotonic() + timeout
        while self._count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self._count


@contextlib.contextmanager
def timed(counter: Counter, histogram: Histogram, label: str) -> Iterator[None]:
    """Count one operation under ``label`` by outcome, and its duration."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        counter.labels(label, outcome).inc()
        histogram.labels(label).observe(time.perf_counter() - started)


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template of the route ``scope`` goes to; unknown paths are all ``other`` (a
    label per scanned URL would grow the metrics without end)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "other"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": _now(), "event": "log", "level": record.levelname, "logger": record.name,
            "message": record.getMessage(), "pid": os.getpid(),
        }  # fmt: skip
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _json_to_stderr(log: logging.Logger, level: int = logging.NOTSET) -> None:
    if not any(getattr(h, "_esign", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(level)
        handler.setFormatter(_JsonFormatter())
        handler._esign = True  # type: ignore[attr-defined]
        log.addHandler(handler)


def access_log(enabled: bool) -> TextIO | None:
    """Where the access log goes: stderr, one JSON line per request, or nowhere. The server's
    own warnings (registry down, a key that cannot load, signings cut at shutdown) go to stderr
    as JSON lines too: the command line silences the root logger, which dropped them."""
    for name in ("verify", "esign"):  # handlers only: the loggers' own levels stay as set
        _json_to_stderr(logging.getLogger(name), logging.WARNING)
    return sys.stderr if enabled else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Observe:
    """Outermost ASGI middleware: times every request, counts it by route template and status,
    and writes its access-log line. It wraps the gate too, so refusals (413, 429) are seen."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute], stream: TextIO | None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        # Written directly, on the event loop: a logging record per request cost more than
        # the rest of this middleware together.
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            # The router notes the route it chose in the scope; only what never reached it
            # (refused by the gate, or no route at all) is matched here.
            chosen = getattr(scope.get("route"), "path", None)
            route = chosen if isinstance(chosen, str) else route_template(self.routes, scope)
            method = str(scope["method"])
            m = self.metrics
            m.requests.labels(method, route, str(status)).inc()
            m.latency.labels(method, route).observe(elapsed)
            if status in REJECTED:
                m.rejections.labels(route, str(status)).inc()
            if self.stream is not None:
                fields = {
                    "time": _now(), "event": "request", "method": method, "route": route,
                    "status": status, "ms": round(elapsed * 1000, 1), "bytes": sent,
                    "pid": _PID,
                }  # fmt: skip
                with contextlib.suppress(OSError, ValueError):  # a closed stderr loses a line
                    self.stream.write(json.dumps(fields, separators=(",", ":")) + "\n")


Check = Callable[[], str]
"""A readiness check: returns a short detail when fine, raises with a one-line reason if not."""


async def run_checks(
    checks: dict[str, Check], run: Callable[[Check], Awaitable[str]], timeout: float
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every check concurrently, each within ``timeout`` seconds."""

    async def one(check: Check) -> dict[str, Any]:
        try:
            detail = await asyncio.wait_for(run(check), timeout)
        except TimeoutError:
            return {"ok": False, "detail": f"no answer within {timeout:g} s"}
        except Exception as e:  # a failed check is an answer, not a server error
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            return {"ok": False, "detail": message.splitlines()[0]}
        return {"ok": True, "detail": detail}

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    body = dict(zip(names, results, strict=True))
    return all(r["ok"] for r in results), body
