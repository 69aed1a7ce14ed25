"""Check a QR seal the way a person holds it: text, photo, scan or PDF; against the trust anchors,
the registry of issued documents when reachable, and, given a PDF, against that document.

A genuine seal pasted onto another document is a forgery: the seal's number, subject name and
register number must appear in the PDF's text, and the PDF must carry a valid signature by the
organisation whose key made the seal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import datetime
from pathlib import Path

from esign.errors import EsignError
from esign.registry import DocumentStatus, IssuedDocument, Registry, lookup
from esign.seal import SealClaims

from .qrscan import kind_of, texts_from_image, texts_from_pdf
from .report import Indication, Text
from .seal import SealReport
from .sealdate import verify_seal_proven
from .sealfields import FieldsNotFound, pdf_lines, printed_digest, printed_values, template_for
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
NOT_ISSUED = Text(
    "QR тамга нь байгууллагын олгосон баримттай таарахгүй байна: бүртгэлд өөр мэдээлэл "
    "бүртгэгдсэн. Хуурамч байж болзошгүй.",
    "The QR seal does not match the document the agency issued: the registry recorded other "
    "content under this number. It may be a forgery.",
)
NOT_ISSUED_FILE = Text(
    "Энэ PDF файл нь байгууллагын олгосон файл биш: бүртгэлд өөр файл бүртгэгдсэн. Хуурамч байж "
    "болзошгүй.",
    "This PDF is not the file the agency issued: the registry recorded another file under this "
    "number. It may be a forgery.",
)
FIELDS_CHANGED = Text(
    "Баримт дээр хэвлэгдсэн мэдээлэл QR тамгаар баталгаажсан мэдээлэлтэй таарахгүй байна: "
    "баримтыг өөрчилсөн байна.",
    "The fields printed on the document differ from those the QR seal certifies: the document "
    "was altered.",
)
FIELDS_NOT_FOUND = Text(
    "QR тамгаар баталгаажсан мэдээллийг баримт дээрээс олж чадсангүй.",
    "The fields the QR seal certifies could not be found on the document.",
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
    report: SealReport,
    registry: str | Registry | None,
    *,
    with_reason: bool = False,
    pdf: bytes | None = None,
    file_only: bool = False,
) -> SealReport:
    """Fill ``registry_status`` and turn revoked or superseded documents into failures, and seals
    or files other than those issued under the number (a replay) into TOTAL-FAILED/HASH_FAILURE.

    The seal's document type, dates and fields digest must be the ones recorded; ``pdf`` (the
    file the seal was read from), when given, must be the recorded file, possibly followed by
    incremental updates (added validation data, archive timestamps) which the PDF check judges.
    ``file_only`` checks only that, for a report whose status was already applied.

    ``registry`` is a URL (opened for this one lookup) or an open registry, which a server
    keeps for all its requests. Fails closed: a registry that cannot be asked turns a passing
    seal into INDETERMINATE / TRY_LATER (``registry_status`` "unavailable"), and the report
    names no database, host or error (those go to the log). The revocation reason is internal:
    it is added to ``details`` only ``with_reason`` (an operator or an authenticated client).
    """
    if registry is None or report.claims is None:
        return report
    from esign.issue import document_id

    claims = report.claims
    doc_id = document_id(claims.issuer, claims.number)
    try:
        doc = lookup(registry, doc_id)
    except EsignError as e:
        _log.warning("registry lookup of %s failed: %s", doc_id, e.message)
        report = dataclasses.replace(report, registry_status="unavailable")
        if report.indication is Indication.TOTAL_PASSED:
            return _with(
                report, Indication.INDETERMINATE, "TRY_LATER", REGISTRY_DOWN, REGISTRY_DOWN_DETAIL
            )
        return dataclasses.replace(report, details=(*report.details, REGISTRY_DOWN_DETAIL))
    if file_only:
        if doc is None or doc.pending or pdf is None or _is_issued_file(pdf, doc.pdf_sha256):
            return report
        return _not_issued_file(report, pdf, doc.pdf_sha256)
    if doc is None or (doc.pending and doc.status is DocumentStatus.ACTIVE):
        # pending: the number is reserved and still being signed; no seal of it was handed out
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
    if report.indication is Indication.TOTAL_FAILED:
        return report
    differs = _differs_from_record(claims, doc)
    if differs:
        return _with(
            report, Indication.TOTAL_FAILED, "HASH_FAILURE", NOT_ISSUED,
            f"registry: {', '.join(differs)} differ from what was issued",
        )  # fmt: skip
    if pdf is not None and not _is_issued_file(pdf, doc.pdf_sha256):
        return _not_issued_file(report, pdf, doc.pdf_sha256)
    return report


def _not_issued_file(report: SealReport, pdf: bytes, recorded: str) -> SealReport:
    digest = hashlib.sha256(pdf).hexdigest()
    return _with(
        report, Indication.TOTAL_FAILED, "HASH_FAILURE", NOT_ISSUED_FILE,
        f"registry: PDF SHA-256 {digest[:16]}… is not the issued {recorded[:16]}…",
    )  # fmt: skip


def _differs_from_record(claims: SealClaims, doc: IssuedDocument) -> list[str]:
    """The claims that differ from the registry's record of the document (names, for details)."""
    differs = []
    if doc.doc_type != claims.doc_type:
        differs.append("document type")
    if doc.issued_on != claims.issued or doc.expires_on != claims.expires:
        differs.append("dates")
    if doc.fields_digest is not None and doc.fields_digest != claims.fields_digest.hex():
        differs.append("fields digest")
    return differs


