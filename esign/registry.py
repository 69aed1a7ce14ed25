"""Registry of issued documents: what was issued, to whom (as a digest), whether it still stands.

The verification page and ``esign verify`` ask it whether a document was revoked or superseded; a
batch asks it which ids are already issued so that an interrupted batch can resume. Several HTTP
signing processes may share one PostgreSQL database, so ids are unique by primary key, a new record
is one ``INSERT .. ON CONFLICT DO NOTHING`` and every status change is one conditional ``UPDATE``:
the first revocation wins and is kept, and no update is lost. A number is reserved before its PDF
is signed (the reservation names its process, so that one left by a killed process can be taken
over, explicitly and audited), and issuing, revoking and superseding write their audit entry in
the same transaction as the change. A local SQLite file is the default for one machine. Open a
registry with :func:`open_registry`; errors are :class:`RegistryError` lines that never show the
database password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import sqlite3
import threading
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self
from urllib.parse import unquote, urlsplit

from .errors import RegistryError, UsageError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 3
"""The schema this code writes. A database with a newer version is refused, not misread."""

DEFAULT_PATH = Path("esign-registry.db")
"""SQLite file used when no URL is given; a caller with a configured location passes its own."""

_SUBJECT_DOMAIN = "esign-subject-v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS_HEX = re.compile(r"(?:[0-9a-f]{2}){16,32}")
_MAX_ID_LENGTH = 200
_RESERVED_SHA256 = "0" * 64  # pdf_sha256 of a number claimed but not yet signed
_IN_CHUNK = 500  # ids per IN (...) query: well under SQLite's bound-variable limit
_PG_SCHEMA_LOCK = 0x65_73_69_67_6E_72_65_67  # advisory lock key ("esignreg") for migrations
_PG_CONNECT_TIMEOUT = 10
STALE_RESERVATION = timedelta(minutes=15)
"""A reservation this old is abandoned (signing takes seconds): ``--reissue`` may take it over."""


class DocumentStatus(StrEnum):
    """Where a document stands. Revoked is final; superseded documents may still be revoked."""

    ACTIVE = "active"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, kw_only=True)
class IssuedDocument:
    """One issued document as the registry knows it.

    ``subject_digest`` comes from :func:`subject_digest`, never the identifiers themselves: the
    registry answers "is this document still valid" without holding a list of citizens.
    ``created_at`` is filled in by :meth:`Registry.record` when left ``None``.
    """

    id: str
    doc_type: str
    issuer: str
    subject_digest: str
    issued_on: date
    expires_on: date | None
    pdf_sha256: str
    status: DocumentStatus = DocumentStatus.ACTIVE
    status_reason: str | None = None
    status_time: datetime | None = None
    superseded_by: str | None = None
    created_at: datetime | None = None
    fields_digest: str | None = None
    """Hex of the seal's fields digest (claim 8) as issued; ``None`` for records older than
    schema 3. A verifier compares it with the digest in a presented seal to detect replays."""
    issued_by: str | None = None
    """Who issued it: the API client's name, or ``cli:user@host``; ``None`` before schema 3."""

    @property
    def pending(self) -> bool:
        """Reserved for issuing but not signed yet (``pdf_sha256`` is a placeholder)."""
        return self.pdf_sha256 == _RESERVED_SHA256

    def __post_init__(self) -> None:
        _check_id(self.id)
        if self.fields_digest is not None and not _FIELDS_HEX.fullmatch(self.fields_digest):
            raise UsageError(f"document {self.id}: fields_digest is not lower-case hex")
        if self.issued_by is not None and not self.issued_by.strip():
            raise UsageError(f"document {self.id}: issued_by is empty")
        for name in ("doc_type", "issuer"):
            value = getattr(self, name)
            if not value or not value.strip():
                raise UsageError(f"document {self.id}: {name} is empty")
        for name in ("subject_digest", "pdf_sha256"):
            if not _HEX64.fullmatch(getattr(self, name)):
                raise UsageError(f"document {self.id}: {name} is not 64 lower-case hex digits")
        for name in ("issued_on", "expires_on"):
            value = getattr(self, name)
            if isinstance(value, datetime) or not (
                isinstance(value, date) or (value is None and name == "expires_on")
            ):
                raise UsageError(f"document {self.id}: {name} must be a date, not a date and time")
        if self.expires_on is not None and self.expires_on < self.issued_on:
            raise UsageError(f"document {self.id}: expires {self.expires_on} before issued")
        for name in ("status_time", "created_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise UsageError(f"document {self.id}: {name} has no time zone")
        if (self.status is DocumentStatus.ACTIVE) != (self.status_time is None):
            raise UsageError(f"document {self.id}: status {self.status} and status_time disagree")
        if self.status is DocumentStatus.SUPERSEDED and self.superseded_by is None:
            raise UsageError(f"document {self.id}: superseded but superseded_by is empty")


@dataclass(frozen=True)
class Reservation:
    """A number claimed for signing, held until :meth:`Registry.complete` or
    :meth:`Registry.release`. ``taken_over`` describes an interrupted reservation it replaced."""

    doc_id: str
    token: str
    reissue: bool = False
    taken_over: str | None = None


class RegistryUnavailable(RegistryError):
    """The database cannot be opened or failed mid-operation (refused, locked, not a database)."""


class UnknownDocument(RegistryError):
    """No document with this id was ever recorded."""

    def __init__(self, doc_id: str, hint: str = "") -> None:
        super().__init__(f"document {doc_id} is not in the registry{hint}")
        self.doc_id = doc_id


class DuplicateDocument(RegistryError):
    """The id is already recorded; ``document`` is the record that was there first."""

    def __init__(self, document: IssuedDocument, message: str | None = None) -> None:
        if message is None and document.pending:
            message = (
                f"document {document.id} is being issued (reserved at "
                f"{_format_time(document.created_at)}, not signed yet); if that run was "
                "interrupted, re-issuing (--reissue) takes the number over"
            )
        super().__init__(
            message
            or f"document {document.id} is already in the registry "
            f"(issued {document.issued_on}, {document.status})"
        )
        self.document = document


class StatusConflict(RegistryError):
    """The status change is no longer possible; ``document`` is the record as it stands."""

    def __init__(self, message: str, document: IssuedDocument) -> None:
        super().__init__(message)
        self.document = document


class AlreadyRevoked(StatusConflict):
    """A second revocation: the first one (its reason and time) is kept and is in ``document``."""

    def __init__(self, document: IssuedDocument) -> None:
        super().__init__(
            f"document {document.id} was already revoked at "
            f"{_format_time(document.status_time)}: {document.status_reason}",
            document,
        )


def subject_digest(register_number: str, name: str, *, key: bytes | None = None) -> str:
    """Hex SHA-256 identifying a person without storing who they are.

    Both fields are NFC-normalised and case-folded; the register number loses all whitespace, the
    name keeps single spaces between words, so "уб 99112233" and "УБ99112233" match. The hashed
    bytes are UTF-8 of ``"esign-subject-v1\\n" + register_number + "\\n" + name``: a newline cannot
    occur inside either field after normalisation, so the encoding is unambiguous.

    A register number embeds the birth date, so a plain digest can be found by trying candidates;
    a deployment that must resist that passes a secret ``key`` (HMAC-SHA256 instead of SHA-256).
    """
    register = _fold("".join(register_number.split()))
    person = _fold(" ".join(name.split()))
    if not register or not person:
        raise UsageError("subject digest needs a register number and a name")
    message = f"{_SUBJECT_DOMAIN}\n{register}\n{person}".encode()
    if key is not None:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def open_registry(url: str | None, *, default_path: str | PathLike[str] = DEFAULT_PATH) -> Registry:
    """Open (creating or upgrading the schema if needed) the registry at ``url``.

    ``None`` means the SQLite file ``default_path``; ``sqlite:///abs/file.db`` or
    ``sqlite:relative/file.db`` a SQLite file (its directory must exist); ``postgresql://...`` a
    PostgreSQL database, with any libpq URI parameter (``?options=-csearch_path%3Dschema`` selects
    a schema). Raises :class:`RegistryUnavailable` when the database cannot be opened.
    """
    if url is None:
        return Registry(_SqliteBackend(Path(default_path)))
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc or not path or parts.query or parts.fragment:
            raise UsageError(
                f"cannot use registry URL {url}: write sqlite:///absolute/path.db "
                "or sqlite:relative/path.db"
            )
        return Registry(_SqliteBackend(Path(path)))
    if scheme in ("postgresql", "postgres"):
        return Registry(_PostgresBackend(url))
    raise UsageError(
        f"unsupported registry URL {redact_url(url)}: use sqlite:///path/to/file.db "
        "or postgresql://host/database"
    )


def lookup(registry: str | Registry, doc_id: str) -> IssuedDocument | None:
    """The record of ``doc_id`` in an open registry (a server keeps one for all its requests) or
    in the one a URL names, opened for this one lookup. Raises ``RegistryError`` as ``get`` does."""
    if isinstance(registry, str):
        with open_registry(registry) as opened:
            return opened.get(doc_id)
    return registry.get(doc_id)


class Registry:
    """The issued-document registry. Safe to share between threads; across processes the
    database itself keeps ids unique and status changes atomic. Use :func:`open_registry`."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        try:
            _migrate(backend)
        except BaseException:
            backend.close()
            raise

    @property
    def url(self) -> str:
        """Where this registry lives, with any password masked: safe to print."""
        return self._backend.display_url

    def __repr__(self) -> str:
        return f"<Registry {self.url}>"

    def record(self, doc: IssuedDocument) -> IssuedDocument:
        """Record a newly issued, active document and return it as stored.

        Record after the signed PDF is safely written: a batch resumes by skipping recorded ids.
        Raises :class:`DuplicateDocument` if the id exists (the existing record is not changed).
        """
        if doc.status is not DocumentStatus.ACTIVE:
            raise UsageError(
                f"document {doc.id}: only active documents are recorded; "
                "revoke or supersede afterwards so the time and reason are kept"
            )
        stored = doc if doc.created_at is not None else replace(doc, created_at=_now())
        with self._backend.transaction(write=True) as tx:
            inserted = tx.rows(
                f"INSERT INTO esign_documents ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                _to_row(stored),
            )
            if not inserted:
                existing = _get(tx, doc.id)
                assert existing is not None, "a conflicting id must be readable"
                raise DuplicateDocument(existing)
        return stored

    def get(self, doc_id: str) -> IssuedDocument | None:
        """The document as recorded, or ``None`` if this id was never issued."""
        with self._backend.transaction(write=False) as tx:
            return _get(tx, doc_id)

    def revoke(
        self, doc_id: str, reason: str, *, at: datetime | None = None, by: str | None = None
    ) -> IssuedDocument:
        """Revoke a document (active or superseded) and return it as now stored.

        Revocation is final and the first one wins: a second call raises :class:`AlreadyRevoked`
        carrying the first revocation's reason and time, which stay unchanged, so two operators
        (or servers) revoking at once leave exactly one revocation. Raises
        :class:`UnknownDocument` for an id never recorded. ``at`` defaults to now (UTC). With
        ``by`` (the operator or client), the audit entry is written in the same transaction.
        """
        reason = _check_reason(reason)
        when = _utc(at)
        with self._backend.transaction(write=True) as tx:
            rows = tx.rows(
                f"UPDATE esign_documents SET status = ?, status_reason = ?, status_time = ? "
                f"WHERE id = ? AND status <> ? RETURNING {_COLUMNS}",
                (DocumentStatus.REVOKED.value, reason, when, doc_id, DocumentStatus.REVOKED.value),
            )
            if rows:
                revoked = _from_row(rows[0])
                if by is not None:
                    _audit(
                        tx, client=by, action="revoke", key_name="-",
                        document_sha256=revoked.pdf_sha256, document_id=doc_id, detail=reason,
                    )  # fmt: skip
                return revoked
            current = _get(tx, doc_id)
        if current is None:
            raise UnknownDocument(doc_id)
        raise AlreadyRevoked(current)

    def supersede(
        self,
        old_id: str,
        new_id: str,
        reason: str,
        *,
        at: datetime | None = None,
        by: str | None = None,
    ) -> IssuedDocument:
        """Mark active ``old_id`` as replaced by ``new_id`` and return the old record as stored.

        Record the replacement first: ``new_id`` must exist and be active. With ``by``, the audit
        entry is written in the same transaction. Raises
        :class:`UnknownDocument` for either id missing and :class:`StatusConflict` when the old
        document is no longer active (already superseded or revoked) or the new one is not active.
        """
        if old_id == new_id:
            raise UsageError(f"document {old_id} cannot supersede itself")
        reason = _check_reason(reason)
        when = _utc(at)
        with self._backend.transaction(write=True) as tx:
            # Lock both rows in id order so concurrent supersedes cannot deadlock, and so the
            # replacement cannot be revoked between this check and the update.
            locked = tx.rows(
                f"SELECT id, status, superseded_by FROM esign_documents WHERE id IN (?, ?) "
                f"ORDER BY id{self._backend.lock_rows}",
                (old_id, new_id),
            )
            found = {row[0]: (row[1], row[2]) for row in locked}
            if old_id not in found:
                raise UnknownDocument(old_id)
            if new_id not in found:
                raise UnknownDocument(new_id, "; record the replacement before superseding")
            if found[new_id][0] != DocumentStatus.ACTIVE:
                current = _get(tx, new_id)
                assert current is not None
                raise StatusConflict(
                    f"document {old_id} cannot be superseded by {new_id}, which is "
                    f"{found[new_id][0]}",
                    current,
                )
            rows = tx.rows(
                f"UPDATE esign_documents SET status = ?, status_reason = ?, status_time = ?, "
                f"superseded_by = ? WHERE id = ? AND status = ? RETURNING {_COLUMNS}",
                (
                    DocumentStatus.SUPERSEDED.value,
                    reason,
                    when,
                    new_id,
                    old_id,
                    DocumentStatus.ACTIVE.value,
                ),
            )
            if rows:
                old = _from_row(rows[0])
                if by is not None:
                    _audit(
                        tx, client=by, action="supersede", key_name="-",
                        document_sha256=old.pdf_sha256, document_id=old_id,
                        detail=f"superseded by {new_id}: {reason}",
                    )  # fmt: skip
                return old
            current = _get(tx, old_id)
        assert current is not None
        if current.status is DocumentStatus.REVOKED:
            raise StatusConflict(
                f"document {old_id} is revoked and cannot be superseded "
                f"(revoked at {_format_time(current.status_time)})",
                current,
            )
        raise StatusConflict(
            f"document {old_id} is already superseded by {current.superseded_by}", current
        )

    def issued_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are recorded, whatever their status: what a resumed batch must skip."""
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        with self._backend.transaction(write=False) as tx:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                marks = ", ".join("?" for _ in chunk)
                rows = tx.rows(f"SELECT id FROM esign_documents WHERE id IN ({marks})", chunk)
                found.update(row[0] for row in rows)
        return found

    def withdrawn(self) -> list[IssuedDocument]:
        """Every revoked or superseded document, ordered by id (what a trust list publishes)."""
        with self._backend.transaction(write=False) as tx:
            rows = tx.rows(
                f"SELECT {_COLUMNS} FROM esign_documents WHERE status <> ? ORDER BY id",
                (DocumentStatus.ACTIVE.value,),
            )
        return [_from_row(row) for row in rows]

    def reserve_many(self, docs: Sequence[IssuedDocument]) -> list[Reservation | DuplicateDocument]:
        """:meth:`reserve` for a chunk of a batch in ONE transaction (one durable commit instead
        of one per document); a number already recorded or reserved is returned as its
        :class:`DuplicateDocument` in its place, not raised, and the others are reserved. Rows
        are claimed in id order, so two overlapping batches wait for each other, never
        deadlock."""
        for doc in docs:
            if doc.status is not DocumentStatus.ACTIVE:
                raise UsageError(f"document {doc.id}: only active documents are reserved")
        out: dict[int, Reservation | DuplicateDocument] = {}
        with self._backend.transaction(write=True) as tx:
            for i in sorted(range(len(docs)), key=lambda k: docs[k].id):
                out[i] = _reserve_in(tx, docs[i])
        return [out[i] for i in range(len(docs))]

    def reserve(self, doc: IssuedDocument) -> Reservation:
        """Claim ``doc.id`` before its PDF is signed, so that one issuer among concurrent ones
        signs it. Raises :class:`DuplicateDocument` if the id is recorded or reserved.
        :meth:`complete` or :meth:`release` the reservation afterwards."""
        if doc.status is not DocumentStatus.ACTIVE:
            raise UsageError(f"document {doc.id}: only active documents are reserved")
        with self._backend.transaction(write=True) as tx:
            result = _reserve_in(tx, doc)
        if isinstance(result, DuplicateDocument):
            raise result
        return result

    def reserve_reissue(
        self,
        doc_id: str,
        subject: str,
        fields: str | None = None,
        *,
        take_over_after: timedelta = STALE_RESERVATION,
    ) -> Reservation:
        """Claim a recorded document to sign its file again: the lost file of an active document
        for the same subject (and, when both are known, the same fields digest), or a number
        whose issuing was interrupted (a reservation left by a killed process: its owner is dead
        on this host, or it is older than ``take_over_after``). The reservation says which, for
        the audit entry. Only one concurrent caller wins; the others get
        :class:`DuplicateDocument`; a live reservation is never taken over."""
        _check_id(doc_id)
        with self._backend.transaction(write=True) as tx:
            rows = tx.rows(
                "SELECT pdf_sha256, status, subject_digest, fields_digest, reserved_by, "
                "reserved_at, created_at FROM esign_documents WHERE id = ?"
                + self._backend.lock_rows,
                (doc_id,),
            )
            doc = _get(tx, doc_id)
            if not rows or doc is None:
                raise UnknownDocument(doc_id)
            digest, status, recorded_subject, recorded_fields, owner, since, created = rows[0]
            interrupted = owner is not None or digest == _RESERVED_SHA256
            taken_over: str | None = None
            if interrupted:
                since = _as_utc(since if since is not None else created)
                if not _abandoned(owner, since, take_over_after):
                    raise DuplicateDocument(
                        doc,
                        f"document {doc_id} is being issued by {_owner_text(owner)} since "
                        f"{_format_time(since)}; it is taken over only once that process has "
                        f"ended, or after {int(take_over_after.total_seconds() // 60)} minutes",
                    )
                taken_over = (
                    f"took over the reservation of {_owner_text(owner)} "
                    f"from {_format_time(since)}, interrupted"
                )
            if status != DocumentStatus.ACTIVE.value or recorded_subject != subject:
                raise StatusConflict(
                    f"document {doc_id} is {doc.status.value} or for another subject; "
                    "its file is not re-issued",
                    doc,
                )
            if fields is not None and recorded_fields is not None and recorded_fields != fields:
                raise StatusConflict(
                    f"document {doc_id} was issued with other data (fields digest "
                    f"{recorded_fields}, now {fields}); issue a new number and supersede it",
                    doc,
                )
            token = _reservation_token()
            tx.rows(
                "UPDATE esign_documents SET reserved_by = ?, reserved_at = ?, "
                "fields_digest = COALESCE(fields_digest, ?) WHERE id = ?",
                (token, _now(), fields, doc_id),
            )
        return Reservation(doc_id, token, reissue=digest != _RESERVED_SHA256, taken_over=taken_over)

    def complete(
        self,
        reservation: Reservation,
        pdf_sha256: str,
        *,
        client: str | None = None,
        key_name: str = "",
    ) -> IssuedDocument:
        """Point a reserved document at its signed file and return it as stored. With
        ``client``, the audit entry ("issue" or "reissue") is written in the same transaction:
        one entry per document signed, never one without the other."""
        _check_digest(reservation.doc_id, pdf_sha256)
        with self._backend.transaction(write=True) as tx:
            result = _complete_in(tx, reservation, pdf_sha256, client, key_name)
        if isinstance(result, RegistryError):
            raise result
        return result

    def complete_many(
        self,
        signed: Sequence[tuple[Reservation, str]],
        *,
        client: str | None = None,
        key_name: str = "",
    ) -> list[IssuedDocument | RegistryError]:
        """:meth:`complete` for a chunk of a batch in ONE transaction: every document's digest
        and audit entry are committed together, durably, before the caller renames any of
        their files into place. A reservation no longer held is returned as its error in its
        place (that document is not issued), not raised."""
        for reservation, digest in signed:
            _check_digest(reservation.doc_id, digest)
        out: dict[int, IssuedDocument | RegistryError] = {}
        with self._backend.transaction(write=True) as tx:
            for i in sorted(range(len(signed)), key=lambda k: signed[k][0].doc_id):
                reservation, digest = signed[i]
                out[i] = _complete_in(tx, reservation, digest, client, key_name)
        return [out[i] for i in range(len(signed))]

    def release(self, reservation: Reservation) -> None:
        """Give up a reservation whose PDF was not written: forget a number never issued, or
        leave a re-issued document pointing at its previous file. A reservation taken over by
        someone else meanwhile is not touched."""
        self.release_many([reservation])

    def release_many(self, reservations: Iterable[Reservation]) -> None:
        """:meth:`release` for several reservations, in one transaction."""
        held = sorted(reservations, key=lambda r: r.doc_id)
        if not held:
            return
        with self._backend.transaction(write=True) as tx:
            for reservation in held:
                tx.rows(
                    "DELETE FROM esign_documents "
                    "WHERE id = ? AND reserved_by = ? AND pdf_sha256 = ?",
                    (reservation.doc_id, reservation.token, _RESERVED_SHA256),
                )
                tx.rows(
                    "UPDATE esign_documents SET reserved_by = NULL, reserved_at = NULL "
                    "WHERE id = ? AND reserved_by = ?",
                    (reservation.doc_id, reservation.token),
                )

    def audit(
        self,
        *,
        client: str,
        action: str,
        key_name: str,
        document_sha256: str,
        document_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one entry to the audit log (there is no way to change or delete one)."""
        with self._backend.transaction(write=True) as tx:
            _audit(
                tx, client=client, action=action, key_name=key_name,
                document_sha256=document_sha256, document_id=document_id, detail=detail,
            )  # fmt: skip

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries, newest first (for operators and tests)."""
        with self._backend.transaction(write=False) as tx:
            rows = tx.rows(
                f"SELECT {', '.join(_AUDIT_KEYS)} FROM esign_audit ORDER BY seq DESC LIMIT ?",
                (limit,),
            )
        return [dict(zip(_AUDIT_KEYS, row, strict=True)) for row in rows]

    def close(self) -> None:
        """Release the database connection; the registry cannot be used afterwards."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- storage ---------------------------------------------------------------------------------

_COLUMNS = (
    "id, doc_type, issuer, subject_digest, issued_on, expires_on, status, status_reason, "
    "status_time, pdf_sha256, superseded_by, created_at, fields_digest, issued_by"
)

_V1_DDL = (
    """CREATE TABLE esign_documents (
        id TEXT NOT NULL PRIMARY KEY,
        doc_type TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject_digest TEXT NOT NULL,
        issued_on {date} NOT NULL,
        expires_on {date},
        status TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'superseded')),
        status_reason TEXT,
        status_time {timestamp},
        pdf_sha256 TEXT NOT NULL,
        superseded_by TEXT REFERENCES esign_documents (id),
        created_at {timestamp} NOT NULL,
        CHECK ((status = 'active') = (status_time IS NULL)),
        CHECK (status <> 'superseded' OR superseded_by IS NOT NULL)
    )""",
    "CREATE INDEX esign_documents_subject ON esign_documents (subject_digest)",
)

# Version 2: the audit log of signing operations, append-only at the database level so that no
# code path (the HTTP API included) can edit or delete an entry.
_V2_AUDIT_TABLE = """CREATE TABLE esign_audit (
        seq {serial} PRIMARY KEY,
        at {timestamp} NOT NULL,
        client TEXT NOT NULL,
        action TEXT NOT NULL,
        key_name TEXT NOT NULL,
        document_sha256 TEXT NOT NULL,
        document_id TEXT
    )"""
_V2_DDL: dict[str, Sequence[str]] = {
    "sqlite": (
        _V2_AUDIT_TABLE.replace("{serial}", "INTEGER"),
        "CREATE TRIGGER esign_audit_no_update BEFORE UPDATE ON esign_audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER esign_audit_no_delete BEFORE DELETE ON esign_audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ),
    "postgresql": (
        _V2_AUDIT_TABLE.replace("{serial}", "BIGSERIAL"),
        "CREATE OR REPLACE FUNCTION esign_audit_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE TRIGGER esign_audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON esign_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION esign_audit_append_only()",
    ),
}

# Version 3: what a seal must match (its fields digest) and who issued the document; a running
# reservation's owner and time, so that one left by a killed process can be taken over; a free
# text detail on audit entries (the reason of a revocation, a taken-over reservation).
_V3_DDL = (
    "ALTER TABLE esign_documents ADD COLUMN fields_digest TEXT",
    "ALTER TABLE esign_documents ADD COLUMN issued_by TEXT",
    "ALTER TABLE esign_documents ADD COLUMN reserved_by TEXT",
    "ALTER TABLE esign_documents ADD COLUMN reserved_at {timestamp}",
    "ALTER TABLE esign_audit ADD COLUMN detail TEXT",
)

_MIGRATIONS: dict[int, Sequence[str] | dict[str, Sequence[str]]] = {
    1: _V1_DDL,
    2: _V2_DDL,
    3: _V3_DDL,
}


class _Tx(Protocol):
    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) and return its rows, ``[]`` if it has none."""
        ...


