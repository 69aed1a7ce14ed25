"""`esign seal verify` as a citizen, a bank clerk or a notary uses it: the genuine seal read from
its URL, a screen rendering, a photocopy and the PDF is accepted; altered, forged, truncated,
expired, revoked and transplanted seals are refused with the right exit code and a clear message.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from PIL import Image, ImageEnhance, ImageFilter

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.render import SealBlock, render_certificate
from esign.seal import (
    SealClaims,
    SealSigner,
    b32,
    cose_sign1,
    key_id,
    protected_header,
    seal_url,
    sig_structure,
)
from esign.services import PkiServices
from esign.template import load_template, parse_data
from tests.helpers import REPO, Run, require_tool, run_esign
from verify.seal import SealFormatError, decode_seal

BASE_URL = "http://127.0.0.1:9/"
ISSUED_LINE = re.compile(r"\(id ([A-Z2-7]{5}-[A-Z2-7]{5})\)")
QR_LINE = re.compile(r"^QR: (\S+)$", re.M)
RESIDENCE = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Doc:
    pdf: Path
    url: str
    doc_id: str
    data: dict[str, object]


@dataclass(frozen=True)
class Setup:
    folder: Path
    trust: Path
    registry: str
    genuine: Doc
    other: Doc
    expired: Doc
    to_revoke: Doc
    png: Path
    photocopy: Path


def _variant(number: str, name: str, register: str, **extra: str) -> dict[str, object]:
    data = json.loads(json.dumps(RESIDENCE))
    data["number"] = number
    data["subject"] = {"name": name, "register_number": register}
    data.update(extra)
    return data


def _issue(pki: testpki.TestPki, folder: Path, registry: str, data: dict[str, object]) -> Doc:
    stem = str(data["number"])
    data_file = folder / f"{stem}.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    pdf = folder / f"{stem}.pdf"
    r = run_esign(
        "issue",
        "--template",
        "residence",
        "--data",
        str(data_file),
        "-o",
        str(pdf),
        "--key",
        str(pki.p12("mn-ec", "seal")),
        "--passfile",
        str(pki.password_file),
        "--tsa",
        pki.tsa_url("mn-ec"),
        "--base-url",
        BASE_URL,
        "--registry",
        registry,
        cwd=folder,
    )
    assert r.code == 0, r.out + r.err
    found_id, found_url = ISSUED_LINE.search(r.out), QR_LINE.search(r.out)
    assert found_id and found_url, r.out
    return Doc(pdf=pdf, url=found_url.group(1), doc_id=found_id.group(1), data=data)


def _photocopy(pdf: Path, out: Path) -> Path:
    stem = out.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", str(pdf), str(stem)],
        check=True,
        capture_output=True,
    )
    with Image.open(stem.with_suffix(".png")) as page:
        img = page.convert("L")
    img = img.filter(ImageFilter.GaussianBlur(radius=1.2))
    noise = Image.frombytes("L", img.size, random.Random(7).randbytes(img.width * img.height))
    img = Image.blend(img, noise, 0.12)
    img = img.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    img = ImageEnhance.Contrast(img).enhance(0.6)
    img.save(out, "JPEG", quality=60)
    return out


@pytest.fixture(scope="module")
def setup(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Setup:
    require_tool("pdftoppm")
    folder = tmp_path_factory.mktemp("seal-cli")
    trust = folder / "trust.toml"
    trust.write_text(
        f'anchors = ["{pki.trust_dir.resolve()}"]\n'
        f'intermediates = ["{pki.intermediates_dir.resolve()}"]\n'
        f'seal_certificates = ["{pki.seals_dir.resolve()}"]\n',
        encoding="utf-8",
    )
    registry = f"sqlite:{folder / 'reg.sqlite3'}"
    today = datetime.now(UTC).date()
    genuine = _issue(
        pki,
        folder,
        registry,
        _variant(
            "ОСХ-2026-000201", "Батбаярын Энх-Амгалан", "УБ99112233", issued=today.isoformat()
        ),
    )
    other = _issue(
        pki,
        folder,
        registry,
        _variant("ОСХ-2026-000202", "Дорждэрэмийн Өнөрмаа", "ЧД95031544", issued=today.isoformat()),
    )
    expired = _issue(
        pki,
        folder,
        registry,
        _variant(
            "ОСХ-2024-000203",
            "Ганболдын Түвшин",
            "УБ88020355",
            issued="2024-01-10",
            expires="2024-04-09",
        ),
    )
    to_revoke = _issue(
        pki,
        folder,
        registry,
        _variant("ОСХ-2026-000204", "Сүхийн Үүрээ", "ДА90050466", issued=today.isoformat()),
    )
    stem = folder / "page"
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-singlefile", str(genuine.pdf), str(stem)],
        check=True,
        capture_output=True,
    )
    return Setup(
        folder=folder,
        trust=trust,
        registry=registry,
        genuine=genuine,
        other=other,
        expired=expired,
        to_revoke=to_revoke,
        png=stem.with_suffix(".png"),
        photocopy=_photocopy(genuine.pdf, folder / "copy.jpg"),
    )


def seal_verify(setup: Setup, source: str, *args: str) -> Run:
    return run_esign("seal", "verify", source, "--trust", str(setup.trust), *args, cwd=setup.folder)


def _clean(r: Run) -> None:
    assert "Traceback" not in r.out + r.err, r.out + r.err
    assert "internal error" not in r.err, r.err


# ---- the genuine seal is accepted however it is held ------------------------------------------


@pytest.mark.parametrize("how", ["url", "payload", "png", "photocopy", "pdf"])
def test_genuine_seal_is_accepted(setup: Setup, how: str) -> None:
    source = {
        "url": setup.genuine.url,
        "payload": setup.genuine.url.rsplit("/V/", 1)[1],
        "png": str(setup.png),
        "photocopy": str(setup.photocopy),
        "pdf": str(setup.genuine.pdf),
    }[how]
    r = seal_verify(setup, source, "--registry", setup.registry, "--lang", "en")
    _clean(r)
    assert r.code == 0, r.out + r.err
    assert r.out.startswith("VALID (TOTAL-PASSED)"), r.out
    assert "ОСХ-2026-000201" in r.out
    assert "Батбаярын Энх-Амгалан (УБ99112233)" in r.out
    assert "registry: active" in r.out


def test_genuine_seal_in_mongolian_and_json(setup: Setup) -> None:
    r = seal_verify(setup, setup.genuine.url)
    assert r.code == 0 and r.out.startswith("ХҮЧИНТЭЙ (TOTAL-PASSED)"), r.out + r.err
    r = seal_verify(setup, setup.genuine.url, "--json", "--registry", setup.registry)
    assert r.code == 0, r.out + r.err
    report = json.loads(r.out)
    assert report["indication"] == "TOTAL-PASSED"
    assert report["claims"]["number"] == "ОСХ-2026-000201"
    assert report["claims"]["subject_id"] == "УБ99112233"
    assert report["registry_status"] == "active"


def test_lower_case_url_as_a_phone_may_report_it(setup: Setup) -> None:
    r = seal_verify(setup, setup.genuine.url.lower())
    assert r.code == 0, r.out + r.err


# ---- altered, forged and broken seals ---------------------------------------------------------


def _payload(url: str) -> str:
    return url.rsplit("/V/", 1)[1]


def _cose_parts(url: str) -> tuple[bytes, dict[int, object], bytes, bytes]:
    raw = _payload(url)
    cose = cbor2.loads(base64.b32decode(raw + "=" * (-len(raw) % 8)))
    protected, _, payload, signature = cose.value
    return protected, cbor2.loads(payload), payload, signature


def test_changed_number_keeps_signature_and_is_refused(setup: Setup) -> None:
    protected, claims, _, signature = _cose_parts(setup.genuine.url)
    assert claims[4] == "ОСХ-2026-000201"
    claims[4] = "ОСХ-2026-000999"
    forged = cose_sign1(protected, cbor2.dumps(claims, canonical=True), signature)
    url = seal_url(BASE_URL, b32(forged))
    assert decode_seal(url).claims.number == "ОСХ-2026-000999", "the forgery is well-formed"
    r = seal_verify(setup, url, "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "NOT VALID (TOTAL-FAILED / SIG_CRYPTO_FAILURE)" in r.out
    assert "contents were changed or the seal is forged" in r.out


def test_flipped_base32_character_is_refused(setup: Setup) -> None:
    url = setup.genuine.url
    original = decode_seal(url).claims
    prefix, payload = url.rsplit("/V/", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    altered = None
    for pos in range(len(payload) // 3, len(payload)):
        for ch in alphabet:
            if ch == payload[pos]:
                continue
            candidate = f"{prefix}/V/{payload[:pos]}{ch}{payload[pos + 1 :]}"
            try:
                claims = decode_seal(candidate).claims
            except SealFormatError:
                continue
            if claims != original:
                altered = candidate
                break
        if altered:
            break
    assert altered is not None, "some one-character change must still decode to other claims"
    r = seal_verify(setup, altered, "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "SIG_CRYPTO_FAILURE" in r.out


def _self_signed(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "УБЕГ цахим тамга (хуурамч)"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Улсын бүртгэлийн ерөнхий газар"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    path = folder / "forged-seal.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _genuine_claims(setup: Setup) -> SealClaims:
    return decode_seal(setup.genuine.url).claims


def test_seal_by_an_untrusted_key_is_refused(setup: Setup, tmp_path: Path) -> None:
    key, cert, cert_path = _self_signed(tmp_path)
    url = SealSigner(key, cert).url(BASE_URL, _genuine_claims(setup))
    # The attacker also publishes the certificate: it still does not chain to a state anchor.
    r = seal_verify(setup, url, "--seal-certs", str(cert_path), "--lang", "en")
    _clean(r)
    assert r.code == 2, r.out + r.err
    assert "(INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND)" in r.out
    assert "unknown key" in r.out and "state trust anchor" in r.out
    # Not published at all: the key id is unknown.
    r = seal_verify(setup, url, "--lang", "en")
    assert r.code == 2 and "NO_CERTIFICATE_CHAIN_FOUND" in r.out, r.out + r.err
    kid = key_id(cert.public_bytes(serialization.Encoding.DER)).hex()
    assert f"no published seal certificate has kid {kid}" in r.out


def test_seal_by_another_key_under_the_agency_key_id_is_refused(
    setup: Setup, pki: testpki.TestPki, tmp_path: Path
) -> None:
    """The forger copies the genuine kid into the header; the signature then fails."""
    key, _, _ = _self_signed(tmp_path)
    genuine_cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    protected = protected_header(key_id(genuine_cert.public_bytes(serialization.Encoding.DER)))
    _, _, payload, _ = _cose_parts(setup.genuine.url)
    payload_claims = cbor2.loads(payload)
    payload_claims[7] = "Хуурамчийн Хулгайч"
    payload = cbor2.dumps(payload_claims, canonical=True)
    der = key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
    r_, s_ = decode_dss_signature(der)
    signature = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
    url = seal_url(BASE_URL, b32(cose_sign1(protected, payload, signature)))
    r = seal_verify(setup, url, "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "SIG_CRYPTO_FAILURE" in r.out


@pytest.mark.parametrize("cut", [1, 5, 40, 200])
def test_truncated_seal_is_refused(setup: Setup, cut: int) -> None:
    r = seal_verify(setup, setup.genuine.url[:-cut], "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "NOT VALID (TOTAL-FAILED / FORMAT_FAILURE)" in r.out
    assert "malformed QR seal:" in r.out


def test_expired_document_is_not_confirmed(setup: Setup) -> None:
    r = seal_verify(setup, setup.expired.url, "--registry", setup.registry, "--lang", "en")
    _clean(r)
    assert r.code == 2, r.out + r.err
    assert "(INDETERMINATE / EXPIRED)" in r.out
    assert "the seal is genuine but the document has expired" in r.out.lower()
    assert "expired on 2024-04-09" in r.out
    r = seal_verify(setup, setup.expired.url)
    assert r.code == 2 and "хүчинтэй хугацаа дууссан" in r.out, r.out


def test_revoked_document_is_refused(setup: Setup) -> None:
    doc = setup.to_revoke
    r = seal_verify(setup, doc.url, "--registry", setup.registry)
    assert r.code == 0, r.out + r.err
    r = run_esign(
        "revoke", doc.doc_id, "--reason", "алдаатай олгосон", "--registry", setup.registry
    )
    assert r.code == 0, r.out + r.err
    assert r.out.startswith(f"revoked {doc.doc_id} at ")
    for source in (doc.url, str(doc.pdf)):
        r = seal_verify(setup, source, "--registry", setup.registry, "--lang", "en")
        _clean(r)
        assert r.code == 1, r.out + r.err
        assert "(TOTAL-FAILED / REVOKED)" in r.out
        assert "The issuer has revoked this document." in r.out
        assert "registry: revoked" in r.out
        assert "алдаатай олгосон" in r.out
    # Offline (no registry) the seal itself is still genuine: revocation needs the registry.
    r = seal_verify(setup, doc.url)
    assert r.code == 0, r.out + r.err
    # Revoking twice keeps the first revocation.
    r = run_esign("revoke", doc.doc_id, "--reason", "again", "--registry", setup.registry)
    assert r.code >= 3 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_unknown_document_in_registry_is_not_confirmed(setup: Setup, tmp_path: Path) -> None:
    empty = f"sqlite:{tmp_path / 'empty.sqlite3'}"
    r = seal_verify(setup, setup.genuine.url, "--registry", empty, "--lang", "en")
    _clean(r)
    assert r.code == 2, r.out + r.err
    assert "registry: unknown" in r.out
    assert "not in the registry" in r.out


def test_genuine_seal_pasted_onto_another_document_is_refused(
    setup: Setup, pki: testpki.TestPki
) -> None:
    """Document B's content, signed by the same agency key, carrying document A's genuine QR."""
    template = load_template("residence")
    data_b = parse_data(setup.other.data, template)
    a = setup.genuine
    unsigned = render_certificate(
        template, data_b, SealBlock(url=a.url, address="127.0.0.1:9", code=a.doc_id)
    )
    pasted = setup.folder / "pasted.pdf"
    with load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode()) as key:
        signer = DocumentSigner(key, SignOptions(level=PadesLevel.B_B, certify=True))
        pasted.write_bytes(signer.sign_bytes(unsigned, data_b.number))
    # The PDF itself is a valid, trusted, agency-signed document ...
    r = run_esign("verify", str(pasted), "--trust", str(setup.trust))
    assert r.code == 0, r.out + r.err
    # ... and its QR is A's genuine seal ...
    r = seal_verify(setup, a.url)
    assert r.code == 0, r.out + r.err
    # ... but the seal does not belong to it.
    r = seal_verify(setup, str(pasted), "--registry", setup.registry, "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "TOTAL-FAILED" in r.out
    assert "does not belong to this document" in r.out
    assert "not in the PDF: number, register number, name" in r.out


def test_pdf_without_a_qr_code_is_refused(setup: Setup) -> None:
    r = seal_verify(setup, str(REPO / "samples" / "certificate.pdf"), "--lang", "en")
    _clean(r)
    assert r.code == 1, r.out + r.err
    assert "No QR code was found" in r.out


# ---- malformed input: one line that says so, a verdict code, no traceback ---------------------


def _assert_format_failure(r: Run) -> None:
    _clean(r)
    assert r.code == 1 or r.code >= 3, r.out + r.err
    if r.code == 1:
        assert "FORMAT_FAILURE" in r.out, r.out
        details = [line for line in r.out.splitlines() if "malformed QR seal" in line]
        assert len(details) == 1, r.out
    else:
        assert len(r.err.strip().splitlines()) == 1, r.err


def test_random_bytes_as_text(setup: Setup, tmp_path: Path) -> None:
    rng = random.Random(11)
    for i in range(3):
        blob = tmp_path / f"random{i}.txt"
        blob.write_bytes(b"x" + rng.randbytes(300))
        _assert_format_failure(seal_verify(setup, str(blob)))
    printable = "".join(chr(rng.randrange(33, 127)) for _ in range(200))
    _assert_format_failure(seal_verify(setup, printable))
    _assert_format_failure(seal_verify(setup, b32(os.urandom(200))))


def test_huge_base32_payload(setup: Setup) -> None:
    huge = b32(random.Random(3).randbytes(60_000))
    r = seal_verify(setup, huge)
    _assert_format_failure(r)
    assert r.code == 1 and "more than 4096" in r.out
    r = seal_verify(setup, seal_url(BASE_URL, b32(random.Random(4).randbytes(1500))))
    _assert_format_failure(r)
    assert r.code == 1 and "longer than 1024 bytes" in r.out


def _signed_raw(pki: testpki.TestPki, claims: object) -> str:
    """Claims of the wrong shape, properly signed with the genuine agency seal key."""
    key = serialization.load_pem_private_key(pki.key("mn-ec", "seal").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    protected = protected_header(key_id(cert.public_bytes(serialization.Encoding.DER)))
    payload = cbor2.dumps(claims, canonical=True)
    r_, s_ = decode_dss_signature(
        key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
    )
    signature = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
    return seal_url(BASE_URL, b32(cose_sign1(protected, payload, signature)))


def test_wrong_cbor_types(setup: Setup, pki: testpki.TestPki) -> None:
    _, claims, _, _ = _cose_parts(setup.genuine.url)
    wrong: list[tuple[str, str]] = [
        (_signed_raw(pki, {**claims, 4: 201}), "claim number (4) is missing or not text"),
        (_signed_raw(pki, {**claims, 5: "2026-11-25"}), "claim issued (5) is missing or not"),
        (_signed_raw(pki, {**claims, 9: "digest"}), "fields_digest"),
        (_signed_raw(pki, [1, 2, 3]), "the COSE payload is not a CBOR map"),
        (seal_url(BASE_URL, b32(cbor2.dumps({"a": 1}))), "tagged COSE_Sign1"),
        (seal_url(BASE_URL, b32(cbor2.dumps(cbor2.CBORTag(18, "x")))), "array of 4"),
        (seal_url(BASE_URL, b32(cbor2.dumps(cbor2.CBORTag(18, [1, {}, b"", b""])))), "header"),
        (seal_url(BASE_URL, b32(cbor2.dumps(3.5))), "floating-point"),
    ]
    for url, message in wrong:
        r = seal_verify(setup, url, "--lang", "en")
        _assert_format_failure(r)
        assert r.code == 1 and message in r.out, (message, r.out)


def test_not_an_image_or_pdf_file(setup: Setup, tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    r = seal_verify(setup, str(fake))
    _clean(r)
    assert r.code == 4, r.out + r.err
    assert len(r.err.strip().splitlines()) == 1 and "not a readable PNG or JPEG" in r.err
