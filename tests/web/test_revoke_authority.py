"""Who may revoke or supersede over HTTP (issue 10, point 5), judged from the answers of a real
`esign serve`: only a client holding the revoke grant for the agency that issued the document;
anyone else gets exactly what an unknown id gets. Every issue, revoke and supersede by the API
leaves exactly one audit entry naming the client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.registry import open_registry
from esign.services import PkiServices
from tests.conftest import free_port
from tests.helpers import run_esign
from tests.web.conftest import (
    PASSWORD_ENV,
    sample_data,
    start_server,
    stop_server,
    write_config,
)
from verify.web.config import hash_api_key


@dataclass(frozen=True)
class Agencies:
    client: httpx.Client
    registry_url: str
    folder: Path
    keys: dict[str, str]  # client name -> API key

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


@pytest.fixture(scope="module")
def agencies(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agencies]:
    """The web tests' server plus two clients: "registrar" may issue residence certificates
    with the UBEG seal but holds no revoke grant; "auditor" holds the revoke grant for UBEG only
    and issues nothing."""
    folder = tmp_path_factory.mktemp("authority")
    port = free_port()
    keys = {name: f"{name}-{os.urandom(12).hex()}" for name in
            ("agency-a", "agency-b", "registrar", "auditor")}  # fmt: skip
    config, registry_url = write_config(pki, folder, port, keys["agency-a"], keys["agency-b"])
    with config.open("a", encoding="utf-8") as f:
        for name, grants in (
            ("registrar", 'keys = ["seal-a", "seal-default"]\ndoc_types = ["residence"]'),
            ("auditor", 'revoke_issuers = ["UBEG"]'),
        ):
            digest = hash_api_key(keys[name])
            f.write(f'\n[[clients]]\nname = "{name}"\napi_key_sha256 = "{digest}"\n{grants}\n')
        # A key configured without a level: issuance at the default level.
        f.write(
            f"\n[signing_keys.seal-default]\nkey = {json.dumps(str(pki.p12('mn-ec', 'seal')))}\n"
            f'password_env = "{PASSWORD_ENV}"\ntsa = {json.dumps(pki.tsa_url("mn-ec"))}\n'
        )
    proc = start_server(config, port, log=folder / "server.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            yield Agencies(client, registry_url, folder, keys)
    finally:
        stop_server(proc)


def _issue(a: Agencies, who: str = "registrar") -> str:
    r = a.client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data("residence")},
        headers=a.auth(who),
    )
    assert r.status_code == 200, r.text
    return str(r.headers["x-document-id"])


def _audit(a: Agencies, doc_id: str) -> list[tuple[str, str]]:
    with open_registry(a.registry_url) as registry:
        entries = registry.audit_entries(limit=10_000)
    return [(str(e["action"]), str(e["client"])) for e in entries if e["document_id"] == doc_id]


def _as_unknown(a: Agencies, who: str, action: str, doc_id: str, body: dict[str, str]) -> None:
    """Asking about ``doc_id`` answers exactly as asking about an id never issued does."""
    unknown = "ZZZZZ-ZZZZ" + doc_id[-1]  # same length, never issued
    seen = []
    for target in (doc_id, unknown):
        r = a.client.post(f"/api/v1/documents/{target}/{action}", json=body, headers=a.auth(who))
        seen.append((r.status_code, r.text.replace(target, "ID"), r.headers["content-type"]))
    assert seen[0] == seen[1], seen
    assert seen[0][0] == 404


def test_a_document_type_grant_does_not_allow_revoking(agencies: Agencies) -> None:
    doc_id = _issue(agencies)
    _as_unknown(agencies, "registrar", "revoke", doc_id, {"reason": "not allowed"})
    assert _audit(agencies, doc_id) == [("issue", "registrar")]


def test_another_agency_cannot_learn_that_an_id_exists(agencies: Agencies) -> None:
    doc_id = _issue(agencies)
    _as_unknown(agencies, "agency-b", "revoke", doc_id, {"reason": "not mine"})
    replacement = _issue(agencies)
    _as_unknown(agencies, "agency-b", "supersede", doc_id, {"by": replacement, "reason": "x"})
    with open_registry(agencies.registry_url) as registry:
        doc = registry.get(doc_id)
    assert doc is not None and doc.status.value == "active"
    assert doc.issuer == "UBEG" and doc.issued_by == "registrar" and doc.fields_digest


def test_the_issuers_revoke_grant_revokes_once_and_is_audited_once(agencies: Agencies) -> None:
    doc_id = _issue(agencies)
    ok = agencies.client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "issued in error"},
        headers=agencies.auth("auditor"),
    )  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["reason"]) == ("revoked", "issued in error")
    again = agencies.client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "twice"},
        headers=agencies.auth("auditor"),
    )  # fmt: skip
    assert again.status_code == 409
    assert _audit(agencies, doc_id) == [("revoke", "auditor"), ("issue", "registrar")]


def test_supersede_needs_the_grant_for_both_documents_and_is_audited_once(
    agencies: Agencies,
) -> None:
    old, new = _issue(agencies), _issue(agencies)
    r = agencies.client.post(
        f"/api/v1/documents/{old}/supersede", json={"by": new, "reason": "address corrected"},
        headers=agencies.auth("auditor"),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["superseded_by"]) == ("superseded", new)
    assert _audit(agencies, old) == [("supersede", "auditor"), ("issue", "registrar")]
    assert _audit(agencies, new) == [("issue", "registrar")]
    # A replacement the client may not answer for is as unknown as any other id.
    other = _issue(agencies)
    r = agencies.client.post(
        f"/api/v1/documents/{other}/supersede", json={"by": "ZZZZZ-ZZZZZ", "reason": "x"},
        headers=agencies.auth("auditor"),
    )  # fmt: skip
    assert r.status_code == 404
    assert _audit(agencies, other) == [("issue", "registrar")]


def test_issue_refused_twice_for_one_number_is_audited_once(agencies: Agencies) -> None:
    data = sample_data("residence")
    answers = [
        agencies.client.post(
            "/api/v1/issue",
            json={"template": "residence", "key": "seal-a", "data": data},
            headers=agencies.auth("registrar"),
        )
        for _ in range(2)
    ]
    assert [r.status_code for r in answers] == [200, 409], answers[1].text
    assert "already in the registry" in answers[1].json()["detail"]
    assert _audit(agencies, answers[0].headers["x-document-id"]) == [("issue", "registrar")]


def test_http_issuance_defaults_to_b_lt_and_the_pdf_proves_itself_offline(
    agencies: Agencies,
) -> None:
    """A signing key configured without a level issues at B-LT: a bank verifying the PDF with no
    network at all gets TOTAL-PASSED (issue 10, point 8)."""
    r = agencies.client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-default", "data": sample_data("residence")},
        headers=agencies.auth("registrar"),
    )
    assert r.status_code == 200, r.text
    pdf = agencies.folder / "default-level.pdf"
    pdf.write_bytes(r.content)
    trust = agencies.folder / "trust.toml"
    v = run_esign("verify", str(pdf), "--trust", str(trust), "--offline", "--json")
    assert v.code == 0, v.out + v.err
    report = json.loads(v.out)
    assert (report["indication"], report["revocation_mode"]) == ("TOTAL-PASSED", "offline")
    assert report["signatures"][0]["pades_level"] == "B-LT"


def test_why_a_document_was_revoked_is_told_only_to_its_agencys_clients(
    agencies: Agencies,
) -> None:
    r = agencies.client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data("residence")},
        headers=agencies.auth("registrar"),
    )
    assert r.status_code == 200, r.text
    doc_id, payload = r.headers["x-document-id"], r.headers["x-seal-url"].split("/V/", 1)[1]
    revoked = agencies.client.post(
        f"/api/v1/documents/{doc_id}/revoke", json={"reason": "шүүхийн шийдвэр 42"},
        headers=agencies.auth("auditor"),
    )  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    seen = {}
    for who in ("auditor", "agency-a", "agency-b", "registrar", None):
        headers = agencies.auth(who) if who else {}
        report = agencies.client.get(f"/api/v1/seals/{payload}", headers=headers).json()
        assert (report["indication"], report["subindication"]) == ("TOTAL-FAILED", "REVOKED")
        seen[who] = any("шүүхийн шийдвэр 42" in d for d in report["details"])
    assert seen == {
        "auditor": True, "agency-a": True, "agency-b": False, "registrar": False, None: False,
    }  # fmt: skip