class _Backend(ABC):
    display_url: str
    lock_rows: str  # suffix that row-locks a SELECT inside a write transaction
    types: ClassVar[Mapping[str, str]]  # column types for the DDL

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractContextManager[_Tx]:
        """One transaction, serialised with other users of this object; commits on success."""

    @abstractmethod
    def lock_schema(self, tx: _Tx) -> None:
        """Keep two processes from migrating the schema at the same time."""

    @abstractmethod
    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        adapted = [v.isoformat() if isinstance(v, date) else v for v in params]
        cursor = self._conn.execute(sql, adapted)
        return [tuple(row) for row in cursor.fetchall()]


class _SqliteBackend(_Backend):
    """SQLite in WAL mode: readers never wait; writers take the lock up front (BEGIN IMMEDIATE),
    so a read-then-write never fails half-way with "database is locked"."""

    lock_rows = ""
    types: ClassVar[Mapping[str, str]] = {"date": "TEXT", "timestamp": "TEXT", "kind": "sqlite"}

    def __init__(self, path: Path) -> None:
        self.display_url = f"sqlite://{path}" if path.is_absolute() else f"sqlite:{path}"
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise RegistryUnavailable(f"cannot open registry {self.display_url}: {e}") from e
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            self._conn.close()
            raise RegistryUnavailable(f"cannot open registry {self.display_url}: {e}") from e

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[_Tx]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield _SqliteTx(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                if type(e) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                    raise  # integrity or programming errors are bugs here, not the database's
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise RegistryUnavailable(f"registry {self.display_url} failed: {e}") from e

    def lock_schema(self, tx: _Tx) -> None:
        pass  # BEGIN IMMEDIATE already excludes other writers

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PostgresTx:
    def __init__(self, cursor: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self._cursor = cursor

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), params)
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()


