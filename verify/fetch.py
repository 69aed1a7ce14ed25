"""The one fetcher every validation path uses (signatures, their timestamps, document timestamps):
a verifier that follows a URL an attacker writes into a certificate is an SSRF hole.

What it does, per document (one :class:`DocumentFetch` for all signatures and timestamps of a
PDF, so identical revocation data is fetched once), and per run (one :class:`RunFetchCache` per
:class:`~verify.pdf.Verifier`, so a batch of one agency's documents asks the state's responder
once per certificate, not once per document):

- certificates are never fetched: AIA caIssuers URLs are ignored, paths are built from the
  trust configuration and the certificates the document carries;
- OCSP and CRL only over http(s) to URLs the trust configuration allows (``fetch_allow``):
  same scheme, host and port as an allowed prefix and a path under it, no user info. An empty
  ``fetch_allow`` allows the URLs of certificates already chained to an anchor, and no others:
  pyhanko-certvalidator asks for revocation data only after it has verified a certificate's
  signature along a path from a trust anchor, and no certificate is ever fetched;
- no redirects, a size cap on every response, a per-request timeout and a per-document budget
  (request count and wall clock); a refused or failed fetch is missing revocation data, which
  the AdES process reports as INDETERMINATE, never as a failed signature;
- an answer is reused by later documents of the run while it is fresh (:class:`RunFetchCache`),
  and a URL that timed out is not asked again for ``failure_seconds``, so a hung responder costs
  one timeout per URL per ``failure_seconds``, not one per document.

The requests-based fetchers are imported only when fetching is wanted, so an offline
`esign verify` does not pay for importing an HTTP stack.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
    reuse_seconds: float = 3600.0
    """Longest a fetched OCSP response or CRL serves later documents of the run, even when its
    nextUpdate is later (a CA may publish an early CRL after an urgent revocation); 0 fetches
    for every document."""
    reuse_without_next_update: float = 300.0
    """The same for a response that names no nextUpdate (it promises nothing about freshness)."""
    failure_seconds: float = 30.0
    """How long a URL that failed slowly (no usable answer within half the per-request timeout:
    hung, trickling) is not asked again: later documents get the same failure at once. Short,
    so a responder that comes back is used again within half a minute; 0 asks every time."""


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


class RunFetchCache:
    """Fetched OCSP responses and CRLs shared by the documents of one run (one verifier, one
    worker process), so a batch asks a responder once per certificate and a CRL repository once
    per URL while the answer is fresh (issue 13).

    Keyed by what was asked, never by a name the document chose: an OCSP answer by the request's
    certificate ID (hash algorithm, issuer name hash, issuer key hash, serial number) and the
    responder URL, a CRL by its URL. An answer is kept until the earliest of its nextUpdate,
    ``reuse_seconds`` after it arrived (``reuse_without_next_update`` without a nextUpdate) and
    the end of the run (the cache lives in the verifier); timed on the monotonic clock.

    Failures are not kept, with one exception that bounds time. A quick failure (refused
    connection, an error status, an unparsable body, an OCSP error status, a response for
    another certificate) costs little to repeat, so the next document asks again and sees a
    responder that is back, as one-by-one verification would. A slow one (no usable answer
    after half the per-request timeout or more: a hung or trickling responder) marks its URL
    for ``failure_seconds``: documents meanwhile get the same failure text without a request,
    so such an outage costs one timeout per URL per ``failure_seconds`` instead of one per
    document (thousands of documents x 6 s), and their reports read as each would have alone
    during the outage (INDETERMINATE, the detail naming the URL and the timeout). Thread-safe.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        max_entries: int = 1024,
        max_bytes: int = 64 * 2**20,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._answers: OrderedDict[tuple[Any, ...], tuple[float, Any, int]] = OrderedDict()
        self._failures: dict[str, tuple[float, str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.failure_hits = 0
        self.stored = 0

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, key: tuple[Any, ...]) -> Any:
        """The fresh answer kept for ``key``, or None."""
        now = time.monotonic()
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                return None
            if found[0] <= now:
                self._drop(key)
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return found[1]

    def keep(
        self, key: tuple[Any, ...], value: Any, next_update: datetime | None, size: int
    ) -> None:
        """Keep ``value`` (just fetched) for the time the class doc says; a stale one is not
        kept."""
        policy = self.policy
        cap = policy.reuse_seconds if next_update is not None else policy.reuse_without_next_update
        seconds = min(cap, policy.reuse_seconds)
        if next_update is not None:
            seconds = min(seconds, (next_update - datetime.now(UTC)).total_seconds())
        if seconds <= 0 or size > self._max_bytes:
            return
        with self._lock:
            if key in self._answers:
                self._drop(key)
            self._answers[key] = (time.monotonic() + seconds, value, size)
            self._bytes += size
            self.stored += 1
            while len(self._answers) > self._max_entries or self._bytes > self._max_bytes:
                self._drop(next(iter(self._answers)))

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._bytes -= self._answers.pop(key)[2]

    def failure(self, url: str) -> str | None:
        """Why ``url`` gave no answer moments ago (the text the request failed with), or None."""
        now = time.monotonic()
        with self._lock:
            found = self._failures.get(url)
            if found is None:
                return None
            if found[0] <= now:
                del self._failures[url]
                return None
            self.failure_hits += 1
            return found[1]

    def failed(self, url: str, why: str) -> None:
        seconds = self.policy.failure_seconds
        if seconds <= 0:
            return
        with self._lock:
            if len(self._failures) >= 256:  # bounded: a run meets a few responders
                self._failures.clear()
            self._failures[url] = (time.monotonic() + seconds, why)


def _ocsp_key(url: str, request: Any) -> tuple[Any, ...]:
    cert_id = request["tbs_request"]["request_list"][0]["req_cert"]
    return (
        "ocsp",
        url,
        cert_id["hash_algorithm"]["algorithm"].dotted,
        bytes(cert_id["issuer_name_hash"]),
        bytes(cert_id["issuer_key_hash"]),
        cert_id["serial_number"].native,
    )


def _ocsp_next_update(response: Any, request: Any) -> tuple[bool, datetime | None]:
    """Whether ``response`` answers the request's certificate ID, and that answer's nextUpdate."""
    cert_id = request["tbs_request"]["request_list"][0]["req_cert"]
    try:
        if response["response_status"].native != "successful":
            return False, None
        basic = response["response_bytes"]["response"].parsed
        for single in basic["tbs_response_data"]["responses"]:
            if single["cert_id"].dump() == cert_id.dump():
                next_update = single["next_update"].native
                return True, next_update
    except (ValueError, KeyError, TypeError):
        pass
    return False, None


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
    allow: tuple[str, ...],
    policy: FetchPolicy,
    budget: DocumentBudget,
    run: RunFetchCache | None = None,
) -> Fetchers:
    import requests
    from asn1crypto import crl as asn1_crl
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

    async def in_thread(url: str, task: Callable[[], requests.Response]) -> requests.Response:
        """Run a blocking request, waiting at most twice the per-request time (slow headers).
        A request that failed only after waiting half the per-request time or more marks ``url``
        failed for the run (RunFetchCache): a quick failure (refused connection, error status)
        costs the next document little, and asking again sees a responder that is back."""
        started = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.to_thread(task), 2 * timeout)
        except TimeoutError as e:
            error = requests.RequestException(f"no answer within {2 * timeout:g} s")
            if run is not None:
                run.failed(url, str(error))
            raise error from e
        except requests.RequestException as e:
            if run is not None and time.monotonic() - started >= timeout / 2:
                run.failed(url, str(e))
            raise

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
            key = _ocsp_key(ocsp_url, ocsp_request) if run is not None else ()
            try:
                if run is not None:
                    # checked against its own request's nonce when it was fetched
                    kept = run.answer(key)
                    if kept is not None:
                        return kept
                    why = run.failure(ocsp_url)
                    if why is not None:
                        raise errors.OCSPFetchError(
                            f"Failed to fetch OCSP response from {ocsp_url}"
                        ) from requests.RequestException(why)
                response = await super()._fetch_single(ocsp_url, ocsp_request)  # type: ignore[no-untyped-call]
            except Exception as e:
                budget.note(ocsp_url, f"failed: {_cause(e)}")
                raise
            if run is not None:
                answers, next_update = _ocsp_next_update(response, ocsp_request)
                if answers:
                    run.keep(key, response, next_update, len(response.contents or b""))
            return response

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

            return in_thread(url, task)

    class CRL(RequestsCRLFetcher):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)  # type: ignore[no-untyped-call]
            self._asked: set[str] = set()
            """URLs this document requested over the network (not served from the run)."""

        async def _fetch_single(self, url: str) -> Any:
            if not url_allowed(url, allow):
                log.info("CRL URL %s refused by the trust policy", url)
                budget.note(url, "refused by the trust policy (fetch_allow)")
                raise errors.CRLFetchError(f"fetching {url} is not allowed")
            try:
                if run is not None:
                    kept = run.answer(("crl", url))
                    if kept is not None:
                        # through the document's own memo, as a fetched CRL goes: pyHanko
                        # considers every CRL a document fetched for each certificate
                        async def served() -> Any:
                            return kept

                        return await self._perform_fetch(url, served)  # type: ignore[no-untyped-call]
                    why = run.failure(url)
                    if why is not None:
                        raise errors.CRLFetchError(
                            f"Failure to fetch CRL from URL {url}"
                        ) from requests.RequestException(why)
                fetched = await super()._fetch_single(url)  # type: ignore[no-untyped-call]
            except Exception as e:
                budget.note(url, f"failed: {_cause(e)}")
                raise
            if run is not None and url in self._asked:
                self._asked.discard(url)  # kept once, when it arrived
                if isinstance(fetched, asn1_crl.CertificateList):
                    next_update = fetched["tbs_cert_list"]["next_update"].native
                    run.keep(("crl", url), fetched, next_update, len(fetched.contents or b""))
            return fetched

        def _get(self, url: str, **kw: Any) -> Any:
            check(url)
            self._asked.add(url)

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

            return in_thread(url, task)

    return Fetchers(
        ocsp_fetcher=OCSP(per_request_timeout=timeout, budget=budget),
        crl_fetcher=CRL(per_request_timeout=timeout, budget=budget),
        cert_fetcher=_NoCertificates(),
    )


class DocumentFetch(FetcherBackend):
    """The fetchers of one document: every validation context built for it gets the same
    :class:`Fetchers` (one cache, one budget). Build one per document, never share between
    documents verified concurrently."""

    def __init__(
        self,
        allow: Sequence[str],
        policy: FetchPolicy | None = None,
        run: RunFetchCache | None = None,
    ) -> None:
        self.allow = tuple(allow)
        self.policy = policy or FetchPolicy()
        self.budget = DocumentBudget(self.policy)
        self.run = run
        """Answers shared with the run's other documents, or None (this document alone)."""
        self._fetchers: Fetchers | None = None

    def get_fetchers(self) -> Fetchers:
        if self._fetchers is None:
            self._fetchers = _build_fetchers(self.allow, self.policy, self.budget, self.run)
        return self._fetchers

    async def close(self) -> None:
        return None


__all__ = [
    "BUDGET_EXHAUSTED",
    "DocumentBudget",
    "DocumentFetch",
    "FetchPolicy",
    "RunFetchCache",
    "url_allowed",
]
