"""Revocation fetching restricted to allowed URLs: a verifier that follows any URL an attacker
writes into a certificate is an SSRF hole."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

import requests
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import (
    RequestsCertificateFetcher,
)
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher


def url_allowed(url: str, allow: Sequence[str]) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    return not allow or any(url.startswith(prefix) for prefix in allow)


class _Guard:
    allow: Sequence[str] = ()

    def _check(self, url: str) -> None:
        if not url_allowed(url, self.allow):
            raise requests.RequestException(f"fetching {url} is not allowed by the trust policy")


class _OCSP(_Guard, RequestsOCSPFetcher):
    def _post(self, url: str, data: Any, **kw: Any) -> Awaitable[requests.Response]:
        self._check(url)
        return super()._post(url, data, **kw)  # type: ignore[no-any-return]


class _CRL(_Guard, RequestsCRLFetcher):
    def _get(self, url: str, **kw: Any) -> Awaitable[requests.Response]:
        self._check(url)
        return super()._get(url, **kw)  # type: ignore[no-any-return]


class AllowlistFetcherBackend(FetcherBackend):
    """OCSP and CRL over HTTP(S) to allowed URL prefixes only; certificates are never fetched."""

    def __init__(self, allow: Sequence[str], timeout: float = 5.0) -> None:
        self.allow = tuple(allow)
        self.timeout = timeout
        self.limits = FetchLimits(max_requests=50)

    def get_fetchers(self) -> Fetchers:
        budget = FetchBudget(self.limits)
        ocsp = _OCSP(per_request_timeout=self.timeout, budget=budget)
        crl = _CRL(per_request_timeout=self.timeout, budget=budget)  # type: ignore[no-untyped-call]
        ocsp.allow = crl.allow = self.allow
        certs = RequestsCertificateFetcher(per_request_timeout=self.timeout, budget=budget)
        return Fetchers(ocsp_fetcher=ocsp, crl_fetcher=crl, cert_fetcher=certs)

    async def close(self) -> None:
        return None
