"""A configured registry that stops answering fails closed: a revoked document's seal turns
INDETERMINATE ("status cannot be checked now"), never authentic, and no public answer names the
database. The outage is real: PostgreSQL (127.0.0.1:5432) is reached through a TCP proxy that the
test cuts mid-run, as a network failure would, for the library and for the served page."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg import sql

from esign import testpki
from esign.issue import document_id
from esign.registry import IssuedDocument, open_registry, subject_digest
from esign.seal import SealClaims, SealSigner, fields_digest
from tests.conftest import free_port
from tests.web.conftest import start_server, stop_server, write_config
from verify.report import Indication
from verify.seal import MONGOLIA, SealReport, verify_seal
from verify.sealcheck import apply_registry
from verify.trust import TrustConfig

POSTGRES = os.environ.get("ESIGN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REASON = "internal note: clerk 17 mistyped the address"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until :meth:`cut` drops every connection and stops
    listening (the database "goes away"); :meth:`restore` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self._listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone leaves it listening.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture()
def schema() -> Iterator[str]:
    name = f"esign_test_{uuid.uuid4().hex[:16]}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    except psycopg.Error as e:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}: {e}", pytrace=False)
    yield name
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture()
def proxy() -> Iterator[TcpProxy]:
    target = re.search(r"@([\d.]+):(\d+)/", POSTGRES)
    assert target, POSTGRES
    p = TcpProxy((target.group(1), int(target.group(2))))
    yield p
    if p._listener is not None:
        p.cut()


def _url(base: str, schema: str) -> str:
    return f"{base}?options={quote(f'-csearch_path={schema}', safe='')}"


def _revoked_seal(pki: testpki.TestPki, registry_url: str) -> str:
    """A genuine seal (the test PKI's agency seal key) of a document recorded, then revoked."""
    signer = SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))
    today = datetime.now(MONGOLIA).date()
    number = f"ОСХ-2026-{uuid.uuid4().int % 10**6:06d}"
    claims = SealClaims(
        issuer="UBEG",  # the agency code its seal certificate binds (GV:MN-UBEG)
        doc_type="RESIDENCE",
        number=number,
        issued=today,
        expires=today + timedelta(days=90),
        subject_name="Батбаярын Энх-Амгалан",
        subject_id="УБ99112233",
        fields_digest=fields_digest({"number": number}),
    )
    doc_id = document_id(claims.issuer, claims.number)
    with open_registry(registry_url) as reg:
        reg.record(
            IssuedDocument(
                id=doc_id,
                doc_type=claims.doc_type,
                issuer=claims.issuer,
                subject_digest=subject_digest(claims.subject_id, claims.subject_name),
                issued_on=claims.issued,
                expires_on=claims.expires,
                pdf_sha256="0" * 64,
            )
        )
        reg.revoke(doc_id, REASON)
    return signer.sign(claims)


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths(
        [pki.trust_dir], intermediates=[pki.intermediates_dir], seal_certs=[pki.seals_dir]
    )


def _assert_no_backend(text: str, proxy: TcpProxy) -> None:
    for leak in ("127.0.0.1", "5432", str(proxy.port), "postgres", "search_path", "esign_test_"):
        assert leak not in text, f"{leak!r} in {text[:2000]}"
    for leak in ("refused", "server closed", "failed:"):
        assert leak not in text.lower(), f"{leak!r} in {text[:2000]}"


def test_registry_outage_fails_closed(pki: testpki.TestPki, proxy: TcpProxy, schema: str) -> None:
    payload = _revoked_seal(pki, _url(POSTGRES, schema))
    trust = _trust(pki)
    offline = verify_seal(payload, trust, trust.seal_certs)
    assert offline.indication is Indication.TOTAL_PASSED  # the seal itself is genuine

    registry = open_registry(_url(f"postgresql://postgres@127.0.0.1:{proxy.port}/test", schema))
    try:
        before = apply_registry(offline, registry)
        assert (before.indication, before.subindication) == (Indication.TOTAL_FAILED, "REVOKED")
        assert REASON not in json.dumps(before.to_dict(), ensure_ascii=False)
        private = apply_registry(offline, registry, with_reason=True)
        assert any(REASON in d for d in private.details)

        proxy.cut()  # mid-run: the open connection dies, reconnecting is refused
        for _ in range(2):  # the broken connection, then the failed reconnect
            during = apply_registry(offline, registry)
            assert during.indication is Indication.INDETERMINATE, during
            assert during.subindication == "TRY_LATER"
            assert during.registry_status == "unavailable"
            assert during.explanation.mn.startswith("Баримтын төлөвийг одоо шалгах боломжгүй")
            assert during.exit_code == 2
            _assert_no_backend(json.dumps(during.to_dict(), ensure_ascii=False), proxy)

        proxy.restore()
        after = apply_registry(offline, registry)
        assert (after.indication, after.subindication) == (Indication.TOTAL_FAILED, "REVOKED")
    finally:
        registry.close()


