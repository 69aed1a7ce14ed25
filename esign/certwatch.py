"""Keep watching a long-running signer's certificate: a server signs for months, and a certificate
checked once at start may be revoked or expire while it runs.

:class:`CertificateWatch` checks the dates on every use (no network) and the revocation status
(OCSP, else CRL, as the certificate names them) at first use and then every ``interval`` seconds.
Once the certificate is refused, it stays refused: revocation is final and time only moves on.
The CLI signs one batch and checks once (``DocumentSigner.check_certificate``); this is for
``esign serve``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from asn1crypto import x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from .errors import CertificateRefused, UsageError
from .pades import certificate_refusal

DEFAULT_INTERVAL = 300.0
"""Seconds between revocation checks: a revoked seal key signs for at most this long."""

_log = logging.getLogger(__name__)


class CertificateWatch:
    """Refuses to let a revoked, expired or not-yet-valid certificate sign (thread-safe).

    ``check()`` raises :class:`CertificateRefused` with a one-line reason. When the revocation
    status cannot be had (responder down, no anchor for the chain) signing goes on, as at start
    (soft-fail), and the next check is due after ``interval`` as usual; the gap is logged.
    """

    def __init__(
        self,
        cert: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        trust_roots: Sequence[x509.Certificate] = (),
        interval: float = DEFAULT_INTERVAL,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise UsageError(f"certificate re-check interval must be positive, not {interval}")
        self.cert = cert
        self.chain = list(chain)
        self.interval = interval
        self._roots = [c for c in self.chain if c.self_signed in ("maybe", "yes")]
        self._roots += [r for r in trust_roots if r.dump() not in {c.dump() for c in self._roots}]
        self._timeout = timeout
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next_check: float | None = None  # monotonic time; None: not checked yet
        self._refused: CertificateRefused | None = None
        self.checks = 0
        """Revocation checks done so far (for tests and operators)."""

    def _context(self) -> ValidationContext:
        # A fresh context each time: a context caches the OCSP responses it fetched.
        return ValidationContext(
            trust_roots=self._roots or None,
            other_certs=self.chain,
            allow_fetching=True,
            revocation_mode="soft-fail",
            fetcher_backend=RequestsFetcherBackend(per_request_timeout=self._timeout),
        )

    def check(self) -> None:
        """Raise :class:`CertificateRefused` unless the certificate may sign now."""
        with self._lock:
            if self._refused is not None:
                raise self._refused
            now = self._clock()
            due = self._next_check is None or self._monotonic() >= self._next_check
            if due:
                self.checks += 1
                refusal = certificate_refusal(self.cert, self.chain, self._context, now)
                self._next_check = self._monotonic() + self.interval
            else:  # between revocation checks the dates are still checked, offline
                refusal = certificate_refusal(self.cert, self.chain, None, now)
            if refusal is not None:
                _log.error("signing stopped: %s", refusal.message)
                self._refused = refusal
                raise refusal


__all__ = ["DEFAULT_INTERVAL", "CertificateWatch"]
