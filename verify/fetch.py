"""Revocation fetching restricted to allowed URLs: a verifier that follows any URL an attacker
writes into a certificate is an SSRF hole.

The requests-based fetchers are imported only when fetching is wanted, so an offline
`esign verify` does not pay for importing an HTTP stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits


def url_allowed(url: str, allow: Sequence[str]) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    return not allow or any(url.startswith(prefix) for prefix in allow)


def _guarded_fetchers(allow: Sequence[str], timeout: float, limits: FetchLimits) -> Fetchers:
    import requests
    from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
    from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import (
        RequestsCertificateFetcher,
    )
    from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
    from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher

    def check(url: str) -> None:
        if not url_allowed(url, allow):
            raise requests.RequestException(f"fetching {url} is not allowed by the trust policy")

    class OCSP(RequestsOCSPFetcher):
        def _post(self, url: str, data: Any, **kw: Any) -> Any:
            check(url)
            return super()._post(url, data, **kw)

    class CRL(RequestsCRLFetcher):
        def _get(self, url: str, **kw: Any) -> Any:
            check(url)
            return super()._get(url, **kw)

    budget = FetchBudget(limits)
    return Fetchers(
        ocsp_fetcher=OCSP(per_request_timeout=timeout, budget=budget),
        crl_fetcher=CRL(per_request_timeout=timeout, budget=budget),  # type: ignore[no-untyped-call]
        cert_fetcher=RequestsCertificateFetcher(per_request_timeout=timeout, budget=budget),
    )


class AllowlistFetcherBackend(FetcherBackend):
    """OCSP and CRL over HTTP(S) to allowed URL prefixes only; certificates are never fetched."""

    def __init__(self, allow: Sequence[str], timeout: float = 5.0) -> None:
        self.allow = tuple(allow)
        self.timeout = timeout
        self.limits = FetchLimits(max_requests=50)

    def get_fetchers(self) -> Fetchers:
        return _guarded_fetchers(self.allow, self.timeout, self.limits)

    async def close(self) -> None:
        return None
