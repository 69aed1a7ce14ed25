"""The one fetcher every validation path uses (signatures, their timestamps, document timestamps):
a verifier that follows a URL an attacker writes into a certificate is an SSRF hole.

What it does, per document (one :class:`DocumentFetch` for all signatures and timestamps of a
PDF, so identical revocation data is fetched once):

- certificates are never fetched: AIA caIssuers URLs are ignored, paths are built from the
  trust configuration and the certificates the document carries;
- OCSP and CRL only over http(s) to URLs the trust configuration allows (``fetch_allow``):
  same scheme, host and port as an allowed prefix and a path under it, no user info. An empty
  ``fetch_allow`` allows the URLs of certificates already chained to an anchor, and no others:
  pyhanko-certvalidator asks for revocation data only after it has verified a certificate's
  signature along a path from a trust anchor, and no certificate is ever fetched;
- no redirects, a size cap on every response, a per-request timeout and a per-document budget
  (request count and wall clock); a refused or failed fetch is missing revocation data, which
  the AdES process reports as INDETERMINATE, never as a failed signature.

The requests-based fetchers are imported only when fetching is wanted, so an offline
`esign verify` does not pay for importing an HTTP stack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import x509
from pyhanko_certvalidator.fetchers.api import (
    CertificateFetcher,
    FetcherBackend,
    Fetchers,
    FetchLimits,
)
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget, FetchKind

log = logging.getLogger(__name__)

BUDGET_EXHAUSTED = "the per-document fetch budget was exhausted"


@dataclass(frozen=True)
class FetchPolicy:
    """Bounds on what one document may make the verifier fetch."""

    max_requests: int = 12
    """OCSP and CRL requests per document; cached answers are free. A document by one signer
    needs two or three (the signer's OCSP, its CA's CRL, perhaps the TSA's)."""
    seconds: float = 6.0
    """Wall clock from the document's first fetch after which no new request starts."""
    per_request_timeout: float = 3.0
    """Connect and read timeout, and the longest a response body may take to arrive; the
    verifier stops waiting for a request after twice this."""
    max_ocsp_bytes: int = 256 * 1024
    max_crl_bytes: int = 8 * 1024 * 1024


def url_allowed(url: str, allow: Sequence[str]) -> bool:
    """Whether ``url`` may be fetched under the allowlist ``allow`` (URL prefixes).

    Compared by parts, not by string prefix: ``http://ocsp.gov.mn`` must not admit
    ``http://ocsp.gov.mn.evil.example/`` nor ``http://ocsp.gov.mn@evil.example/``. An empty
    ``allow`` admits any http(s) URL: the caller's chain-first rule applies then (module doc).
    """
    target = _parts(url)
    if target is None:
        return False
    if not allow:
        return True
    for prefix in allow:
        allowed = _parts(prefix)
        if allowed is None:
            continue
        scheme, host, port, path = allowed
        if target[:3] != (scheme, host, port):
            continue
        base = path if path.endswith("/") else path + "/"
        if target[3] == path or target[3].startswith(base) or path in ("", "/"):
            return True
    return False


def _parts(url: str) -> tuple[str, str, int, str] | None:
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 for c in url):
        return None
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.scheme not in ("http", "https") or not split.hostname:
        return None
    if split.username is not None or split.password is not None:
        return None
    default = 443 if split.scheme == "https" else 80
    return split.scheme, split.hostname.lower(), port or default, split.path or "/"


