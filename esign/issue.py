"""Issue a certificate: render it, stamp the QR seal, sign it (PAdES certification signature),
write it atomically and record it in the registry.

:class:`CertificateIssuer` is built once per template and keys and reused for every document of a
batch, like :class:`~esign.pades.DocumentSigner`.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EsignError, RegistryError
from .pades import DocumentSigner
from .render import SealBlock, render_certificate
from .seal import SealClaims, SealSigner, check_issuer, fields_digest
from .template import DocumentData, Template

if TYPE_CHECKING:
    from .registry import IssuedDocument, Registry, Reservation

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
        operator: str | None = None,
        key_name: str = "",
    ) -> None:
        check_issuer(template.issuer_code, seal_signer.certificate)  # before anything is signed
        self.template = template
        self.pdf_signer = pdf_signer
        self.seal_signer = seal_signer
        self.registry = registry
        self.base_url = base_url.rstrip("/")
        self.operator = operator  # audit log client, e.g. "cli:user@host"; None: no audit
        self.key_name = key_name

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

    def issue_to(
        self, data: DocumentData, out: Path, *, reissue: bool = False, by: str | None = None
    ) -> Issued:
        """Write the signed certificate to ``out`` and record it; the file appears complete or
        not at all, and the registry only lists documents whose file was written.

        The number is reserved in the registry before signing, so of concurrent issuers exactly
        one signs it; a number already there is refused with :class:`DuplicateDocument` before
        anything is signed. ``reissue`` re-issues a lost file (``out`` missing) of an active
        document for the same subject and data, or takes over a number whose issuing was
        interrupted (its process killed), and says so in the audit entry. ``by`` is the audit
        log's client (default: the issuer's ``operator``).
        """
        if reissue and out.exists():
            reissue = False  # not lost: the reservation below refuses a recorded number
        with self._reserved(data, reissue=reissue, by=by) as hold:
            if hold.taken_over:
                _remove_parts(out)  # the interrupted run's half-written file, if any
            signed, issued = self.render_signed(data)
            tmp = _write_temp(out, signed)
            try:
                hold.finish(issued.pdf_sha256)
                os.replace(tmp, out)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return Issued(issued.id, issued.number, issued.url, issued.pdf_sha256, out)

    def issue_many(
        self,
        items: Sequence[tuple[DocumentData, Path]],
        *,
        reissue: bool = False,
        by: str | None = None,
    ) -> list[Issued | EsignError]:
        """:meth:`issue_to` for a chunk of a batch, one result (or error) per item, with two
        registry commits for the whole chunk instead of two per document (each commit waits
        for the disk): the numbers are reserved together before any is signed, and the signed
        digests with their audit entries are committed together before any file is renamed
        into place. A document that fails is released; the others go on."""
        registry = self.registry
        if registry is None:
            return [self._try_issue(data, out, reissue) for data, out in items]
        from .registry import DuplicateDocument

        client = by or self.operator
        results: dict[int, Issued | EsignError] = {}
        held: dict[int, Reservation] = {}
        temps: dict[int, tuple[Path, Issued]] = {}
        kept: set[int] = set()  # completed in the registry: not released
        docs = [
            self._document(data, document_id(self.template.issuer_code, data.number), by)
            for data, _ in items
        ]
        try:
            for i, first in enumerate(registry.reserve_many(docs)):
                claim: Reservation | EsignError = first
                if isinstance(first, DuplicateDocument) and reissue and not items[i][1].exists():
                    claim = self._claim_reissue(docs[i])
                if isinstance(claim, EsignError):
                    results[i] = claim
                else:
                    held[i] = claim
            for i, reservation in held.items():
                data, out = items[i]
                try:
                    if reservation.taken_over is not None:
                        _remove_parts(out)
                    signed, issued = self.render_signed(data)
                    temps[i] = (_write_temp(out, signed), issued)
                except EsignError as e:
                    results[i] = e
            order = list(temps)
            stored: Sequence[IssuedDocument | EsignError]
            try:
                stored = registry.complete_many(
                    [(held[i], temps[i][1].pdf_sha256) for i in order],
                    client=client,
                    key_name=self.key_name,
                )
            except Exception as e:  # the database's own refusal too (e.g. a trigger aborts)
                refused = (
                    e
                    if isinstance(e, EsignError)
                    else RegistryError(f"the registry did not record the signed documents: {e}")
                )
                stored = [refused] * len(order)
            for i, record in zip(order, stored, strict=True):
                tmp, issued = temps.pop(i)
                if isinstance(record, EsignError):
                    tmp.unlink(missing_ok=True)
                    results[i] = record
                    continue
                kept.add(i)
                out = items[i][1]
                os.replace(tmp, out)
                results[i] = Issued(issued.id, issued.number, issued.url, issued.pdf_sha256, out)
        finally:
            for tmp, _ in temps.values():
                tmp.unlink(missing_ok=True)
            with suppress(EsignError):  # an unreleased number is taken over by --reissue
                registry.release_many(r for i, r in held.items() if i not in kept)
        return [results[i] for i in range(len(items))]

    def _try_issue(self, data: DocumentData, out: Path, reissue: bool) -> Issued | EsignError:
        try:
            return self.issue_to(data, out, reissue=reissue)
        except EsignError as e:
            return e

    def _claim_reissue(self, doc: IssuedDocument) -> Reservation | EsignError:
        """A lost file's number or an interrupted reservation, claimed as :meth:`_reserved`
        does with ``reissue``: a number released meanwhile is reserved afresh."""
        from .registry import UnknownDocument

        registry = self.registry
        assert registry is not None
        try:
            try:
                return registry.reserve_reissue(doc.id, doc.subject_digest, doc.fields_digest)
            except UnknownDocument:
                return registry.reserve(doc)
        except EsignError as e:
            return e

    def issue_bytes(self, data: DocumentData, *, by: str | None = None) -> tuple[bytes, Issued]:
        """The signed certificate, reserved before signing and recorded (with its audit entry)
        before it is returned, as :meth:`issue_to` does for a file (used by the HTTP API)."""
        with self._reserved(data, reissue=False, by=by) as hold:
            signed, issued = self.render_signed(data)
            hold.finish(issued.pdf_sha256)
        return signed, issued

    @contextmanager
    def _reserved(self, data: DocumentData, *, reissue: bool, by: str | None) -> Iterator[_Hold]:
        """Hold the number in the registry while the body signs; the body records the signed
        digest (and the audit entry, in the same transaction) with ``hold.finish``. Anything
        raised before that releases the number."""
        from .registry import UnknownDocument

        registry = self.registry
        if registry is None:
            yield _Hold(None, None, "", None)
            return
        doc = self._document(data, document_id(self.template.issuer_code, data.number), by)
        reservation = None
        if reissue:
            with suppress(UnknownDocument):  # not recorded: issued like any new number
                reservation = registry.reserve_reissue(
                    doc.id, doc.subject_digest, doc.fields_digest
                )
        if reservation is None:
            reservation = registry.reserve(doc)
        hold = _Hold(registry, reservation, self.key_name, by or self.operator)
        try:
            yield hold
        except BaseException:
            if not hold.done:
                registry.release(reservation)
            raise

    def _document(self, data: DocumentData, doc_id: str, by: str | None) -> IssuedDocument:
        from .registry import DocumentStatus, IssuedDocument, subject_digest

        return IssuedDocument(
            id=doc_id,
            doc_type=self.template.doc_type,
            issuer=self.template.issuer_code,
            subject_digest=subject_digest(data.register_number, data.name),
            issued_on=data.issued,
            expires_on=data.expires,
            status=DocumentStatus.ACTIVE,
            pdf_sha256="0" * 64,
            created_at=datetime.now(UTC),
            fields_digest=self.claims(data).fields_digest.hex(),
            issued_by=by or self.operator,
        )


class _Hold:
    """A reserved number while its document is signed (no registry: nothing to hold)."""

    def __init__(
        self,
        registry: Registry | None,
        reservation: Reservation | None,
        key_name: str,
        client: str | None,
    ) -> None:
        self._registry = registry
        self._reservation = reservation
        self._key_name = key_name
        self._client = client
        self.done = False
        self.taken_over = reservation is not None and reservation.taken_over is not None

    def finish(self, digest: str) -> None:
        """Record the signed file's digest, with its audit entry."""
        if self._registry is not None and self._reservation is not None:
            self._registry.complete(
                self._reservation, digest, client=self._client, key_name=self._key_name
            )
        self.done = True


def _remove_parts(out: Path) -> None:
    """Delete the temporary files :func:`_write_temp` left beside ``out`` (a killed issuer's)."""
    target = out.resolve()
    for part in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        part.unlink(missing_ok=True)


def _write_temp(out: Path, data: bytes) -> Path:
    """``data`` in a temporary file beside ``out``, to be renamed over it once recorded."""
    target = out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp creates 0600; outputs are ordinary files
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
