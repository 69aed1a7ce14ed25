"""The issued-document registry against both real backends: a SQLite file and the PostgreSQL server
on 127.0.0.1:5432 (CI starts it; if it is down these tests fail, they never skip). Each PostgreSQL
test gets a fresh schema, dropped afterwards, so concurrent runs do not collide."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import sqlite3
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from esign.errors import RegistryError, UsageError
from esign.registry import (
    AlreadyRevoked,
    DocumentStatus,
    DuplicateDocument,
    IssuedDocument,
    Registry,
    RegistryUnavailable,
    Reservation,
    StatusConflict,
    UnknownDocument,
    open_registry,
    subject_digest,
)

POSTGRES_ENV = "ESIGN_TEST_POSTGRES"
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _doc(doc_id: str, **changes: Any) -> IssuedDocument:
    fields: dict[str, Any] = {
        "id": doc_id,
        "doc_type": "Оршин суугаа хаягийн тодорхойлолт",
        "issuer": "Улсын бүртгэлийн ерөнхий газар",
        "subject_digest": subject_digest("УБ99112233", "Батын Болд"),
        "issued_on": date(2025, 3, 1),
        "expires_on": date(2025, 6, 1),
        "pdf_sha256": hashlib.sha256(doc_id.encode()).hexdigest(),
    }
    fields.update(changes)
    return IssuedDocument(**fields)


def _one_line(error: Exception) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL; fails (never skips) when it is not reachable."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as e:
        pytest.fail(
            f"PostgreSQL for the registry tests is not reachable at {POSTGRES_URL}: "
            f"{str(e).splitlines()[0]}. Start it (CI does) or point {POSTGRES_ENV} at one.",
            pytrace=False,
        )
    return POSTGRES_URL


@pytest.fixture()
def pg_url(postgres_url: str) -> Iterator[str]:
    """A registry URL whose search_path is a schema of its own, dropped after the test."""
    schema = f"esign_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def registry(registry_url: str) -> Iterator[Registry]:
    with open_registry(registry_url) as reg:
        yield reg


def _raw_execute(url: str, statement: str) -> None:
    """Reach past the registry, as another program (or an attacker) with database access would."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)


# --- records -----------------------------------------------------------------------------------


def test_record_get_round_trip(registry: Registry) -> None:
    stored = registry.record(_doc("ХУР-2025-000001"))
    assert stored.created_at is not None and stored.created_at.tzinfo is not None
    assert registry.get("ХУР-2025-000001") == stored
    assert stored.status is DocumentStatus.ACTIVE
    assert (stored.status_reason, stored.status_time, stored.superseded_by) == (None, None, None)
    assert registry.get("ХУР-2025-000002") is None


def test_record_keeps_given_creation_time_and_open_ended_expiry(registry: Registry) -> None:
    given = datetime(2025, 3, 1, 17, 0, tzinfo=timezone(timedelta(hours=8)))  # Ulaanbaatar
    stored = registry.record(_doc("A-1", expires_on=None, created_at=given))
    got = registry.get("A-1")
    assert got == stored
    assert got.expires_on is None and got.created_at == given
    assert got.created_at is not None and got.created_at.utcoffset() == timedelta(0)


def test_duplicate_id_refused(registry: Registry) -> None:
    first = registry.record(_doc("A-1"))
    with pytest.raises(DuplicateDocument) as caught:
        registry.record(_doc("A-1", issuer="Someone else", pdf_sha256="0" * 64))
    assert "A-1" in _one_line(caught.value) and "already in the registry" in str(caught.value)
    assert caught.value.exit_code == 9
    assert caught.value.document == first
    assert registry.get("A-1") == first


def test_only_active_documents_are_recorded(registry: Registry) -> None:
    revoked = _doc("A-1", status=DocumentStatus.REVOKED, status_reason="x", status_time=T0)
    with pytest.raises(UsageError, match="only active"):
        registry.record(revoked)
    assert registry.get("A-1") is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"subject_digest": "ABC"}, "subject_digest"),
        ({"pdf_sha256": "F" * 64}, "pdf_sha256"),
        ({"expires_on": date(2025, 2, 1)}, "before issued"),
        ({"issued_on": datetime(2025, 3, 1, tzinfo=UTC)}, "issued_on"),
        ({"created_at": datetime(2025, 3, 1)}, "time zone"),
        ({"id": " A-1"}, "document id"),
        ({"id": ""}, "document id"),
        ({"issuer": "  "}, "issuer"),
        ({"status": DocumentStatus.REVOKED}, "disagree"),
    ],
)
def test_malformed_document_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        _doc("A-1", **changes)