_EOF = re.compile(rb"%%EOF(?:\r\n|\r|\n)?")


def _is_issued_file(pdf: bytes, recorded_sha256: str) -> bool:
    """``pdf`` is the recorded file, or starts with it and goes on with incremental updates: some
    prefix ending just after an ``%%EOF`` marker (with or without its end-of-line) has the
    recorded digest."""
    if hashlib.sha256(pdf).hexdigest() == recorded_sha256:
        return True
    for match in _EOF.finditer(pdf):
        for end in {match.start() + 5, match.end()}:
            if hashlib.sha256(pdf[:end]).hexdigest() == recorded_sha256:
                return True
    return False


def _match_pdf(report: SealReport, path: Path, trust: TrustConfig, online: bool) -> SealReport:
    if report.claims is None or report.indication is Indication.TOTAL_FAILED:
        return report
    claims = report.claims
    lines = pdf_lines(path)
    flat = "".join("".join(lines).split()).casefold()
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
    report = _match_printed_fields(report, claims, lines)
    if report.indication is Indication.TOTAL_FAILED:
        return report
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


def _match_printed_fields(report: SealReport, claims: SealClaims, lines: list[str]) -> SealReport:
    """Recompute the fields digest from the page's text by the template's rules (docs/qr-seal.md
    §6.1): what is printed must be what the seal certifies, not merely signed by the agency."""
    template = template_for(claims)
    if template is None:
        detail = f"printed fields not checked: no template for {claims.issuer} {claims.doc_type}"
        return dataclasses.replace(report, details=(*report.details, detail))
    try:
        values = printed_values(lines, template, claims)
    except FieldsNotFound as e:
        indication = report.indication
        if indication is Indication.TOTAL_PASSED:
            indication = Indication.INDETERMINATE
        return _with(report, indication, "GENERIC", FIELDS_NOT_FOUND, str(e))
    if values["name"] != claims.subject_name or values["register_number"] != claims.subject_id:
        detail = "the printed name or register number differs from the seal's"
        return _with(report, Indication.TOTAL_FAILED, "HASH_FAILURE", NOT_THIS_DOC, detail)
    if printed_digest(values, template) != claims.fields_digest:
        detail = f"printed {', '.join(template.seal_fields)} differ from the seal's fields digest"
        return _with(report, Indication.TOTAL_FAILED, "HASH_FAILURE", FIELDS_CHANGED, detail)
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
        if registry_url is not None and report.indication is not Indication.TOTAL_FAILED:
            # last: a seal that does not even fit the page is better explained by that
            report = apply_registry(report, registry_url, pdf=path.read_bytes(), file_only=True)
    return report