class DocumentBudget(FetchBudget):
    """pyhanko-certvalidator's request budget plus a wall-clock limit, remembering whether it
    refused anything (a report then says the budget, not the signature, is why data is missing).

    Like its base class, charged on the event-loop thread only.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__(
            FetchLimits(
                max_requests=policy.max_requests, max_cert_requests=0, max_aia_urls_per_object=0
            )
        )
        self.seconds = policy.seconds
        self.requests = 0
        self.refused = 0
        self.failures: dict[str, str] = {}
        """Why a revocation URL gave nothing (refused, failed): a report names it."""
        self._started: float | None = None

    def note(self, url: str, why: str) -> None:
        if len(self.failures) < 32:
            self.failures.setdefault(url, why)

    def charge(self, kind: FetchKind) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if now - self._started > self.seconds:
            self.refused += 1
            raise kind.value(f"{BUDGET_EXHAUSTED} ({self.seconds:g} s of fetching)")
        try:
            super().charge(kind)  # type: ignore[no-untyped-call]
        except kind.value as e:
            self.refused += 1
            raise kind.value(f"{BUDGET_EXHAUSTED} ({e})") from e
        self.requests += 1


class _NoCertificates(CertificateFetcher):
    """Certificates are never fetched: an AIA caIssuers URL is whatever the certificate's
    author wrote, and the issuer of a certificate chained to an anchor is already known."""

    async def _nothing(self) -> AsyncGenerator[x509.Certificate, None]:
        return
        yield

    def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[x509.Certificate, None]:
        return self._nothing()

    def fetch_crl_issuers(self, certificate_list: Any) -> AsyncGenerator[x509.Certificate, None]:
        return self._nothing()

    def fetched_certs(self) -> Iterable[x509.Certificate]:
        return ()


def _cause(error: BaseException) -> str:
    """The innermost reason a fetch failed, one short line (pyHanko wraps it in "Failure to
    fetch ... from URL ...")."""
    cause = error.__cause__ or error
    return " ".join(str(cause).split())[:200] or type(cause).__name__


def _build_fetchers(
    allow: tuple[str, ...], policy: FetchPolicy, budget: DocumentBudget
) -> Fetchers:
    import requests
    from pyhanko_certvalidator import errors
    from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
    from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher

    timeout = policy.per_request_timeout

    def check(url: str) -> None:
        if not url_allowed(url, allow):
            raise requests.RequestException(f"fetching {url} is not allowed by the trust policy")

    def bounded(response: requests.Response, limit: int, started: float) -> bytes:
        """The body, refused past ``limit`` bytes (decoded) or the per-request time; read1()
        returns after one socket read, so a server trickling bytes cannot stretch the time."""
        with response:
            if response.status_code != 200:  # a 3xx is refused too: redirects are off
                raise requests.RequestException(f"status code {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise requests.RequestException(f"response larger than {limit} bytes")
            body = bytearray()
            while chunk := response.raw.read1(65536, decode_content=True):
                body += chunk
                if len(body) > limit:
                    raise requests.RequestException(f"response larger than {limit} bytes")
                if time.monotonic() - started > timeout:
                    raise requests.RequestException(f"response took longer than {timeout:g} s")
            return bytes(body)

    async def in_thread(task: Callable[[], requests.Response]) -> requests.Response:
        """Run a blocking request, waiting at most twice the per-request time (slow headers)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(task), 2 * timeout)
        except TimeoutError as e:
            raise requests.RequestException(f"no answer within {2 * timeout:g} s") from e

    def _body(content: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = content
        return response

    class OCSP(RequestsOCSPFetcher):
        async def _fetch_single(self, ocsp_url: str, ocsp_request: Any) -> Any:
            if not url_allowed(ocsp_url, allow):  # refused before the budget is charged
                log.info("OCSP URL %s refused by the trust policy", ocsp_url)
                budget.note(ocsp_url, "refused by the trust policy (fetch_allow)")
                raise errors.OCSPFetchError(f"fetching {ocsp_url} is not allowed")
            try:
                return await super()._fetch_single(ocsp_url, ocsp_request)  # type: ignore[no-untyped-call]
            except Exception as e:
                budget.note(ocsp_url, f"failed: {_cause(e)}")
                raise

        def _post(self, url: str, data: Any, **kw: Any) -> Any:
            check(url)

            def task() -> requests.Response:
                started = time.monotonic()
                response = requests.post(
                    url,
                    data=data,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    headers={
                        "Accept": ",".join(kw["acceptable_content_types"]),
                        "Content-Type": kw["content_type"],
                        "User-Agent": self.user_agent,
                    },
                )
                return _body(bounded(response, policy.max_ocsp_bytes, started))

            return in_thread(task)

    class CRL(RequestsCRLFetcher):
        async def _fetch_single(self, url: str) -> Any:
            if not url_allowed(url, allow):
                log.info("CRL URL %s refused by the trust policy", url)
                budget.note(url, "refused by the trust policy (fetch_allow)")
                raise errors.CRLFetchError(f"fetching {url} is not allowed")
            try:
                return await super()._fetch_single(url)  # type: ignore[no-untyped-call]
            except Exception as e:
                budget.note(url, f"failed: {_cause(e)}")
                raise

        def _get(self, url: str, **kw: Any) -> Any:
            check(url)

            def task() -> requests.Response:
                started = time.monotonic()
                response = requests.get(
                    url,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    headers={
                        "Accept": ",".join(kw["acceptable_content_types"]),
                        "User-Agent": self.user_agent,
                    },
                )
                return _body(bounded(response, policy.max_crl_bytes, started))

            return in_thread(task)

    return Fetchers(
        ocsp_fetcher=OCSP(per_request_timeout=timeout, budget=budget),
        crl_fetcher=CRL(per_request_timeout=timeout, budget=budget),  # type: ignore[no-untyped-call]
        cert_fetcher=_NoCertificates(),
    )


class DocumentFetch(FetcherBackend):
    """The fetchers of one document: every validation context built for it gets the same
    :class:`Fetchers` (one cache, one budget). Build one per document, never share between
    documents verified concurrently."""

    def __init__(self, allow: Sequence[str], policy: FetchPolicy | None = None) -> None:
        self.allow = tuple(allow)
        self.policy = policy or FetchPolicy()
        self.budget = DocumentBudget(self.policy)
        self._fetchers: Fetchers | None = None

    def get_fetchers(self) -> Fetchers:
        if self._fetchers is None:
            self._fetchers = _build_fetchers(self.allow, self.policy, self.budget)
        return self._fetchers

    async def close(self) -> None:
        return None


__all__ = ["BUDGET_EXHAUSTED", "DocumentBudget", "DocumentFetch", "FetchPolicy", "url_allowed"]