# --- revocation --------------------------------------------------------------------------------


def test_revoke_records_reason_and_time(registry_url: str, registry: Registry) -> None:
    registry.record(_doc("A-1"))
    revoked = registry.revoke("A-1", "хаяг   буруу\nбичигдсэн", at=T0)
    assert revoked.status is DocumentStatus.REVOKED
    assert revoked.status_reason == "хаяг буруу бичигдсэн"
    assert revoked.status_time == T0
    registry.close()
    with open_registry(registry_url) as reopened:
        assert reopened.get("A-1") == revoked


def test_revoke_defaults_to_now(registry: Registry) -> None:
    registry.record(_doc("A-1"))
    before = datetime.now(UTC)
    revoked = registry.revoke("A-1", "lost")
    assert revoked.status_time is not None
    assert before <= revoked.status_time <= datetime.now(UTC)


def test_second_revocation_keeps_the_first(registry: Registry) -> None:
    registry.record(_doc("A-1"))
    first = registry.revoke("A-1", "issued in error", at=T0)
    with pytest.raises(AlreadyRevoked) as caught:
        registry.revoke("A-1", "again", at=T0 + timedelta(days=1))
    assert _one_line(caught.value) == (
        "document A-1 was already revoked at 2025-03-01T09:30:15Z: issued in error"
    )
    assert caught.value.document == first == registry.get("A-1")


def test_revoke_unknown_id(registry: Registry) -> None:
    with pytest.raises(UnknownDocument) as caught:
        registry.revoke("NO-SUCH-1", "whatever")
    assert _one_line(caught.value) == "document NO-SUCH-1 is not in the registry"
    assert isinstance(caught.value, RegistryError) and caught.value.exit_code == 9


def test_revoke_needs_a_reason_and_an_aware_time(registry: Registry) -> None:
    registry.record(_doc("A-1"))
    with pytest.raises(UsageError, match="reason"):
        registry.revoke("A-1", " \n ")
    with pytest.raises(UsageError, match="time zone"):
        registry.revoke("A-1", "lost", at=datetime(2025, 3, 1))
    got = registry.get("A-1")
    assert got is not None and got.status is DocumentStatus.ACTIVE


# --- supersession ------------------------------------------------------------------------------


def test_supersede(registry: Registry) -> None:
    registry.record(_doc("A-1"))
    new = registry.record(_doc("A-2"))
    old = registry.supersede("A-1", "A-2", "address corrected", at=T0)
    assert old.status is DocumentStatus.SUPERSEDED
    assert (old.superseded_by, old.status_reason, old.status_time) == (
        "A-2",
        "address corrected",
        T0,
    )
    assert registry.get("A-1") == old
    assert registry.get("A-2") == new

    with pytest.raises(StatusConflict, match="already superseded by A-2"):
        registry.supersede("A-1", "A-2", "twice")
    registry.record(_doc("A-3"))
    with pytest.raises(StatusConflict, match="already superseded by A-2"):
        registry.supersede("A-1", "A-3", "again")
    assert registry.get("A-1") == old

    # A superseded document can still be revoked (fraud found later); it keeps its successor.
    revoked = registry.revoke("A-1", "forged application", at=T0 + timedelta(hours=1))
    assert (revoked.status, revoked.superseded_by) == (DocumentStatus.REVOKED, "A-2")


def test_supersede_refusals(registry: Registry) -> None:
    registry.record(_doc("A-1"))
    registry.record(_doc("A-2"))
    with pytest.raises(UnknownDocument, match="A-9 is not in the registry; record the replacement"):
        registry.supersede("A-1", "A-9", "x")
    with pytest.raises(UnknownDocument, match="A-8 is not in the registry"):
        registry.supersede("A-8", "A-2", "x")
    with pytest.raises(UsageError, match="itself"):
        registry.supersede("A-1", "A-1", "x")
    registry.revoke("A-2", "issued in error")
    with pytest.raises(StatusConflict, match="by A-2, which is revoked"):
        registry.supersede("A-1", "A-2", "x")
    registry.revoke("A-1", "lost")
    registry.record(_doc("A-3"))
    with pytest.raises(StatusConflict, match="A-1 is revoked and cannot be superseded"):
        registry.supersede("A-1", "A-3", "x")
    got = registry.get("A-1")
    assert got is not None and got.status is DocumentStatus.REVOKED


