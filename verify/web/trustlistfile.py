"""GET /trust-list: the server hands out the list `esign trust-list build` wrote; it never holds
the list-signing key. Verifiers poll it, so the answer is cacheable and conditional: a strong ETag
(SHA-256 of the file), Last-Modified (the list's issue time), max-age up to its next update, and
304 for a client that already has it. A file that does not verify against the server's own trust
anchors is not served (503): a broken build must not reach every bank at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from asn1crypto import x509

from esign.trustlist import MEDIA_TYPE

from ..trustlist import TrustList, TrustListRefused, check_trust_list

MAX_AGE = 3600
"""Longest time a client or proxy may reuse the list without asking again (seconds)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int, int]
    data: bytes
    etag: str
    content: TrustList | None
    """None when the list is genuine but already past its next update."""
    issued: datetime


class TrustListFile:
    """The configured trust list file, read again whenever it changes on disk."""

    def __init__(self, path: Path | None, anchors: Sequence[x509.Certificate]) -> None:
        self.path = path
        self.anchors = tuple(anchors)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _load(self, now: datetime) -> _Loaded:
        assert self.path is not None
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            loaded = self._loaded
            if loaded is not None and loaded.stamp == stamp:
                return loaded
            data = self.path.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            content: TrustList | None
            try:
                content = check_trust_list(data, self.anchors, now)
                issued = content.issued
            except TrustListRefused as e:
                if not e.stale:
                    raise
                content = None
                issued = datetime.fromtimestamp(st.st_mtime, UTC)
            self._loaded = _Loaded(stamp, data, etag, content, issued)
            return self._loaded

    def answer(self, request_headers: Mapping[str, str], now: datetime | None = None) -> Answer:
        """The HTTP answer to a GET with these request headers."""
        now = now or datetime.now(UTC)
        if self.path is None:
            return Answer(404, {"Content-Type": "text/plain"}, b"no trust list configured\n")
        try:
            loaded = self._load(now)
        except (OSError, TrustListRefused) as e:
            _log.error("trust list %s not served: %s", self.path, e)
            return Answer(
                503,
                {"Content-Type": "text/plain", "Retry-After": "60"},
                b"trust list unavailable\n",
            )
        if loaded.content is None or now >= loaded.content.next_update:
            max_age = 0
            _log.warning("serving trust list %s past its next update", self.path)
        else:
            max_age = int(min(MAX_AGE, (loaded.content.next_update - now).total_seconds()))
        headers = {
            "ETag": loaded.etag,
            "Last-Modified": format_datetime(loaded.issued.astimezone(UTC), usegmt=True),
            "Cache-Control": f"public, max-age={max_age}, no-transform",
        }
        if _not_modified(request_headers, loaded.etag, loaded.issued):
            return Answer(304, headers)
        headers["Content-Type"] = MEDIA_TYPE
        return Answer(200, headers, loaded.data)


def _not_modified(headers: Mapping[str, str], etag: str, issued: datetime) -> bool:
    """RFC 9110 §13.1: If-None-Match wins over If-Modified-Since when both are sent."""
    match = headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        return False
    return issued.replace(microsecond=0) <= when


__all__ = ["MAX_AGE", "Answer", "TrustListFile"]
