"""Two `esign serve` processes sharing one registry (SQLite file, PostgreSQL schema), asked at the
same moment to issue the same numbers: each number is signed and answered once (the other server
says 409 before signing), recorded once and audited once (issue 10, point 6 over HTTP)."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg import sql

from esign import testpki
from esign.registry import open_registry
from esign.services import PkiServices
from tests.conftest import free_port
from tests.web.conftest import sample_data, start_server, stop_server, write_config

POSTGRES_URL = os.environ.get("ESIGN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NUMBERS = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    schema = f"esign_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_two_servers_issue_each_number_once(
    pki: testpki.TestPki, services: PkiServices, shared_registry: str, tmp_path: Path
) -> None:
    with open_registry(shared_registry):  # migrated once, before the servers race
        pass
    key_a, key_b = "key-a-" + os.urandom(12).hex(), "key-b-" + os.urandom(12).hex()
    servers = []
    try:
        for name in ("one", "two"):
            port = free_port()
            config, _ = write_config(pki, tmp_path / name, port, key_a, key_b)
            text = config.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^registry = .*$", f"registry = {json.dumps(shared_registry)}", text)
            config.write_text(text, encoding="utf-8")
            proc = start_server(config, port, log=tmp_path / name / "server.log")
            servers.append((f"http://127.0.0.1:{port}", proc))

        warm_ids = []
        for url, _ in servers:  # each server loads its key and checks its certificate first
            warm = httpx.post(
                f"{url}/api/v1/issue", timeout=120, headers={"Authorization": f"Bearer {key_a}"},
                json={"template": "residence", "key": "seal-a", "data": sample_data("residence")},
            )  # fmt: skip
            assert warm.status_code == 200, warm.text
            warm_ids.append(warm.headers["x-document-id"])
        served = services.requests_served
        documents = [sample_data("residence") for _ in range(NUMBERS)]
        answers: list[tuple[int, int, str]] = []
        lock = threading.Lock()
        start = threading.Barrier(2 * NUMBERS)

        def ask(url: str, i: int) -> None:
            body = {"template": "residence", "key": "seal-a", "data": documents[i]}
            start.wait()
            r = httpx.post(
                f"{url}/api/v1/issue", json=body, timeout=120,
                headers={"Authorization": f"Bearer {key_a}"},
            )  # fmt: skip
            with lock:
                answers.append((i, r.status_code, r.headers.get("x-document-id", "")))

        threads = [
            threading.Thread(target=ask, args=(url, i))
            for i in range(NUMBERS)
            for url, _ in servers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        # At B-T, each signature asks the timestamp service once: the refused twin never signed.
        timestamps = services.requests_served - served
    finally:
        for _, proc in servers:
            stop_server(proc)
    assert timestamps == NUMBERS, f"{timestamps} signatures for {NUMBERS} numbers"

    for i in range(NUMBERS):
        codes = sorted(code for j, code, _ in answers if j == i)
        assert codes == [200, 409], f"number {i}: {codes}"
    issued = [doc_id for _, code, doc_id in answers if code == 200]
    assert len(set(issued)) == NUMBERS
    with open_registry(shared_registry) as registry:
        entries = registry.audit_entries(limit=1000)
        for doc_id in issued:
            doc = registry.get(doc_id)
            assert doc is not None and not doc.pending and doc.issued_by == "agency-a"
    audited = [str(e["document_id"]) for e in entries if e["action"] == "issue"]
    assert sorted(audited) == sorted(issued + warm_ids), "one audit entry per document issued"