# --- batches -----------------------------------------------------------------------------------


def test_issued_ids(registry: Registry) -> None:
    for doc_id in ("B-1", "B-2", "B-3"):
        registry.record(_doc(doc_id))
    registry.revoke("B-3", "lost")
    assert registry.issued_ids(["B-1", "X-1", "B-3", "B-1"]) == {"B-1", "B-3"}
    assert registry.issued_ids([]) == set()
    assert registry.issued_ids(iter(["X-1"])) == set()


def test_withdrawn_lists_revoked_and_superseded_by_id(registry: Registry) -> None:
    for doc_id in ("W-3", "W-1", "W-2", "W-4"):
        registry.record(_doc(doc_id))
    registry.revoke("W-3", "lost")
    registry.supersede("W-1", "W-4", "corrected")
    assert [(d.id, d.status.value) for d in registry.withdrawn()] == [
        ("W-1", "superseded"),
        ("W-3", "revoked"),
    ]


def test_issued_ids_for_a_large_batch(registry: Registry) -> None:
    for n in range(0, 1200, 7):
        registry.record(_doc(f"B-{n}"))
    wanted = (f"B-{n}" for n in range(1200))  # more than one IN (...) chunk, given lazily
    assert registry.issued_ids(wanted) == {f"B-{n}" for n in range(0, 1200, 7)}


# --- schema ------------------------------------------------------------------------------------


def test_reopening_keeps_data_and_schema(registry_url: str) -> None:
    with open_registry(registry_url) as reg:
        stored = reg.record(_doc("A-1"))
    with open_registry(registry_url) as reg, open_registry(registry_url) as other:
        assert reg.get("A-1") == other.get("A-1") == stored


def test_newer_schema_is_refused(registry_url: str) -> None:
    open_registry(registry_url).close()
    _raw_execute(registry_url, "INSERT INTO esign_registry_schema (version) VALUES (99)")
    with pytest.raises(RegistryError, match="schema version 99, newer than this esign"):
        open_registry(registry_url)


def test_database_constraints_back_the_model(registry_url: str, registry: Registry) -> None:
    """Even a writer that bypasses this module cannot store a revocation without a time."""
    registry.record(_doc("A-1"))
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        _raw_execute(registry_url, "UPDATE esign_documents SET status = 'revoked'")


# --- concurrency -------------------------------------------------------------------------------


def _record_many(url: str, prefix: str, count: int, start: Any) -> None:
    start.wait()
    with open_registry(url) as reg:
        for n in range(count):
            reg.record(_doc(f"{prefix}-{n}"))


def _revoke_all(url: str, ids: list[str], who: str, barrier: Any, results: Any) -> None:
    outcome: dict[str, tuple[str, str]] = {}
    with open_registry(url) as reg:
        for doc_id in ids:
            barrier.wait()
            try:
                won = reg.revoke(doc_id, f"revoked by {who}")
                assert won.status_time is not None
                outcome[doc_id] = ("won", won.status_time.isoformat())
            except AlreadyRevoked as lost:
                assert lost.document.status_time is not None
                outcome[doc_id] = ("lost", lost.document.status_time.isoformat())
    results.put((who, outcome))


def _run(processes: list[Any]) -> None:
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_two_processes_record_distinct_ids(registry_url: str) -> None:
    open_registry(registry_url).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    _run(
        [
            ctx.Process(target=_record_many, args=(registry_url, prefix, 50, start))
            for prefix in ("P", "Q")
        ]
    )
    ids = [f"{prefix}-{n}" for prefix in ("P", "Q") for n in range(50)]
    with open_registry(registry_url) as reg:
        assert reg.issued_ids(ids) == set(ids)
        for doc_id in ids:
            got = reg.get(doc_id)
            assert got is not None and got.pdf_sha256 == hashlib.sha256(doc_id.encode()).hexdigest()


def test_simultaneous_revokes_leave_exactly_one(registry_url: str) -> None:
    ids = [f"R-{n}" for n in range(20)]
    with open_registry(registry_url) as reg:
        for doc_id in ids:
            reg.record(_doc(doc_id))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_revoke_all, args=(registry_url, ids, who, barrier, results))
        for who in ("first", "second")
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)  # read before join: queue feeder
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with open_registry(registry_url) as reg:
        for doc_id in ids:
            stored = reg.get(doc_id)
            assert stored is not None and stored.status_time is not None
            verdicts = {who: outcomes[who][doc_id] for who in outcomes}
            winners = [who for who, (verdict, _) in verdicts.items() if verdict == "won"]
            assert len(winners) == 1, (doc_id, verdicts)
            assert stored.status_reason == f"revoked by {winners[0]}"
            # Both processes saw the same, single revocation time.
            assert {t for _, t in verdicts.values()} == {stored.status_time.isoformat()}


