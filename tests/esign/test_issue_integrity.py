"""`esign issue`, `supersede` and `revoke` as an operator runs them, on SQLite and PostgreSQL: a
refused issue leaves no PDF and no record behind; two overlapping batches issue each number
exactly once (counted in the signed files and in the registry); an issue killed while signing
is taken over only by an explicit, audited --reissue; every CLI issue, supersede and revoke has
exactly one audit entry naming the operator (user@host) who ran it."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from esign import testpki
from esign.issue import document_id
from esign.registry import open_registry
from esign.services import PkiServices
from tests.helpers import REPO, run_esign

POSTGRES_URL = os.environ.get("ESIGN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
RESIDENCE = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))
OPERATOR = f"cli:{getpass.getuser()}@{socket.gethostname()}"


def number(i: int) -> str:
    return f"ОСХ-2026-0077{i:02d}"


def data_line(i: int) -> str:
    data = json.loads(json.dumps(RESIDENCE))
    data["number"] = number(i)
    data["subject"]["register_number"] = f"УБ990112{i:02d}"
    return json.dumps(data, ensure_ascii=False)


def key_args(pki: testpki.TestPki, tsa_url: str | None = None) -> list[str]:
    return [
        "--key",
        str(pki.p12("mn-ec", "seal")),
        "--passfile",
        str(pki.password_file),
        "--tsa",
        tsa_url or pki.tsa_url("mn-ec"),
        "--base-url",
        "http://127.0.0.1:9/",
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'reg.sqlite3'}"
        return
    schema = f"esign_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _raw_execute(url: str, *statements: str) -> None:
    """Reach past the registry, as a failing database (or another program) would."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:")) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def _issue_one(
    pki: testpki.TestPki, folder: Path, registry: str, i: int, *extra: str
) -> tuple[int, str, Path]:
    data = folder / f"doc{i}.json"
    data.write_text(data_line(i), encoding="utf-8")
    out = folder / f"doc{i}.pdf"
    r = run_esign(
        "issue", "--template", "residence", "--data", str(data), "-o", str(out),
        *key_args(pki), "--registry", registry, *extra, cwd=folder,
    )  # fmt: skip
    assert "Traceback" not in r.err, r.err
    return r.code, r.out + r.err, out


