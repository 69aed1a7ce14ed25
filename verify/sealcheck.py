"""Check a QR seal the way a person holds it: text, photo, scan or PDF; against the trust anchors,
the registry of issued documents when reachable, and, given a PDF, against that document.

A genuine seal pasted onto another document is a forgery: the seal's number, subject name and
register number must appear in the PDF's text, and the PDF must carry a valid signature by the
organisation whose key made the seal.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from pathlib import Path

from esign.errors import EsignError
from esign.registry import Registry

from .qrscan import kind_of, pdf_text, texts_from_image, texts_from_pdf
from .report import Indication, Text
from .seal import SealReport
from .sealdate import verify_seal_proven
from .trust import TrustConfig

NO_QR = Text("Зурагт/баримтад QR код олдсонгүй.", "No QR code was found in the image or document.")
NOT_THIS_DOC = Text(
    "QR тамга энэ баримтынх биш: тамганд бичигдсэн мэдээлэл баримтын агуулгатай таарахгүй байна. "
    "Хуурамч байж болзошгүй.",
    "The QR seal does not belong to this document: what the seal certifies does not match the "
    "document's content. It may be a forgery.",
)
REVOKED = Text(
    "Энэ баримтыг олгосон байгууллага хүчингүй болгосон.", "The issuer has revoked this document."
)
SUPERSEDED = Text(
    "Энэ баримтыг шинэ баримтаар сольсон тул хүчингүй.",
    "This document was replaced by a newer one.",
)
REGISTRY_DOWN = Text(
    "Баримтын төлөвийг одоо шалгах боломжгүй байна. Дараа дахин оролдоно уу.",
    "The document's status cannot be checked now. Please try again later.",
)
"""The registry did not answer: a revoked document must not pass for valid meanwhile."""
REGISTRY_DOWN_DETAIL = "registry unavailable"
"""The only public trace of an outage: where the database is and what it said stay in the log."""
UNKNOWN_DOC = Text(
    "Баримт бүртгэлд олдсонгүй.", "The document is not in the registry of issued documents."
)


def _with(report: SealReport, ind: Indication, sub: str, text: Text, *extra: str) -> SealReport:
    return dataclasses.replace(
        report,
        indication=ind,
        subindication=sub,
        explanation=text,
        details=report.details + tuple(extra),
    )


def _failed(text: Text, detail: str) -> SealReport:
    return SealReport(
        indication=Indication.TOTAL_FAILED,
        subindication="FORMAT_FAILURE",
        explanation=text,
        details=(detail,),
    )


_log = logging.getLogger(__name__)


def apply_registry(
    report: SealReport, registry: str | Registry | None, *, with_reason: bool = False
) -> SealReport:
    """Fill ``registry_status`` and turn revoked or superseded documents into failures.

    ``registry`` is a URL (opened for this one lookup) or an open registry, which a server
    keeps for all its requests. Fails closed: a registry that cannot be asked turns a passing
    seal into INDETERMINATE / TRY_LATER (``registry_status`` "unavailable"), and the report
    names no database, host or error (those go to the log). The revocation reason is internal:
    it is added to ``details`` only ``with_reason`` (an operator or an authenticated client).
    """
    if registry is None or report.claims is None:
        return report
    from esign.issue import document_id
    from esign.registry import open_registry

    doc_id = document_id(report.claims.issuer, report.claims.number)
    try:
        if isinstance(registry, str):
            with open_registry(registry) as opened:
                doc = opened.get(doc_id)
        else:
            doc = registry.get(doc_id)
    except EsignError as e:
        _log.warning("registry lookup of %s failed: %s", doc_id, e.message)
        report = dataclasses.replace(report, registry_status="unavailable")
        if report.indication is Indication.TOTAL_PASSED:
            return _with(
                report, Indication.INDETERMINATE, "TRY_LATER", REGISTRY_DOWN, REGISTRY_DOWN_DETAIL
            )
        return dataclasses.replace(report, details=(*report.details, REGISTRY_DOWN_DETAIL))
    if doc is None:
        report = dataclasses.replace(report, registry_status="unknown")
        if report.indication is Indication.TOTAL_PASSED:
            return _with(report, Indication.INDETERMINATE, "GENERIC", UNKNOWN_DOC, f"id {doc_id}")
        return report
    status = doc.status.value
    report = dataclasses.replace(report, registry_status=status)
    if status == "revoked":
        reason = (f"reason: {doc.status_reason}",) if with_reason and doc.status_reason else ()
        return _with(report, Indication.TOTAL_FAILED, "REVOKED", REVOKED, *reason)
    if status == "superseded":
        return _with(
            report, Indication.TOTAL_FAILED, "REVOKED", SUPERSEDED, f"by {doc.superseded_by}"
        )
    return report


def _match_pdf(report: SealReport, path: Path, trust: TrustConfig, online: bool) -> SealReport:
    if report.claims is None or report.indication is Indication.TOTAL_FAILED:
        return report
    claims = report.claims
    text = pdf_text(path)
    flat = "".join(text.split()).casefold()
    wanted = {
        "number": claims.number,
        "register number": claims.subject_id,
        "name": claims.subject_name,
    }
    missing = [k for k, v in wanted.items() if "".join(v.split()).casefold() not in flat]
    if missing:
        return _with(
            report,
            Indication.TOTAL_FAILED,
            "HASH_FAILURE",
            NOT_THIS_DOC,
            f"not in the PDF: {', '.join(missing)}",
        )
    from .pdf import Verifier, VerifyOptions

    doc = Verifier(trust, VerifyOptions(online=online)).verify_file(path)
    if doc.indication is not Indication.TOTAL_PASSED:
        return _with(
            report,
            doc.indication,
            doc.subindication or "GENERIC",
            doc.explanation,
            f"PDF: {doc.indication.value}",
        )
    seal_org = _seal_organisation(report.kid, trust)
    signer_orgs = {
        s.signer.organisation for s in doc.signatures if s.signer and s.kind != "document-timestamp"
    }
    if seal_org is not None and seal_org not in signer_orgs:
        return _with(
            report,
            Indication.TOTAL_FAILED,
            "HASH_FAILURE",
            NOT_THIS_DOC,
            "PDF signed by another organisation",
        )
    return report


def _seal_organisation(kid: str | None, trust: TrustConfig) -> str | None:
    """The organisationName of the published seal certificate the seal's key id names."""
    if kid is None:
        return None
    from esign.seal import key_id

    for cert in trust.seal_certs:
        if key_id(cert.dump()).hex() == kid:
            org = cert.subject.native.get("organization_name")
            return str(org[0] if isinstance(org, list) else org) if org else None
    return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a bare payload is longer than a file name may be (ENAMETOOLONG)
        return False


def check_seal(
    source: str,
    trust: TrustConfig,
    *,
    registry_url: str | None = None,
    at: datetime | None = None,
    online: bool = False,
    trust_list: bytes | None = None,
) -> SealReport:
    """``source`` is a payload or URL, or a path to an image or PDF. With ``trust_list`` (a signed
    list, docs/trust-list.md) seal keys come from it and only ``trust.anchors`` are used."""
    path = Path(source)
    kind = kind_of(path) if len(source) < 4096 and _is_file(path) else "payload"
    if kind == "payload":
        texts = [source]
    elif kind == "text":
        texts = [path.read_text(encoding="utf-8", errors="replace").strip()]
    else:
        texts = texts_from_pdf(path) if kind == "pdf" else texts_from_image(path)
        if not texts:
            return _failed(NO_QR, str(path))
    reports = [
        verify_seal_proven(t, trust, at=at, registry=registry_url, trust_list=trust_list)
        for t in texts
    ]
    report = next((r for r in reports if r.claims is not None), reports[0])
    # The caller opened the registry with its own URL: an operator, who may see the reason.
    report = apply_registry(report, registry_url, with_reason=True)
    if kind == "pdf":
        report = _match_pdf(report, path, trust, online)
    return report