def test_threads_share_one_registry(registry: Registry) -> None:
    def work(k: int) -> None:
        for n in range(25):
            registry.record(_doc(f"T{k}-{n}"))
            if n % 5 == 0:
                registry.revoke(f"T{k}-{n}", "test")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = [f"T{k}-{n}" for k in range(4) for n in range(25)]
    assert registry.issued_ids(ids) == set(ids)
    revoked = [i for i in ids if (d := registry.get(i)) and d.status is DocumentStatus.REVOKED]
    assert len(revoked) == 20


# --- opening -----------------------------------------------------------------------------------


def test_unreachable_postgresql() -> None:
    with pytest.raises(RegistryUnavailable) as caught:
        open_registry("postgresql://127.0.0.1:1/test")
    assert _one_line(caught.value) == (
        "cannot open registry postgresql://127.0.0.1:1/test: connection refused"
    )
    assert caught.value.exit_code == 9


def test_error_never_shows_the_password() -> None:
    url = "postgresql://esign:s3cr%40t@127.0.0.1:1/test?sslmode=disable&password=s3cr%40t"
    with pytest.raises(RegistryUnavailable) as caught:
        open_registry(url)
    text = _one_line(caught.value)
    assert "s3cr" not in text
    assert "postgresql://esign:***@127.0.0.1:1/test?sslmode=disable&password=***" in text


