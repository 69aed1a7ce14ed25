"""The JSON API of `esign serve` over real HTTP: who may sign, issue and revoke; what is refused;
what the audit log keeps; what the verification endpoints answer."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from esign.registry import open_registry
from tests.conftest import SAMPLE
from tests.web.conftest import WebServer, sample_data, tamper_pdf, tamper_seal

TWO_MB = b"%PDF-1.7\n" + b"0" * (2 * 1024 * 1024)


def audit_entries(server: WebServer) -> list[dict[str, object]]:
    with open_registry(server.registry_url) as registry:
        return registry.audit_entries(limit=1000)


def payload_of(url: str) -> str:
    return url.split("/V/", 1)[1]


def issue(
    client: httpx.Client, auth: dict[str, str], template: str = "residence", key: str = "seal-a"
) -> httpx.Response:
    return client.post(
        "/api/v1/issue",
        json={"template": template, "key": key, "data": sample_data(template)},
        headers=auth,
    )


@pytest.fixture(scope="module")
def signed_pdf(server: WebServer, client: httpx.Client) -> bytes:
    r = client.post(
        "/api/v1/sign", params={"key": "seal-a"}, content=SAMPLE.read_bytes(), headers=server.auth_a
    )
    assert r.status_code == 200, r.text
    return r.content


# --- who may sign ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
        ({"Authorization": "Basic YWdlbmN5LWE6eA=="}, 401),
        ("agency-b", 403),  # a real client, but seal-a is not granted to it
    ],
    ids=["no-credentials", "unknown-key", "basic-auth", "other-clients-key"],
)
def test_sign_refused_and_nothing_signed(
    server: WebServer, client: httpx.Client, headers: object, status: int
) -> None:
    before = audit_entries(server)
    h = server.auth_b if headers == "agency-b" else headers
    assert isinstance(h, dict)
    r = client.post(
        "/api/v1/sign", params={"key": "seal-a"}, content=SAMPLE.read_bytes(), headers=h
    )
    assert r.status_code == status, r.text
    assert not r.content.startswith(b"%PDF")
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert audit_entries(server) == before


def test_sign_unknown_key_is_404_and_not_audited(server: WebServer, client: httpx.Client) -> None:
    before = audit_entries(server)
    r = client.post(
        "/api/v1/sign", params={"key": "nope"}, content=SAMPLE.read_bytes(), headers=server.auth_a
    )
    assert r.status_code == 404
    assert audit_entries(server) == before


def test_sign_is_audited(server: WebServer, client: httpx.Client, signed_pdf: bytes) -> None:
    assert signed_pdf.startswith(b"%PDF") and b"/ByteRange" in signed_pdf
    entry = audit_entries(server)[0]
    assert entry["action"] == "sign"
    assert entry["client"] == "agency-a"
    assert entry["key_name"] == "seal-a"
    assert entry["document_sha256"] == hashlib.sha256(signed_pdf).hexdigest()
    assert_recent(entry["at"])


def test_issue_is_audited(server: WebServer, client: httpx.Client) -> None:
    r = issue(client, server.auth_a)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    doc_id = r.headers["x-document-id"]
    entry = audit_entries(server)[0]
    assert (entry["client"], entry["action"], entry["key_name"]) == ("agency-a", "issue", "seal-a")
    assert entry["document_sha256"] == hashlib.sha256(r.content).hexdigest()
    assert entry["document_id"] == doc_id
    assert_recent(entry["at"])
    assert urlsplit(r.headers["x-seal-url"]).netloc == urlsplit(server.url).netloc


def assert_recent(at: object) -> None:
    when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5)


def test_audit_log_refuses_update_and_delete(server: WebServer, signed_pdf: bytes) -> None:
    path = urlsplit(server.registry_url).path
    db = sqlite3.connect(path)
    try:
        count = db.execute("SELECT count(*) FROM esign_audit").fetchone()[0]
        assert count > 0
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE esign_audit SET client = 'someone-else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM esign_audit")
        db.rollback()
        assert db.execute("SELECT count(*) FROM esign_audit").fetchone()[0] == count
        clients = {row[0] for row in db.execute("SELECT client FROM esign_audit")}
        assert "someone-else" not in clients
    finally:
        db.close()


# --- issue and revoke: grants by document type ------------------------------------------------


def test_issue_with_doc_type_not_granted_is_403(server: WebServer, client: httpx.Client) -> None:
    before = audit_entries(server)
    r = issue(client, server.auth_b, "residence", key="seal-b")
    assert r.status_code == 403, r.text
    assert "residence" in r.json()["detail"]
    assert audit_entries(server) == before


def test_issue_with_key_not_granted_is_403(server: WebServer, client: httpx.Client) -> None:
    r = issue(client, server.auth_b, "criminal-record", key="seal-a")
    assert r.status_code == 403, r.text


def test_issue_by_granted_client_with_rsa_key(server: WebServer, client: httpx.Client) -> None:
    """agency-b is granted criminal-record and its RSA key, but the QR seal needs ECDSA P-256:
    a clear 422, not a 500, and nothing recorded."""
    before = audit_entries(server)
    r = issue(client, server.auth_b, "criminal-record", key="seal-b")
    assert r.status_code == 422, r.text
    assert "P-256" in r.json()["detail"]
    assert audit_entries(server) == before


@pytest.mark.parametrize("template", ["../../keys/trust", "/etc/passwd.toml", "residence.toml"])
def test_issue_takes_template_names_not_paths(
    server: WebServer, client: httpx.Client, template: str
) -> None:
    r = client.post(
        "/api/v1/issue",
        json={"template": template, "key": "seal-a", "data": sample_data()},
        headers=server.auth_a,
    )
    assert r.status_code == 404
    assert "no template" in r.json()["detail"]


def test_revoke_by_client_not_granted_the_issuer(server: WebServer, client: httpx.Client) -> None:
    r = issue(client, server.auth_a)
    assert r.status_code == 200, r.text
    doc_id, payload = r.headers["x-document-id"], payload_of(r.headers["x-seal-url"])
    refused = client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "not mine"}, headers=server.auth_b
    )
    assert refused.status_code == 404  # as if unknown: another agency's ids are not revealed
    assert client.get(f"/api/v1/seals/{payload}").json()["registry_status"] == "active"
    unauthenticated = client.post(f"/api/v1/documents/{doc_id}/revoke", json={"reason": "x"})
    assert unauthenticated.status_code == 401

    ok = client.post(
        f"/api/v1/documents/{doc_id}/revoke",
        json={"reason": "issued in error"},
        headers=server.auth_a,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "revoked"
    seal = client.get(f"/api/v1/seals/{payload}").json()
    assert (seal["indication"], seal["subindication"]) == ("TOTAL-FAILED", "REVOKED")
    again = client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "twice"}, headers=server.auth_a
    )
    assert again.status_code == 409


def test_revoke_unknown_document_is_404(server: WebServer, client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/documents/AAAAA-AAAAA/revoke", json={"reason": "x"}, headers=server.auth_a
    )
    assert r.status_code == 404


# --- verification endpoints -------------------------------------------------------------------


def test_seal_api_good_and_tampered(server: WebServer, client: httpx.Client) -> None:
    r = issue(client, server.auth_a)
    url = r.headers["x-seal-url"]
    good = client.get(f"/api/v1/seals/{payload_of(url)}")
    assert good.status_code == 200
    body = good.json()
    assert body["indication"] == "TOTAL-PASSED"
    assert body["registry_status"] == "active"
    assert body["claims"]["doc_type"] == "residence"
    bad = client.get(f"/api/v1/seals/{payload_of(tamper_seal(url))}").json()
    assert bad["indication"] == "TOTAL-FAILED"
    assert bad["subindication"] == "SIG_CRYPTO_FAILURE"
    garbage = client.get("/api/v1/seals/not-a-seal").json()
    assert garbage["indication"] == "TOTAL-FAILED"


def test_verify_api_passes_signed_pdf(client: httpx.Client, signed_pdf: bytes) -> None:
    r = client.post("/api/v1/verify", content=signed_pdf)
    assert r.status_code == 200
    assert r.json()["indication"] == "TOTAL-PASSED"


def test_verify_api_fails_tampered_pdf(client: httpx.Client, signed_pdf: bytes) -> None:
    r = client.post("/api/v1/verify", content=tamper_pdf(signed_pdf))
    assert r.status_code == 200
    body = r.json()
    assert (body["indication"], body["subindication"]) == ("TOTAL-FAILED", "HASH_FAILURE")


# --- size limit ------------------------------------------------------------------------------


def chunks() -> Iterator[bytes]:
    """A 2 MB body sent chunked, without Content-Length."""
    for i in range(0, len(TWO_MB), 64 * 1024):
        yield TWO_MB[i : i + 64 * 1024]


def test_sign_over_limit_is_413(server: WebServer, client: httpx.Client) -> None:
    before = audit_entries(server)
    r = client.post("/api/v1/sign", params={"key": "seal-a"}, content=TWO_MB, headers=server.auth_a)
    assert r.status_code == 413
    assert audit_entries(server) == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_verify_api_over_limit_is_413(client: httpx.Client, chunked: bool) -> None:
    r = client.post("/api/v1/verify", content=chunks() if chunked else TWO_MB)
    assert r.status_code == 413
    assert "1 MiB" in r.json()["detail"]


def test_upload_form_over_limit_is_413(client: httpx.Client) -> None:
    r = client.post("/verify", files={"file": ("big.pdf", TWO_MB, "application/pdf")})
    assert r.status_code == 413