class _PostgresBackend(_Backend):
    """PostgreSQL through psycopg 3, one connection per registry, reopened if it was lost.

    Transactions run at READ COMMITTED: each status change is a single conditional UPDATE, and
    PostgreSQL re-checks its WHERE clause after waiting for a concurrent writer, so the loser
    sees the winner's row and changes nothing."""

    lock_rows = " FOR UPDATE"
    types: ClassVar[Mapping[str, str]] = {
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
        "kind": "postgresql",
    }

    def __init__(self, url: str) -> None:
        self.display_url = redact_url(url)
        self._url = url
        self._lock = threading.Lock()
        self._conn = self._connect(f"cannot open registry {self.display_url}")

    def _connect(self, context: str) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError as e:
            raise RegistryError(
                f"{context}: PostgreSQL support needs psycopg (pip install 'psycopg[binary]')"
            ) from e
        try:
            extra: dict[str, Any] = {}
            if "connect_timeout" not in conninfo_to_dict(self._url):
                extra["connect_timeout"] = _PG_CONNECT_TIMEOUT
            return psycopg.connect(self._url, autocommit=True, **extra)
        except psycopg.Error as e:
            # Not chained: libpq's own text may hold the password, and a logged traceback shows it.
            raise RegistryUnavailable(f"{context}: {_pg_reason(e, self._url)}") from None

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[_Tx]:
        import psycopg

        with self._lock:
            if self._conn.closed:
                self._conn = self._connect(f"cannot reopen registry {self.display_url}")
            try:
                with self._conn.transaction(), self._conn.cursor() as cursor:
                    yield _PostgresTx(cursor)
            except psycopg.OperationalError as e:
                raise RegistryUnavailable(
                    f"registry {self.display_url} failed: {_pg_reason(e, self._url)}"
                ) from None

    def lock_schema(self, tx: _Tx) -> None:
        tx.rows("SELECT pg_advisory_xact_lock(?)", (_PG_SCHEMA_LOCK,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _migrate(backend: _Backend) -> None:
    """Bring the schema to SCHEMA_VERSION, one version at a time, each in the same transaction
    as its version row: a crash leaves the old schema, never half of the new one."""
    with backend.transaction(write=True) as tx:
        backend.lock_schema(tx)
        tx.rows("CREATE TABLE IF NOT EXISTS esign_registry_schema (version INTEGER NOT NULL)")
        current = tx.rows("SELECT MAX(version) FROM esign_registry_schema")[0][0] or 0
        if current > SCHEMA_VERSION:
            raise RegistryError(
                f"registry {backend.display_url} has schema version {current}, newer than "
                f"this esign understands ({SCHEMA_VERSION}); upgrade esign"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            steps = _MIGRATIONS[version]
            if isinstance(steps, dict):
                steps = steps[backend.types["kind"]]
            for statement in steps:
                tx.rows(statement.format(**backend.types) if "{" in statement[:200] else statement)
            tx.rows("INSERT INTO esign_registry_schema (version) VALUES (?)", (version,))


_AUDIT_KEYS = (
    "seq", "at", "client", "action", "key_name", "document_sha256", "document_id", "detail",
)  # fmt: skip


def _audit(
    tx: _Tx,
    *,
    client: str,
    action: str,
    key_name: str,
    document_sha256: str,
    document_id: str | None,
    detail: str | None,
) -> None:
    tx.rows(
        "INSERT INTO esign_audit (at, client, action, key_name, document_sha256, document_id, "
        "detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (_now(), client, action, key_name, document_sha256, document_id, detail),
    )


def _reserve_in(tx: _Tx, doc: IssuedDocument) -> Reservation | DuplicateDocument:
    """Claim ``doc.id`` inside ``tx``: its reservation, or the record that holds the id."""
    token = _reservation_token()
    stored = replace(doc, pdf_sha256=_RESERVED_SHA256, created_at=doc.created_at or _now())
    inserted = tx.rows(
        f"INSERT INTO esign_documents ({_COLUMNS}, reserved_by, reserved_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (*_to_row(stored), token, _now()),
    )
    if inserted:
        return Reservation(doc.id, token)
    existing = _get(tx, doc.id)
    assert existing is not None, "a conflicting id must be readable"
    return DuplicateDocument(existing)


def _check_digest(doc_id: str, pdf_sha256: str) -> None:
    if not _HEX64.fullmatch(pdf_sha256) or pdf_sha256 == _RESERVED_SHA256:
        raise UsageError(f"document {doc_id}: pdf_sha256 is not a document digest")


def _complete_in(
    tx: _Tx, reservation: Reservation, pdf_sha256: str, client: str | None, key_name: str
) -> IssuedDocument | RegistryError:
    """Point a reserved document at its signed file inside ``tx``, with its audit entry in the
    same transaction; the error instead when the reservation is no longer held."""
    doc_id = reservation.doc_id
    rows = tx.rows(
        "UPDATE esign_documents SET pdf_sha256 = ?, reserved_by = NULL, "
        f"reserved_at = NULL WHERE id = ? AND reserved_by = ? RETURNING {_COLUMNS}",
        (pdf_sha256, doc_id, reservation.token),
    )
    if rows and client is not None:
        _audit(
            tx,
            client=client,
            action="reissue" if reservation.reissue else "issue",
            key_name=key_name,
            document_sha256=pdf_sha256,
            document_id=doc_id,
            detail=reservation.taken_over,
        )
    if rows:
        return _from_row(rows[0])
    doc = _get(tx, doc_id)
    if doc is None:
        return UnknownDocument(doc_id)
    return StatusConflict(f"document {doc_id} is no longer reserved for this issuer", doc)


def _reservation_token() -> str:
    """Who holds a reservation: host and process (to tell a dead owner), and a random part."""
    return f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"


def _owner_text(owner: str | None) -> str:
    if owner is None:
        return "an earlier esign"
    host, _, rest = owner.partition(" ")
    return f"process {rest.partition(' ')[0]} on {host}"


def _abandoned(owner: str | None, since: datetime, stale_after: timedelta) -> bool:
    """Whether a reservation's issuer can no longer finish it: its process is gone from this
    host, or it has run far longer than any signing does."""
    if _now() - since >= stale_after:
        return True
    if owner is None:
        return False
    host, _, rest = owner.partition(" ")
    pid = rest.partition(" ")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, owned by another user
    return False


def _get(tx: _Tx, doc_id: str) -> IssuedDocument | None:
    rows = tx.rows(f"SELECT {_COLUMNS} FROM esign_documents WHERE id = ?", (doc_id,))
    return _from_row(rows[0]) if rows else None


def _to_row(doc: IssuedDocument) -> tuple[object, ...]:
    return (
        doc.id,
        doc.doc_type,
        doc.issuer,
        doc.subject_digest,
        doc.issued_on,
        doc.expires_on,
        doc.status.value,
        doc.status_reason,
        _utc(doc.status_time) if doc.status_time else None,
        doc.pdf_sha256,
        doc.superseded_by,
        _utc(doc.created_at),
        doc.fields_digest,
        doc.issued_by,
    )


def _from_row(row: Sequence[Any]) -> IssuedDocument:
    return IssuedDocument(
        id=row[0],
        doc_type=row[1],
        issuer=row[2],
        subject_digest=row[3],
        issued_on=_as_date(row[4]),
        expires_on=None if row[5] is None else _as_date(row[5]),
        status=DocumentStatus(row[6]),
        status_reason=row[7],
        status_time=None if row[8] is None else _as_utc(row[8]),
        pdf_sha256=row[9],
        superseded_by=row[10],
        created_at=_as_utc(row[11]),
        fields_digest=row[12],
        issued_by=row[13],
    )


# --- small conversions -----------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with its password (user info or ``password=`` parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition(":")[0] + "://…"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    query = "&".join(
        "password=***" if item.partition("=")[0].lower() == "password" else item
        for item in parts.query.split("&")
    )
    return redact_secrets(parts._replace(netloc=netloc, query=query).geturl(), url)


def _url_secrets(url: str) -> list[str]:
    """The passwords written in ``url``, raw and percent-decoded, found without parsing it: a
    malformed URL (the one whose error message repeats it) still has its password found."""
    found: list[str] = []
    rest = url.partition("://")[2] if "://" in url else url
    authority = rest.partition("?")[0]
    if "@" in authority:
        found.append(authority.rpartition("@")[0].partition(":")[2])
    found += re.findall(r"(?i)(?:^|[?&\s])password\s*=\s*([^&\s]*)", url)
    secrets = {s for raw in found for s in (raw, unquote(raw)) if s and s != "***"}
    return sorted(secrets, key=len, reverse=True)


def redact_secrets(text: str, url: str) -> str:
    """``text`` (an error message from any layer) with every password in ``url`` masked."""
    for secret in _url_secrets(url):
        text = text.replace(secret, "***")
    return text


def _pg_reason(error: Exception, url: str) -> str:
    """libpq's message, first line, without the "connection to server at ... failed:" preamble
    (the URL is already in our message) and without any password from ``url`` (libpq repeats a
    URL it cannot parse)."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r"^connection to server .*? failed: ", "", text)
    text = re.sub(r"^FATAL:\s+", "", text)
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return redact_secrets(text, url)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _check_id(doc_id: str) -> None:
    if (
        not isinstance(doc_id, str)
        or not doc_id
        or len(doc_id) > _MAX_ID_LENGTH
        or doc_id != doc_id.strip()
        or not doc_id.isprintable()
    ):
        raise UsageError(
            f"document id {doc_id!r} must be 1-{_MAX_ID_LENGTH} printable characters "
            "without surrounding spaces"
        )


def _check_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise UsageError("a reason is required")
    return reason


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return _now()
    if value.utcoffset() is None:
        raise UsageError(f"time {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _as_utc(value: datetime | str) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.astimezone(UTC)


def _format_time(value: datetime | None) -> str:
    return "an unknown time" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "AlreadyRevoked",
    "DocumentStatus",
    "DuplicateDocument",
    "IssuedDocument",
    "Registry",
    "RegistryUnavailable",
    "Reservation",
    "StatusConflict",
    "UnknownDocument",
    "open_registry",
    "redact_secrets",
    "redact_url",
    "subject_digest",
]