def test_refused_issue_leaves_no_pdf_and_no_record(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    # The registry accepts the reservation, then refuses to point it at the signed file.
    with open_registry(registry_url):
        pass
    if registry_url.startswith("sqlite:"):
        _raw_execute(
            registry_url,
            "CREATE TRIGGER refuse BEFORE UPDATE ON esign_documents "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
    else:
        _raw_execute(
            registry_url,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse BEFORE UPDATE ON esign_documents "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
    code, text, out = _issue_one(pki, tmp_path, registry_url, 1)
    assert code != 0, text
    assert not out.exists(), "a refused issue must not leave its signed PDF"
    assert list(tmp_path.glob("*.pdf*")) == [] and list(tmp_path.glob(".*part")) == []
    with open_registry(registry_url) as registry:
        assert registry.get(document_id("UBEG", number(1))) is None, "reservation released"

    # A signing failure (no timestamp service) also leaves nothing, and the number stays free.
    data = tmp_path / "doc2.json"
    data.write_text(data_line(2), encoding="utf-8")
    out2 = tmp_path / "doc2.pdf"
    r = run_esign(
        "issue", "--template", "residence", "--data", str(data), "-o", str(out2),
        *key_args(pki, "http://127.0.0.1:9/"), "--registry", registry_url, cwd=tmp_path,
    )  # fmt: skip
    assert r.code != 0 and not out2.exists(), r.out + r.err
    with open_registry(registry_url) as registry:
        assert registry.get(document_id("UBEG", number(2))) is None


def _start_batch(
    pki: testpki.TestPki, folder: Path, registry: str, numbers: list[int]
) -> subprocess.Popen[str]:
    folder.mkdir()
    jsonl = folder / "batch.jsonl"
    jsonl.write_text("".join(data_line(i) + "\n" for i in numbers), encoding="utf-8")
    return subprocess.Popen(
        [
            sys.executable, "-m", "cli", "issue", "--template", "residence",
            "--batch", str(jsonl), "--out-dir", str(folder / "out"), "--workers", "2",
            *key_args(pki), "--registry", registry,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_a_batch_whose_completions_are_refused_leaves_no_pdf_and_no_record(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    """The batch path completes a chunk of documents in one transaction (issue 13): when the
    registry refuses it, none of the chunk's signed files is renamed into place, and the
    reservations are released."""
    with open_registry(registry_url):
        pass
    if registry_url.startswith("sqlite:"):
        _raw_execute(
            registry_url,
            "CREATE TRIGGER refuse BEFORE UPDATE ON esign_documents "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
    else:
        _raw_execute(
            registry_url,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse BEFORE UPDATE ON esign_documents "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
    proc = _start_batch(pki, tmp_path / "a", registry_url, [1, 2, 3, 4, 5])
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    issued = [line for line in out.splitlines() if json.loads(line)["status"] == "issued"]
    assert proc.returncode != 0 and not issued, out + err
    folder = tmp_path / "a" / "out"
    assert list(folder.glob("*.pdf")) == [] and list(folder.glob(".*.part")) == []
    with open_registry(registry_url) as registry:
        ids = [document_id("UBEG", number(i)) for i in range(1, 6)]
        assert registry.issued_ids(ids) == set(), "reservations released"


def test_overlapping_batches_issue_each_number_once(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    with open_registry(registry_url):  # migrate once, before the two runs race
        pass
    first = _start_batch(pki, tmp_path / "a", registry_url, [1, 2, 3, 4, 5, 6])
    second = _start_batch(pki, tmp_path / "b", registry_url, [8, 7, 6, 5, 4, 3])
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        results += [json.loads(line) for line in out.splitlines()]
    issued = [r for r in results if r["status"] == "issued"]
    refused = [r for r in results if r["status"] == "failed"]
    assert sorted(str(r["id"]) for r in issued) == sorted(
        document_id("UBEG", number(i)) for i in range(1, 9)
    ), "each number issued exactly once"
    assert len(refused) == 4 and all("already issued" in str(r["error"]) for r in refused)
    files = sorted((tmp_path / "a" / "out").glob("*.pdf")) + sorted(
        (tmp_path / "b" / "out").glob("*.pdf")
    )
    assert len(files) == 8 and len({f.stem for f in files}) == 8, "one signed PDF per number"
    with open_registry(registry_url) as registry:
        for f in files:
            doc = registry.get(f.stem)
            assert doc is not None and doc.pdf_sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
        assert len(registry.issued_ids(f.stem for f in files)) == 8
        entries = [e for e in registry.audit_entries(limit=100) if e["action"] == "issue"]
    assert sorted(str(e["document_id"]) for e in entries) == sorted(f.stem for f in files)
    assert {e["client"] for e in entries} == {OPERATOR}


def test_cli_issue_supersede_and_revoke_are_audited_once_with_the_operator(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    ids, digests = [], []
    for i in (1, 2):
        code, text, out = _issue_one(pki, tmp_path, registry_url, i)
        assert code == 0, text
        ids.append(document_id("UBEG", number(i)))
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    r = run_esign(
        "supersede", ids[0], "--by", ids[1], "--reason", "хаяг засав", "--registry", registry_url,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.code == 0 and f"superseded {ids[0]} by {ids[1]}" in r.out, r.out + r.err
    r = run_esign("revoke", ids[1], "--reason", "тест", "--registry", registry_url, cwd=tmp_path)
    assert r.code == 0, r.out + r.err
    refused = run_esign("revoke", ids[1], "--reason", "again", "--registry", registry_url)
    assert refused.code != 0 and "already revoked" in refused.err, refused.err
    with open_registry(registry_url) as registry:
        entries = registry.audit_entries()
        assert registry.get(ids[0]).issued_by == OPERATOR  # type: ignore[union-attr]
    seen = [(e["action"], e["client"], e["document_id"], e["document_sha256"]) for e in entries]
    assert seen == [
        ("revoke", OPERATOR, ids[1], digests[1]),
        ("supersede", OPERATOR, ids[0], digests[0]),
        ("issue", OPERATOR, ids[1], digests[1]),
        ("issue", OPERATOR, ids[0], digests[0]),
    ]
    assert entries[0]["detail"] == "тест"


def test_an_interrupted_issue_is_taken_over_only_by_an_explicit_audited_reissue(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    """`esign issue` killed while signing (its timestamp service never answers) leaves a
    reserved number: a plain issue is refused, `--reissue` takes it over and says so in the
    audit log, and the number ends up issued once, with one audit entry."""
    with socket.socket() as hanging_tsa:
        hanging_tsa.bind(("127.0.0.1", 0))
        hanging_tsa.listen(8)  # accepts connections, never answers
        tsa = f"http://127.0.0.1:{hanging_tsa.getsockname()[1]}/tsa"
        data = tmp_path / "doc1.json"
        data.write_text(data_line(1), encoding="utf-8")
        out = tmp_path / "doc1.pdf"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "issue", "--template", "residence", "--data", str(data),
             "-o", str(out), *key_args(pki, tsa), "--registry", registry_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        doc_id = document_id("UBEG", number(1))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with open_registry(registry_url) as registry:
                    doc = registry.get(doc_id)
                if doc is not None:
                    break
                assert proc.poll() is None, "esign issue ended before signing"
                time.sleep(0.2)
            assert doc is not None and doc.pending, "the number is reserved while signing"
        finally:
            proc.kill()
            proc.wait()
    assert not out.exists()
    # As a run killed between writing its temporary file and renaming it would leave.
    leftover = tmp_path / ".doc1.pdf.k1ll3d.part"
    leftover.write_bytes(b"%PDF-1.7 half written")

    code, text, _ = _issue_one(pki, tmp_path, registry_url, 1)
    assert code != 0 and "being issued" in text and "--reissue" in text, text
    assert not out.exists() and leftover.exists()
    code, text, _ = _issue_one(pki, tmp_path, registry_url, 1, "--reissue")
    assert code == 0, text
    assert not leftover.exists(), "the interrupted run's temporary file is cleaned up"
    with open_registry(registry_url) as registry:
        doc = registry.get(doc_id)
        entries = [e for e in registry.audit_entries(limit=100) if e["document_id"] == doc_id]
    assert doc is not None and not doc.pending
    assert doc.pdf_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert doc.issued_by == OPERATOR and doc.fields_digest is not None
    assert [(e["action"], e["client"]) for e in entries] == [("issue", OPERATOR)]
    assert f"took over the reservation of process {proc.pid} on" in str(entries[0]["detail"])
    # Issued now: neither a plain issue nor --reissue (its file is there) signs it again.
    for extra in ((), ("--reissue",)):
        code, text, _ = _issue_one(pki, tmp_path, registry_url, 1, *extra)
        assert code != 0 and "already in the registry" in text, text
    with open_registry(registry_url) as registry:
        assert len([e for e in registry.audit_entries() if e["document_id"] == doc_id]) == 1


def test_a_killed_batch_leaves_its_chunks_reserved_for_an_explicit_reissue(
    pki: testpki.TestPki, services: PkiServices, registry_url: str, tmp_path: Path
) -> None:
    """A batch killed while its workers sign (the timestamp service never answers) leaves the
    numbers of their chunks reserved, none issued: a plain rerun is refused for them, a rerun
    with --reissue takes each over, audited, and each number ends up issued once (issue 13)."""
    with open_registry(registry_url):
        pass
    folder = tmp_path / "run"
    folder.mkdir()
    jsonl = folder / "batch.jsonl"
    jsonl.write_text("".join(data_line(i) + "\n" for i in range(1, 6)), encoding="utf-8")
    ids = [document_id("UBEG", number(i)) for i in range(1, 6)]

    def batch(*extra: str, tsa: str | None = None) -> list[str]:
        return [
            sys.executable, "-m", "cli", "issue", "--template", "residence", "--batch",
            str(jsonl), "--out-dir", str(folder / "out"), "--workers", "2",
            *key_args(pki, tsa), "--registry", registry_url, *extra,
        ]  # fmt: skip

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with socket.socket() as hanging_tsa:
        hanging_tsa.bind(("127.0.0.1", 0))
        hanging_tsa.listen(8)  # accepts connections, never answers
        tsa = f"http://127.0.0.1:{hanging_tsa.getsockname()[1]}/tsa"
        proc = subprocess.Popen(batch(tsa=tsa), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=folder, env=env,
                                start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with open_registry(registry_url) as registry:
                    held = [d for d in map(registry.get, ids) if d is not None]
                if len(held) == len(ids):
                    break
                assert proc.poll() is None, "the batch ended before signing"
                time.sleep(0.2)
            assert len(held) == len(ids) and all(d.pending for d in held), held
        finally:
            os.killpg(proc.pid, 9)  # the batch and its workers
            proc.wait()
    deadline = time.monotonic() + 30
    with contextlib.suppress(ProcessLookupError):  # until the workers are gone, not zombies
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    assert list((folder / "out").glob("*.pdf")) == []

    plain = subprocess.run(batch(), capture_output=True, text=True, cwd=folder, env=env,
                           timeout=120)  # fmt: skip
    lines = [json.loads(line) for line in plain.stdout.splitlines()]
    assert plain.returncode != 0 and len(lines) == 5, plain.stdout + plain.stderr
    assert all(r["status"] == "failed" and "being issued" in r["error"] for r in lines), lines
    again = subprocess.run(batch("--reissue"), capture_output=True, text=True, cwd=folder,
                           env=env, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(json.loads(line)["id"] for line in again.stdout.splitlines()) == sorted(ids)
    with open_registry(registry_url) as registry:
        for doc_id in ids:
            doc = registry.get(doc_id)
            pdf = folder / "out" / f"{doc_id}.pdf"
            assert doc is not None and not doc.pending
            assert doc.pdf_sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()
        entries = [e for e in registry.audit_entries(limit=100) if e["document_id"] in ids]
    assert sorted(str(e["document_id"]) for e in entries) == sorted(ids), "one entry each"
    assert all(e["action"] == "issue" and "took over" in str(e["detail"]) for e in entries)
    assert list((folder / "out").glob(".*.part")) == []
