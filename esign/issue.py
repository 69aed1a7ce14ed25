"""Issue a certificate: render it, stamp the QR seal, sign it (PAdES certification signature),
write it atomically and record it in the registry.

:class:`CertificateIssuer` is built once per template and keys and reused for every document of a
batch, like :class:`~esign.pades.DocumentSigner`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .pades import DocumentSigner
from .pdfio import write_atomic
from .render import SealBlock, render_certificate
from .seal import SealClaims, SealSigner, fields_digest
from .template import DocumentData, Template

if TYPE_CHECKING:
    from .registry import Registry

DEFAULT_BASE_URL = "https://verify.e-mongolia.mn"


def document_id(issuer_code: str, number: str) -> str:
    """A stable ASCII id, also the short code printed under the QR: ``XXXXX-XXXXX``.

    Derived from issuer and number, so a resumed batch knows the ids before issuing.
    """
    digest = hashlib.sha256(f"{issuer_code}\x1f{number}".encode()).digest()
    code = base64.b32encode(digest).decode()[:10]
    return f"{code[:5]}-{code[5:]}"


@dataclass(frozen=True)
class Issued:
    id: str
    number: str
    url: str
    pdf_sha256: str
    path: Path | None = None


class CertificateIssuer:
    """Render, seal, sign and record documents of one template."""

    def __init__(
        self,
        template: Template,
        pdf_signer: DocumentSigner,
        seal_signer: SealSigner,
        *,
        registry: Registry | None = None,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.template = template
        self.pdf_signer = pdf_signer
        self.seal_signer = seal_signer
        self.registry = registry
        self.base_url = base_url.rstrip("/")

    def claims(self, data: DocumentData) -> SealClaims:
        t = self.template
        return SealClaims(
            issuer=t.issuer_code,
            doc_type=t.doc_type,
            number=data.number,
            issued=data.issued,
            expires=data.expires,
            subject_name=data.name,
            subject_id=data.register_number,
            fields_digest=fields_digest({k: data.fields[k] for k in t.seal_fields}),
        )

    def close(self) -> None:
        self.pdf_signer.key.close()
        if self.registry is not None:
            self.registry.close()

    def render_signed(self, data: DocumentData) -> tuple[bytes, Issued]:
        """The signed PDF and what identifies it; nothing is written or recorded."""
        doc_id = document_id(self.template.issuer_code, data.number)
        url = self.seal_signer.url(self.base_url, self.claims(data))
        address = self.base_url.split("://", 1)[-1]
        unsigned = render_certificate(
            self.template,
            data,
            SealBlock(url=url, address=address, code=doc_id),
            created=datetime.now(UTC),
        )
        signed = self.pdf_signer.sign_bytes(unsigned, data.number)
        digest = hashlib.sha256(signed).hexdigest()
        return signed, Issued(id=doc_id, number=data.number, url=url, pdf_sha256=digest)

    def issue_to(self, data: DocumentData, out: Path, *, replace_lost: bool = False) -> Issued:
        """Write the signed certificate to ``out`` and record it; the file appears complete or
        not at all, and the registry only lists documents whose file was written.

        A number already in the registry is refused before anything is written, unless
        ``replace_lost`` is set, ``out`` is missing and the recorded document is still active
        for the same subject: then the lost file is issued again and the registry updated.
        """
        replace = False
        if self.registry is not None:
            known = self.registry.get(document_id(self.template.issuer_code, data.number))
            if known is not None:
                from .registry import DuplicateDocument

                if not (replace_lost and not out.exists()):
                    raise DuplicateDocument(known)
                replace = True
        signed, issued = self.render_signed(data)
        write_atomic(out, signed)
        if self.registry is not None:
            if replace:
                from .registry import subject_digest

                self.registry.replace_file(
                    issued.id, issued.pdf_sha256, subject_digest(data.register_number, data.name)
                )
            else:
                self.record(data, issued)
        return Issued(issued.id, issued.number, issued.url, issued.pdf_sha256, out)

    def record(self, data: DocumentData, issued: Issued) -> None:
        """Record an issued document in the registry (after its file or response exists)."""
        assert self.registry is not None
        from .registry import DocumentStatus, IssuedDocument, subject_digest

        self.registry.record(
            IssuedDocument(
                id=issued.id,
                doc_type=self.template.doc_type,
                issuer=self.template.issuer_code,
                subject_digest=subject_digest(data.register_number, data.name),
                issued_on=data.issued,
                expires_on=data.expires,
                status=DocumentStatus.ACTIVE,
                status_reason=None,
                status_time=None,
                pdf_sha256=issued.pdf_sha256,
                superseded_by=None,
                created_at=datetime.now(UTC),
            )
        )
