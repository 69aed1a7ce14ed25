"""Seals that outlive their certificate: judge the seal certificate at the seal's issue date when
that date is proven, so a document without an end date still verifies after the certificate
expires (docs/trust-list.md, section 6).

The issue date in the seal is only a claim, signed by the key whose validity is in question; it
is proven by the trust list that lists the key for a period containing it (``verify.trustlist``),
or, online, by the registry's record of the document carrying the same issue date. Otherwise the
certificate is judged now, as before.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, date, datetime

from esign.errors import EsignError
from esign.registry import Registry, lookup
from esign.trustlist import day_start

from .seal import SealReport, verify_seal
from .trust import TrustConfig
from .trustlist import verify_seal_with_list

_log = logging.getLogger(__name__)


def recorded_issue_date(registry: str | Registry, issuer: str, number: str) -> date | None:
    """The issue date the registry recorded for the document, or None (unknown, unreachable)."""
    from esign.issue import document_id

    doc_id = document_id(issuer, number)
    try:
        doc = lookup(registry, doc_id)
    except EsignError as e:  # apply_registry reports the outage; here the date is just unproven
        _log.warning("registry lookup of %s failed: %s", doc_id, e.message)
        return None
    return None if doc is None else doc.issued_on


def judge_at_recorded_issue(
    report: SealReport, text: str, trust: TrustConfig, at: datetime, registry: str | Registry
) -> SealReport:
    """``report`` again, with the certificate judged on the issue date the registry records for
    the document, when the certificate is out of its validity at ``at`` and that date is the
    seal's; else ``report`` unchanged."""
    claims = report.claims
    if report.subindication != "OUT_OF_BOUNDS_NO_POE" or claims is None:
        return report
    recorded = recorded_issue_date(registry, claims.issuer, claims.number)
    if recorded != claims.issued:
        return report
    again = verify_seal(text, trust, trust.seal_certs, at=at, chain_at=day_start(recorded))
    proof = f"seal certificate judged on the issue date {recorded} recorded in the registry"
    return dataclasses.replace(again, details=(*again.details, proof))


def verify_seal_proven(
    text: str,
    trust: TrustConfig,
    *,
    at: datetime | None = None,
    registry: str | Registry | None = None,
    trust_list: bytes | None = None,
) -> SealReport:
    """``verify_seal``, or ``verify_seal_with_list`` given a trust list; when the certificate is
    out of its validity now and the registry records the seal's issue date, judged at that date."""
    if trust_list is not None:
        return verify_seal_with_list(text, trust.anchors, trust_list, at)
    at = at or datetime.now(UTC)
    report = verify_seal(text, trust, trust.seal_certs, at=at)
    if registry is None:
        return report
    return judge_at_recorded_issue(report, text, trust, at, registry)


__all__ = ["judge_at_recorded_issue", "recorded_issue_date", "verify_seal_proven"]
