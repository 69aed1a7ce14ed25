"""Nothing an attacker names is fetched, and revocation data is fetched once per certificate per
document (issue 9, items 2 and 3).

Hostile PDFs are signed for real (pyHanko, the session test PKI, attacker certificates made with
`cryptography`) and their certificates point at loopback listeners that count every connection
they get. Each file is verified online through the library, the web API (the app's own Verifier)
and `esign verify --online` in a child process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from esign import testpki
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from verify import TrustConfig, Verifier, VerifyOptions
from verify.fetch import BUDGET_EXHAUSTED, FetchPolicy, url_allowed
from verify.report import DocumentReport, Indication

SAMPLE = (REPO / "samples" / "certificate.pdf").read_bytes()
PASSWORD = b"esign-test"


@dataclass
class Listener:
    """A loopback HTTP server that counts every TCP connection and request it receives;
    it answers 302 to ``redirect_to`` when given, trickles a body byte by byte with
    ``trickle``, else answers 404."""

    redirect_to: str | None = None
    trickle: bool = False
    flood: int = 0
    """Answer with this many bytes (no Content-Length), counting what the client takes."""
    connections: int = 0
    sent: int = 0
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                if outer.trickle:
                    self._trickle()
                    return
                if outer.flood:
                    self._flood()
                    return
                if outer.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to + self.path)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b"0")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass

            def _flood(self) -> None:
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"0" * 65536
                try:
                    for _ in range(outer.flood // len(chunk)):
                        self.wfile.write(chunk)
                        outer.sent += len(chunk)
                except OSError:
                    pass
                self.close_connection = True

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                outer.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> int:
        return max(self.connections, len(self.requests))

    def reset(self) -> None:
        self.connections = 0
        self.requests.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))

    @property
    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return asn1_keys.PrivateKeyInfo.load(der)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Attacker"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    cn: str, issuer: Issued | None, *, ca: bool = False, tsa: bool = False, urls: str | None = None
) -> Issued:
    """A certificate (RSA for a TSA: pyHanko's local TSA signs with RSA only, else P-256);
    with ``urls`` its AIA (OCSP, caIssuers) and CRL DP point there."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if tsa:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    issuer_name = issuer.cert.subject if issuer else _name(cn)
    issuer_key = issuer.key if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca and not tsa,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if tsa:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)
    if urls is not None:
        b = b.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"{urls}/ocsp"),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{urls}/issuer.crt"),
                    ),
                ]
            ),
            critical=False,
        ).add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(f"{urls}/ca.crl")],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    return Issued(b.sign(issuer_key, hashes.SHA256()), key)


def _test_pki_ca(pki: testpki.TestPki, label: str) -> Issued:
    cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", label).read_bytes())
    key = serialization.load_pem_private_key(pki.key("mn-ec", label).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Issued(cert, key)


# --- documents ---------------------------------------------------------------------------------


def _sign(
    data: bytes,
    signer: signers.Signer,
    field_name: str = "Signature1",
    timestamper: DummyTimeStamper | None = None,
) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(data), strict=False),
        meta,
        signer=signer,
        timestamper=timestamper,
    )
    return out.getvalue()


def _signer_for(who: Issued, *chain: Issued) -> signers.Signer:
    return signers.SimpleSigner(
        signing_cert=who.asn1,
        signing_key=who.asn1_key,
        cert_registry=SimpleCertificateStore.from_certs([c.asn1 for c in chain]),
    )


def _official(pki: testpki.TestPki) -> signers.Signer:
    signer = signers.SimpleSigner.load_pkcs12(pki.p12("mn-ec", "official"), passphrase=PASSWORD)
    assert signer is not None
    return signer


def _attacker_tsa(tsa: Issued) -> DummyTimeStamper:
    # The TSA's own certificate only: its issuer is reachable through AIA alone.
    return DummyTimeStamper(tsa_cert=tsa.asn1, tsa_key=tsa.asn1_key)


def _doc_timestamp(data: bytes, timestamper: DummyTimeStamper) -> bytes:
    out = BytesIO()
    w = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    PdfTimeStamper(timestamper).timestamp_pdf(w, "sha256", output=out)
    return out.getvalue()