def test_wrong_postgresql_database(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/esign_no_such_database"
    with pytest.raises(RegistryUnavailable, match='database "esign_no_such_database" does not'):
        open_registry(url)


def test_unopenable_sqlite(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/missing/registry.db"
    with pytest.raises(RegistryUnavailable) as caught:
        open_registry(url)
    assert _one_line(caught.value) == f"cannot open registry {url}: unable to open database file"
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("hello, I am not a database\n" * 100)
    with pytest.raises(RegistryUnavailable, match="file is not a database"):
        open_registry(f"sqlite://{not_a_db}")


def test_default_and_relative_sqlite_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_registry(None, default_path=tmp_path / "default.db") as reg:
        reg.record(_doc("A-1"))
        assert reg.url == f"sqlite://{tmp_path}/default.db"
    monkeypatch.chdir(tmp_path)
    with open_registry("sqlite:default.db") as reg:
        assert reg.url == "sqlite:default.db" and reg.issued_ids(["A-1"]) == {"A-1"}


@pytest.mark.parametrize("url", ["mysql://db/esign", "sqlite://host/x.db", "registry.db"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(UsageError):
        open_registry(url)


# --- subject digest ----------------------------------------------------------------------------


def test_subject_digest_normalises_case_whitespace_and_unicode() -> None:
    reference = subject_digest("УБ99112233", "Батын Болд")
    nfd_name = unicodedata.normalize("NFD", "Батын Болд")
    assert subject_digest(" уб 9911 2233\t", "  батын\n  БОЛД ") == reference
    assert subject_digest("УБ99112233", nfd_name) == reference
    assert subject_digest("УБ99112233", "Батын Болдбаатар") != reference
    assert subject_digest("УБ99112234", "Батын Болд") != reference
    # Ё and its decomposed form (Е + combining diaeresis) are one letter.
    assert subject_digest("ЁБ99112233", "Ё") == subject_digest("е\u0308б99112233", "е\u0308")


def test_subject_digest_vector() -> None:
    """The documented encoding, recomputed here so another implementation can check itself."""
    message = "esign-subject-v1\nуб99112233\nбатын болд".encode()
    assert subject_digest("УБ99112233", "Батын Болд") == hashlib.sha256(message).hexdigest()
    keyed = subject_digest("УБ99112233", "Батын Болд", key=b"pepper")
    assert keyed == hmac.new(b"pepper", message, hashlib.sha256).hexdigest()


def test_subject_digest_needs_both_fields() -> None:
    with pytest.raises(UsageError):
        subject_digest(" ", "Батын Болд")
    with pytest.raises(UsageError):
        subject_digest("УБ99112233", "")


def test_reissue_only_for_active_documents_of_the_same_subject(registry: Registry) -> None:
    doc = registry.record(_doc("REPL-0001", fields_digest="ab" * 16))
    reservation = registry.reserve_reissue(doc.id, doc.subject_digest, "ab" * 16)
    assert reservation.reissue and reservation.taken_over is None
    assert registry.get(doc.id).pdf_sha256 == doc.pdf_sha256  # type: ignore[union-attr]
    with pytest.raises(DuplicateDocument):  # a live reservation is never taken over
        registry.reserve_reissue(doc.id, doc.subject_digest)
    registry.complete(reservation, "b" * 64, client="cli:op@host", key_name="seal")
    replaced = registry.get(doc.id)
    assert replaced is not None
    assert replaced.pdf_sha256 == "b" * 64 and replaced.status.value == "active"
    entry = registry.audit_entries()[0]
    assert (entry["action"], entry["client"], entry["document_sha256"]) == (
        "reissue", "cli:op@host", "b" * 64,
    )  # fmt: skip
    with pytest.raises(StatusConflict):
        registry.reserve_reissue(doc.id, "d" * 64)  # another subject
    with pytest.raises(StatusConflict, match="other data"):
        registry.reserve_reissue(doc.id, doc.subject_digest, "cd" * 16)  # another address
    registry.revoke(doc.id, "issued in error")
    with pytest.raises(StatusConflict):
        registry.reserve_reissue(doc.id, doc.subject_digest)  # never reprint revoked
    assert registry.get(doc.id).pdf_sha256 == "b" * 64  # type: ignore[union-attr]
    with pytest.raises(UnknownDocument):
        registry.reserve_reissue("NOPE-0001", doc.subject_digest)


def test_fields_digest_and_issuer_client_are_kept(registry: Registry) -> None:
    stored = registry.record(_doc("F-1", fields_digest="0f" * 16, issued_by="agency-a"))
    got = registry.get("F-1")
    assert got == stored and got.fields_digest == "0f" * 16 and got.issued_by == "agency-a"
    assert registry.record(_doc("F-2")).fields_digest is None
    for bad in ("0F" * 16, "0f" * 15, "xyz"):
        with pytest.raises(UsageError, match="fields_digest"):
            _doc("F-3", fields_digest=bad)


def test_a_schema_2_registry_is_upgraded_in_place(registry_url: str) -> None:
    """A database written by the previous release (schema 2) gains the new columns; its
    documents stay, with no fields digest or issuing client known."""
    from esign import registry as module

    kind = "sqlite" if registry_url.startswith("sqlite") else "postgresql"
    v1_v2 = [*module._V1_DDL, *module._V2_DDL[kind]]
    statements = [s.format(**_types(registry_url)) if "{" in s else s for s in v1_v2]
    statements += [
        "CREATE TABLE esign_registry_schema (version INTEGER NOT NULL)",
        "INSERT INTO esign_registry_schema (version) VALUES (1), (2)",
        "INSERT INTO esign_documents (id, doc_type, issuer, subject_digest, issued_on, status, "
        f"pdf_sha256, created_at) VALUES ('OLD-1', 'residence', 'UBEG', '{'a' * 64}', "
        f"'2025-01-02', 'active', '{'b' * 64}', '2025-01-02T03:04:05+00:00')",
    ]
    for statement in statements:
        _raw_execute(registry_url, statement)
    with open_registry(registry_url) as reg:
        old = reg.get("OLD-1")
        assert old is not None and old.pdf_sha256 == "b" * 64
        assert old.fields_digest is None and old.issued_by is None
        reg.record(_doc("NEW-1", fields_digest="12" * 16, issued_by="cli:op@host"))
        reg.revoke("OLD-1", "test", by="cli:op@host")
        assert reg.audit_entries()[0]["detail"] == "test"
    with open_registry(registry_url) as reg:
        assert reg.get("NEW-1").fields_digest == "12" * 16  # type: ignore[union-attr]
    _raw_execute(registry_url, "SELECT fields_digest, issued_by, reserved_by FROM esign_documents")


def _types(url: str) -> dict[str, str]:
    if url.startswith("sqlite"):
        return {"date": "TEXT", "timestamp": "TEXT"}
    return {"date": "DATE", "timestamp": "TIMESTAMPTZ"}


def test_revoke_and_supersede_audit_in_the_same_step(registry: Registry) -> None:
    registry.record(_doc("S-1"))
    registry.record(_doc("S-2"))
    registry.supersede("S-1", "S-2", "address corrected", by="agency-a")
    registry.revoke("S-2", "issued in error", by="cli:op@host")
    with pytest.raises(AlreadyRevoked):
        registry.revoke("S-2", "again", by="cli:op@host")  # refused: not audited
    seen = [(e["action"], e["client"], e["document_id"], e["detail"])
            for e in registry.audit_entries()]  # fmt: skip
    assert seen == [
        ("revoke", "cli:op@host", "S-2", "issued in error"),
        ("supersede", "agency-a", "S-1", "superseded by S-2: address corrected"),
    ]


def test_an_interrupted_reservation_is_taken_over_only_when_abandoned(
    registry_url: str, registry: Registry
) -> None:
    doc = _doc("K-1", fields_digest="ab" * 16)
    live = registry.reserve(doc)
    assert registry.get("K-1").pending  # type: ignore[union-attr]
    with pytest.raises(DuplicateDocument):
        registry.reserve(doc)
    with pytest.raises(DuplicateDocument):  # its process (this one) still runs
        registry.reserve_reissue("K-1", doc.subject_digest, "ab" * 16)
    # The owner dies: a process that has exited, on this host.
    dead = multiprocessing.get_context("fork").Process(target=int)
    dead.start()
    dead.join()
    owner = f"{live.token.split()[0]} {dead.pid} x"
    _raw_execute(registry_url, f"UPDATE esign_documents SET reserved_by = '{owner}'")
    taken = registry.reserve_reissue("K-1", doc.subject_digest, "ab" * 16)
    assert not taken.reissue and taken.taken_over is not None
    assert f"process {dead.pid}" in taken.taken_over
    with pytest.raises(StatusConflict):  # the first issuer, were it alive, cannot complete
        registry.complete(live, "c" * 64)
    registry.release(live)  # nor release the new owner's reservation
    assert registry.get("K-1") is not None
    registry.complete(taken, "d" * 64, client="cli:op@host")
    entry = registry.audit_entries()[0]
    assert (entry["action"], entry["document_id"]) == ("issue", "K-1")
    assert "took over the reservation" in entry["detail"]
    # Released reservations leave nothing behind.
    other = registry.reserve(_doc("K-2"))
    registry.release(other)
    assert registry.get("K-2") is None


def test_audit_log_is_append_only(registry: Registry) -> None:
    registry.audit(client="agency-a", action="sign", key_name="seal", document_sha256="e" * 64)
    entries = registry.audit_entries()
    assert entries[0]["client"] == "agency-a" and entries[0]["document_sha256"] == "e" * 64
    backend = registry._backend
    for statement in ("UPDATE esign_audit SET client = 'x'", "DELETE FROM esign_audit"):
        with pytest.raises(Exception, match="append-only"), backend.transaction(write=True) as tx:
            tx.rows(statement)
    assert registry.audit_entries()[0]["client"] == "agency-a"


def test_a_batch_chunk_is_reserved_and_completed_in_one_transaction_each(
    registry: Registry,
) -> None:
    """reserve_many/complete_many (issue 13): a number already held comes back as its refusal
    in its place and the rest are reserved; completed documents get one audit entry each; a
    reservation no longer held is refused in its place; release_many forgets the unsigned."""
    registry.record(_doc("C-2", pdf_sha256="a" * 64))
    claims = registry.reserve_many([_doc("C-3"), _doc("C-2"), _doc("C-1"), _doc("C-4")])
    assert isinstance(claims[1], DuplicateDocument) and claims[1].document.id == "C-2"
    held = [c for c in claims if isinstance(c, Reservation)]
    assert [r.doc_id for r in held] == ["C-3", "C-1", "C-4"]
    assert all(registry.get(r.doc_id).pending for r in held)  # type: ignore[union-attr]
    again = registry.reserve_many([_doc("C-1")])
    assert isinstance(again[0], DuplicateDocument) and again[0].document.pending
    registry.release_many([held[2]])
    assert registry.get("C-4") is None
    stale = Reservation("C-1", "someone else")
    done = registry.complete_many(
        [(held[0], "b" * 64), (stale, "c" * 64), (held[1], "d" * 64)],
        client="cli:op@host",
        key_name="seal",
    )
    assert isinstance(done[0], IssuedDocument) and done[0].pdf_sha256 == "b" * 64
    assert isinstance(done[1], StatusConflict)
    assert isinstance(done[2], IssuedDocument) and done[2].pdf_sha256 == "d" * 64
    entries = sorted(
        (e["document_id"], e["action"], e["document_sha256"]) for e in registry.audit_entries()
    )
    assert entries == [("C-1", "issue", "d" * 64), ("C-3", "issue", "b" * 64)]