def test_registry_passed_as_url_fails_closed_too(pki: testpki.TestPki, proxy: TcpProxy) -> None:
    trust = _trust(pki)
    genuine = _revoked_seal_offline(pki, trust)
    proxy.cut()
    url = f"postgresql://postgres:pw@127.0.0.1:{proxy.port}/test"
    report = apply_registry(genuine, url)
    assert report.indication is Indication.INDETERMINATE and report.registry_status == "unavailable"
    _assert_no_backend(json.dumps(report.to_dict(), ensure_ascii=False), proxy)


def _revoked_seal_offline(pki: testpki.TestPki, trust: TrustConfig) -> SealReport:
    signer = SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))
    today = datetime.now(MONGOLIA).date()
    claims = SealClaims(
        issuer="UBEG", doc_type="RESIDENCE", number="ОСХ-2026-000001", issued=today,
        expires=None, subject_name="Бат", subject_id="УБ99112233",
        fields_digest=fields_digest({"n": "1"}),
    )  # fmt: skip
    report = verify_seal(signer.sign(claims), trust, trust.seal_certs)
    assert report.indication is Indication.TOTAL_PASSED
    return report


def test_served_seal_page_fails_closed(
    pki: testpki.TestPki, proxy: TcpProxy, schema: str, tmp_path: Path
) -> None:
    payload = _revoked_seal(pki, _url(POSTGRES, schema))
    port = free_port()
    config, _ = write_config(pki, tmp_path, port, "key-a-" + "1" * 24, "key-b-" + "2" * 24)
    through_proxy = _url(f"postgresql://postgres:pw@127.0.0.1:{proxy.port}/test", schema)
    text = re.sub(
        r"(?m)^registry = .*$", f"registry = {json.dumps(through_proxy)}", config.read_text()
    )
    config.write_text(text, encoding="utf-8")
    server = start_server(config, port, log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            page = client.get(f"/v/{payload}")
            api = client.get(f"/api/v1/seals/{payload}").json()
            assert "ХҮЧИНГҮЙ БОЛСОН" in page.text and api["subindication"] == "REVOKED"
            assert REASON not in page.text and REASON not in json.dumps(api, ensure_ascii=False)
            authed = client.get(
                f"/api/v1/seals/{payload}", headers={"Authorization": "Bearer key-a-" + "1" * 24}
            ).json()
            assert any(REASON in d for d in authed["details"]), authed

            proxy.cut()
            for _ in range(2):
                page = client.get(f"/v/{payload}")
                api_answer = client.get(f"/api/v1/seals/{payload}")
                body = api_answer.json()
                assert body["indication"] == "INDETERMINATE", body
                assert body["registry_status"] == "unavailable"
                assert "Баримтын төлөвийг одоо шалгах боломжгүй байна" in page.text
                assert "ЖИНХЭНЭ БАРИМТ" not in page.text and "ХҮЧИНГҮЙ" not in page.text
                for text in (page.text, api_answer.text):
                    _assert_no_backend(text, proxy)
            revoke = client.post(
                "/api/v1/documents/AAAAA-AAAAA/revoke",
                json={"reason": "x"},
                headers={"Authorization": "Bearer key-a-" + "1" * 24},
            )
            assert revoke.status_code == 503, revoke.text
            assert "registry of issued documents is unavailable" in revoke.json()["detail"]
            _assert_no_backend(revoke.text, proxy)
            en = client.get(f"/v/{payload}?lang=en").text
            assert "cannot be checked now" in en and "AUTHENTIC" not in en.replace(
                "NOT AUTHENTIC", ""
            )
    finally:
        stop_server(server)