def _fields_sharing_one_value(data: bytes, extra: int, *, copies: bool = False) -> bytes:
    """``extra`` more signature fields whose /V is the first field's signature dictionary, or
    with ``copies`` a copy of it each (one signature value, ``extra`` + 1 objects)."""
    w = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    form = w.root["/AcroForm"]
    field_refs = form["/Fields"]
    value = field_refs[0].get_object().raw_get("/V")
    for i in range(extra):
        v = value
        if copies:
            v = w.add_object(generic.DictionaryObject(dict(value.get_object().items())))
        f = generic.DictionaryObject(
            {
                generic.NameObject("/FT"): generic.NameObject("/Sig"),
                generic.NameObject("/T"): generic.TextStringObject(f"Copy{i}"),
                generic.NameObject("/V"): v,
            }
        )
        field_refs.append(w.add_object(f))
    w.update_container(field_refs)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


@dataclass
class Hostile:
    files: dict[str, Path]
    attacker: Listener
    allowed: Listener
    beyond: Listener
    slow: Listener
    flood: Listener


@pytest.fixture(scope="module")
def hostile(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    attacker = Listener()
    beyond = Listener()
    allowed = Listener(redirect_to=beyond.url)
    slow = Listener(trickle=True)
    flood = Listener(flood=256 * 1024 * 1024)
    out = tmp_path_factory.mktemp("fetch-security")
    evil_root = _issue("Attacker Root", None, ca=True)
    evil_tsa = _issue("Attacker TSA", evil_root, tsa=True, urls=attacker.url)
    evil_signer = _issue("Attacker Signer", evil_root, urls=attacker.url)
    sco = _test_pki_ca(pki, "sco")
    # Issued by a trusted CA but naming URLs outside the allowlist (or an allowed redirector).
    rogue = _issue("Rogue URLs", sco, urls=attacker.url)
    redirected = _issue("Redirected URLs", sco, urls=allowed.url)
    trickled = _issue("Slow URLs", sco, urls=slow.url)
    flooded = _issue("Flooding URLs", sco, urls=flood.url)
    official = _official(pki)
    signed = _sign(SAMPLE, official)
    docs = {
        "doc-timestamp": _doc_timestamp(signed, _attacker_tsa(evil_tsa)),
        "signature-timestamp": _sign(SAMPLE, official, timestamper=_attacker_tsa(evil_tsa)),
        "attacker-signer": _sign(SAMPLE, _signer_for(evil_signer, evil_root)),
        "rogue-urls": _sign(SAMPLE, _signer_for(rogue, sco)),
        "redirect": _sign(SAMPLE, _signer_for(redirected, sco)),
        "slow": _sign(SAMPLE, _signer_for(trickled, sco)),
        "flood": _sign(SAMPLE, _signer_for(flooded, sco)),
        "shared-value": _fields_sharing_one_value(signed, 19),
        "copied-value": _fields_sharing_one_value(signed, 19, copies=True),
    }
    many = SAMPLE
    for i in range(20):
        many = _sign(many, official, field_name=f"Signature{i + 1}")
    docs["twenty-signatures"] = many
    files = {}
    for name, data in docs.items():
        files[name] = out / f"{name}.pdf"
        files[name].write_bytes(data)
    yield Hostile(files, attacker, allowed, beyond, slow, flood)
    for listener in (attacker, allowed, beyond, slow, flood):
        listener.close()


def _trust(pki: testpki.TestPki, *allow: str) -> TrustConfig:
    return TrustConfig.from_paths(
        [pki.trust_dir], fetch_allow=allow, intermediates=[pki.intermediates_dir]
    )


def _toml(pki: testpki.TestPki, path: Path, *allow: str) -> Path:
    path.write_text(
        f"anchors = [{json.dumps(str(pki.trust_dir))}]\n"
        f"intermediates = [{json.dumps(str(pki.intermediates_dir))}]\n"
        f"fetch_allow = {json.dumps(list(allow))}\n"
    )
    return path


ATTACKS = ["doc-timestamp", "signature-timestamp", "attacker-signer"]


# --- the allowlist itself -----------------------------------------------------------------------


def test_allowlist_compares_url_parts_not_string_prefixes() -> None:
    allow = ["http://ocsp.gov.mn", "http://127.0.0.1:8781/pki/"]
    assert url_allowed("http://ocsp.gov.mn/ocsp", allow)
    assert url_allowed("http://127.0.0.1:8781/pki/crl", allow)
    for url in (
        "http://ocsp.gov.mn.evil.example/ocsp",
        "http://ocsp.gov.mn@evil.example/ocsp",
        "http://user@ocsp.gov.mn/ocsp",
        "http://ocsp.gov.mn:8080/ocsp",
        "https://ocsp.gov.mn/ocsp",
        "http://127.0.0.1:8781/pkix",
        "http://127.0.0.1:8781/other/crl",
        "ftp://ocsp.gov.mn/",
        "http://ocsp.gov.mn/\nHost: evil",
        "file:///etc/passwd",
    ):
        assert not url_allowed(url, allow), url


# --- SSRF: zero requests reach an attacker ------------------------------------------------------


@pytest.mark.parametrize("case", ATTACKS)
@pytest.mark.parametrize("allowlist", ["test-pki", "empty"])
def test_library_fetches_nothing_an_attacker_names(
    pki: testpki.TestPki, hostile: Hostile, case: str, allowlist: str
) -> None:
    allow = (pki.url + "/",) if allowlist == "test-pki" else ()
    hostile.attacker.reset()
    report = Verifier(_trust(pki, *allow), VerifyOptions(online=True)).verify_file(
        hostile.files[case]
    )
    assert hostile.attacker.hits == 0, hostile.attacker.requests
    assert report.indication is Indication.INDETERMINATE, report
    assert report.subindication == "NO_CERTIFICATE_CHAIN_FOUND", report


def test_trusted_certificate_naming_an_unlisted_url_is_not_fetched(
    pki: testpki.TestPki, hostile: Hostile
) -> None:
    """A certificate a trusted CA issued with OCSP/CRL URLs outside ``fetch_allow``."""
    hostile.attacker.reset()
    report = Verifier(_trust(pki, pki.url + "/"), VerifyOptions(online=True)).verify_file(
        hostile.files["rogue-urls"]
    )
    assert hostile.attacker.hits == 0, hostile.attacker.requests
    assert report.indication is Indication.INDETERMINATE, report


def test_redirects_are_not_followed(pki: testpki.TestPki, hostile: Hostile) -> None:
    hostile.allowed.reset()
    hostile.beyond.reset()
    trust = _trust(pki, pki.url + "/", hostile.allowed.url + "/")
    report = Verifier(trust, VerifyOptions(online=True)).verify_file(hostile.files["redirect"])
    assert hostile.allowed.hits >= 1, "the allowlisted URL was never asked"
    assert hostile.beyond.hits == 0, hostile.beyond.requests
    assert report.indication is Indication.INDETERMINATE, report


def test_allowed_server_trickling_its_answer_cannot_hold_verification(
    pki: testpki.TestPki, hostile: Hostile
) -> None:
    trust = _trust(pki, pki.url + "/", hostile.slow.url + "/")
    started = time.monotonic()
    report = Verifier(trust, VerifyOptions(online=True)).verify_file(hostile.files["slow"])
    seconds = time.monotonic() - started
    assert hostile.slow.hits >= 1, "the allowlisted URL was never asked"
    assert seconds < 10, seconds
    assert report.indication is Indication.INDETERMINATE, report


def test_allowed_server_flooding_its_answer_is_cut_off(
    pki: testpki.TestPki, hostile: Hostile
) -> None:
    """256 MiB answers to OCSP and CRL requests, without a Content-Length: the client stops
    reading past its cap (256 KiB OCSP, 8 MiB CRL; the rest is socket buffers)."""
    trust = _trust(pki, pki.url + "/", hostile.flood.url + "/")
    started = time.monotonic()
    report = Verifier(trust, VerifyOptions(online=True)).verify_file(hostile.files["flood"])
    seconds = time.monotonic() - started
    assert hostile.flood.hits >= 1, "the allowlisted URL was never asked"
    assert hostile.flood.sent < 48 * 1024 * 1024, hostile.flood.sent
    assert seconds < 10, seconds
    assert report.indication is Indication.INDETERMINATE, report


def test_cli_online_fetches_nothing_an_attacker_names(
    pki: testpki.TestPki, hostile: Hostile, tmp_path: Path
) -> None:
    toml = _toml(pki, tmp_path / "trust.toml", pki.url + "/")
    for trust in (str(toml), str(pki.trust_dir)):  # an allowlist, and none
        for case in ATTACKS:
            hostile.attacker.reset()
            r = run_esign(
                "verify", str(hostile.files[case]), "--trust", trust, "--online", "--json"
            )
            assert hostile.attacker.hits == 0, (trust, case, hostile.attacker.requests)
            assert r.code == 2, (trust, case, r.out, r.err)
            assert json.loads(r.out)["indication"] == "INDETERMINATE", (trust, case)
            assert "Traceback" not in r.err


def test_web_upload_and_api_fetch_nothing_an_attacker_names(
    pki: testpki.TestPki, hostile: Hostile, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from verify.web.app import create_app
    from verify.web.config import ServerConfig

    toml = _toml(pki, tmp_path / "trust.toml", pki.url + "/")
    app = create_app(ServerConfig(trust=(toml,), registry_url=None))
    with TestClient(app) as client:
        for case in ATTACKS:
            hostile.attacker.reset()
            r = client.post("/api/v1/verify", content=hostile.files[case].read_bytes())
            assert hostile.attacker.hits == 0, (case, hostile.attacker.requests)
            assert r.status_code == 200, (case, r.status_code, r.text)
            assert r.json()["indication"] == "INDETERMINATE", (case, r.text)
            page = client.post(
                "/verify",
                files={
                    "file": (f"{case}.pdf", hostile.files[case].read_bytes(), "application/pdf")
                },
                data={"lang": "en"},
            )
            assert hostile.attacker.hits == 0, (case, hostile.attacker.requests)
            assert page.status_code == 200, (case, page.status_code)
            assert '<section class="verdict unknown"' in page.text, case
            assert "INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND" in page.text, case


# --- revocation data once per certificate per document ------------------------------------------


def _timed(
    verifier: Verifier, path: Path, services: PkiServices
) -> tuple[DocumentReport, int, float]:
    before = services.requests_served
    started = time.monotonic()
    report = verifier.verify_file(path)
    return report, services.requests_served - before, time.monotonic() - started


def test_twenty_signatures_by_one_signer_fetch_once(
    pki: testpki.TestPki, services: PkiServices, hostile: Hostile
) -> None:
    verifier = Verifier(_trust(pki, pki.url + "/"), VerifyOptions(online=True))
    report, fetches, seconds = _timed(verifier, hostile.files["twenty-signatures"], services)
    assert len(report.signatures) == 20
    assert report.indication is Indication.TOTAL_PASSED, report
    assert 1 <= fetches <= 3, fetches
    assert seconds < 10, seconds


@pytest.mark.parametrize("case", ["shared-value", "copied-value"])
def test_twenty_fields_sharing_one_value_fetch_at_most_once(
    pki: testpki.TestPki, services: PkiServices, hostile: Hostile, case: str
) -> None:
    verifier = Verifier(_trust(pki, pki.url + "/"), VerifyOptions(online=True))
    report, fetches, seconds = _timed(verifier, hostile.files[case], services)
    assert report.indication is not Indication.TOTAL_PASSED, report
    assert fetches <= 3, fetches
    assert seconds < 10, seconds


def test_exhausted_fetch_budget_is_indeterminate_try_later(
    pki: testpki.TestPki, services: PkiServices, hostile: Hostile
) -> None:
    """A budget of one request cannot cover a signer's OCSP and its CA's CRL: the verdict says
    so, and is never a failed signature."""
    options = VerifyOptions(online=True, fetch_policy=FetchPolicy(max_requests=1))
    verifier = Verifier(_trust(pki, pki.url + "/"), options)
    report, fetches, _ = _timed(verifier, hostile.files["twenty-signatures"], services)
    assert fetches <= 1, fetches
    assert report.indication is Indication.INDETERMINATE, report
    first = report.signatures[0]
    assert first.subindication == "TRY_LATER", first
    assert any(BUDGET_EXHAUSTED in d for d in first.details), first.details
