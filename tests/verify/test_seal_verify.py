"""QR seal decoding and verification: verdicts, committed vectors, and hostile input."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esign import testpki
from esign.seal import (
    SealClaims,
    SealSigner,
    b32,
    claims_map,
    cose_sign1,
    fields_digest,
    protected_header,
    seal_url,
)
from verify.report import Indication
from verify.seal import (
    SealFormatError,
    SealReport,
    decode_cose,
    decode_seal,
    load_seal_certs,
    verify_seal,
)
from verify.trust import TrustConfig, load_cert_paths

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "samples" / "seal-vectors"
BASE_URL = "https://verify.e-mongolia.mn"
AT = datetime(2026, 12, 1, 4, tzinfo=UTC)

CLAIMS = SealClaims(
    issuer="UBEG",
    doc_type="residence",
    number="ОСХ-2026-000123",
    issued=date(2026, 11, 25),
    expires=date(2027, 2, 23),
    subject_name="Батбаярын Энх-Амгалан",
    subject_id="УБ99112233",
    fields_digest=fields_digest({"address": "Улаанбаатар", "registered_since": "2019-04-15"}),
)


@pytest.fixture(scope="module")
def signer(pki: testpki.TestPki) -> SealSigner:
    return SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))


@pytest.fixture(scope="module")
def trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


@pytest.fixture(scope="module")
def seal_certs(pki: testpki.TestPki) -> tuple[asn1_x509.Certificate, ...]:
    return load_seal_certs([pki.cert("mn-ec", "seal")])


def _self_signed() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forged Seal")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2045, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# --- verdicts with the test PKI -------------------------------------------------------------


def test_round_trip(signer: SealSigner, trust: TrustConfig, seal_certs: tuple) -> None:
    url = signer.url(BASE_URL, CLAIMS)
    report = verify_seal(url, trust, seal_certs, at=AT)
    assert report.indication is Indication.TOTAL_PASSED, report
    assert report.subindication is None
    assert report.claims == CLAIMS
    assert report.kid == signer.kid.hex()
    assert report.seal_certificate is not None and "УБЕГ цахим тамга" in report.seal_certificate
    assert report.exit_code == 0
    assert report.explanation.mn.startswith("QR тамга хүчинтэй")
    json.dumps(report.to_dict(), ensure_ascii=False)
    assert replace(report, registry_status="active").to_dict()["registry_status"] == "active"


@pytest.mark.parametrize(
    "form",
    [
        lambda url: url,
        lambda url: url.lower(),
        lambda url: url + "/",
        lambda url: url.lower() + "/?lang=en#top",
        lambda url: "  " + url + "\n",
        lambda url: url.rsplit("/", 1)[1],
        lambda url: url.rsplit("/", 1)[1].lower(),
        lambda url: url.replace("/V/", "/v/"),
    ],
)
def test_accepted_input_forms(signer: SealSigner, form: object) -> None:
    url = signer.url(BASE_URL, CLAIMS)
    assert callable(form)
    assert decode_seal(form(url)).claims == CLAIMS


def test_changed_claim_fails(signer: SealSigner, trust: TrustConfig, seal_certs: tuple) -> None:
    cose = signer.sign_cose(CLAIMS)
    old = cbor2.dumps(claims_map(CLAIMS), canonical=True)
    new = cbor2.dumps(claims_map(replace(CLAIMS, number="ОСХ-2026-000999")), canonical=True)
    forged = b32(cose.replace(old, new))
    report = verify_seal(forged, trust, seal_certs, at=AT)
    assert (report.indication, report.subindication) == (
        Indication.TOTAL_FAILED,
        "SIG_CRYPTO_FAILURE",
    )
    assert report.exit_code == 1


def test_forged_seal_with_untrusted_certificate(trust: TrustConfig, seal_certs: tuple) -> None:
    """A forger publishes their own certificate next to the real one: it does not chain."""
    key, cert = _self_signed()
    forged = SealSigner(key, cert).sign(CLAIMS)
    report = verify_seal(forged, trust, (*seal_certs, _asn1(cert)), at=AT)
    assert (report.indication, report.subindication) == (
        Indication.INDETERMINATE,
        "NO_CERTIFICATE_CHAIN_FOUND",
    )
    assert report.exit_code == 2
    unknown = verify_seal(forged, trust, seal_certs, at=AT)
    assert unknown.subindication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert "no published seal certificate" in unknown.details[0]


def test_chain_needs_the_issuing_ca(
    signer: SealSigner, pki: testpki.TestPki, seal_certs: tuple
) -> None:
    anchors_only = TrustConfig(anchors=load_cert_paths([pki.trust_dir]))
    report = verify_seal(signer.sign(CLAIMS), anchors_only, seal_certs, at=AT)
    assert report.subindication == "NO_CERTIFICATE_CHAIN_FOUND"


def test_expired_seal_certificate(pki: testpki.TestPki, trust: TrustConfig) -> None:
    expired = SealSigner.from_pem_files(pki.key("mn-ec", "expired"), pki.cert("mn-ec", "expired"))
    certs = load_seal_certs([pki.cert("mn-ec", "expired")])
    report = verify_seal(expired.sign(CLAIMS), trust, certs, at=AT)
    assert (report.indication, report.subindication) == (
        Indication.INDETERMINATE,
        "OUT_OF_BOUNDS_NO_POE",
    )


def test_expired_document(signer: SealSigner, trust: TrustConfig, seal_certs: tuple) -> None:
    old = replace(CLAIMS, issued=date(2026, 1, 1), expires=date(2026, 3, 31))
    report = verify_seal(signer.sign(old), trust, seal_certs, at=AT)
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, "EXPIRED")
    assert report.claims == old
    assert report.explanation.en == "The seal is genuine but the document has expired."


def test_expiry_day_is_inclusive_in_mongolian_time(
    signer: SealSigner, trust: TrustConfig, seal_certs: tuple
) -> None:
    text = signer.sign(replace(CLAIMS, expires=date(2026, 12, 1)))
    last_minute = datetime(2026, 12, 1, 15, 59, tzinfo=UTC)  # 23:59 in Ulaanbaatar
    assert verify_seal(text, trust, seal_certs, at=last_minute).subindication is None
    next_day = last_minute + timedelta(minutes=1)
    assert verify_seal(text, trust, seal_certs, at=next_day).subindication == "EXPIRED"


def test_document_from_the_future(
    signer: SealSigner, trust: TrustConfig, seal_certs: tuple
) -> None:
    later = replace(CLAIMS, issued=date(2027, 1, 1), expires=None)
    report = verify_seal(signer.sign(later), trust, seal_certs, at=AT)
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, "NOT_YET_VALID")


def test_truncated_payload(signer: SealSigner, trust: TrustConfig, seal_certs: tuple) -> None:
    url = signer.url(BASE_URL, CLAIMS)
    for cut in (1, 8, 16, 100):
        with pytest.raises(SealFormatError) as info:
            decode_seal(url[:-cut])
        assert info.value.exit_code == 4
        report = verify_seal(url[:-cut], trust, seal_certs, at=AT)
        assert (report.indication, report.subindication) == (
            Indication.TOTAL_FAILED,
            "FORMAT_FAILURE",
        )
        assert report.claims is None
        assert report.details[0].startswith("malformed QR seal:")


# The committed vectors run in tests/verify/test_seal_vectors.py (through the CLI, with a table).


# --- hostile input --------------------------------------------------------------------------

KID = bytes(8)
SIG = bytes(64)


def _cose_with(payload: object, protected: bytes | None = None) -> bytes:
    body = cbor2.dumps(payload, canonical=True) if not isinstance(payload, bytes) else payload
    return cose_sign1(protected if protected is not None else protected_header(KID), body, SIG)


def _malformed(data: bytes | str) -> str:
    """Decoding must fail with a one-line SealFormatError and nothing else."""
    text = data if isinstance(data, str) else b32(data)
    with pytest.raises(SealFormatError) as info:
        decode_seal(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("malformed QR seal:")
    return message


GOOD_MAP = claims_map(CLAIMS)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ([1, 2, 3], "not a CBOR map"),
        ("text", "not a CBOR map"),
        (GOOD_MAP | {1: 2}, "unsupported seal version"),
        (GOOD_MAP | {1: "1"}, "unsupported seal version"),
        (GOOD_MAP | {2: 7}, "issuer"),
        (GOOD_MAP | {4: b"bytes"}, "number"),
        (GOOD_MAP | {5: "2026-11-25"}, "issued"),
        (GOOD_MAP | {5: -1}, "issued"),
        (GOOD_MAP | {5: 2**40}, "issued"),
        (GOOD_MAP | {6: [1]}, "expires"),
        (GOOD_MAP | {9: b"\x00" * 15}, "fields_digest"),
        (GOOD_MAP | {9: "00" * 16}, "fields_digest"),
        (GOOD_MAP | {10: 1}, "unknown critical claim 10"),
        (GOOD_MAP | {-1: 1}, "unsigned integers"),
        ({**GOOD_MAP, "x": 1}, "unsigned integers"),
        ({k: v for k, v in GOOD_MAP.items() if k != 7}, "subject_name"),
        (GOOD_MAP | {7: "Бат\x00"}, "control or format"),
        (GOOD_MAP | {6: GOOD_MAP[5] - 1}, "expires is before issued"),
    ],
)
def test_wrong_claim_types(payload: object, why: str) -> None:
    assert why in _malformed(_cose_with(payload))


@pytest.mark.parametrize(
    ("cose", "why"),
    [
        (b"", "empty"),
        (b"\xd2", "truncated"),
        (cbor2.dumps([1, 2, 3, 4]), "tag 18"),
        (cbor2.dumps(cbor2.CBORTag(18, [1, 2])), "4 items"),
        (cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", SIG])), "protected header is empty"),
        (cbor2.dumps(cbor2.CBORTag(18, [protected_header(KID), {1: -7}, b"\xa0", SIG])), "empty"),
        (cbor2.dumps(cbor2.CBORTag(18, [protected_header(KID), {}, None, SIG])), "floating"),
        (cbor2.dumps(cbor2.CBORTag(18, [protected_header(KID), {}, b"\xa0", b"x"])), "64 bytes"),
        (_cose_with(GOOD_MAP, cbor2.dumps({1: -7, 4: b"short"})), "kid"),
        (_cose_with(GOOD_MAP, cbor2.dumps({1: -7, 4: KID, 2: [1]}, canonical=True)), "exactly"),
        (_cose_with(GOOD_MAP, cbor2.dumps({1: "ES256", 4: KID})), "not ES256"),
        (_cose_with(GOOD_MAP, cbor2.dumps({4: KID, 1: -7})), "deterministic"),
        (cbor2.dumps(cbor2.CBORTag(18, cbor2.CBORTag(18, [1, 2, 3, 4]))), "unexpected CBOR tag"),
        (b"\xd8\x18" + cbor2.dumps(b"\xd2\x80"), "unexpected CBOR tag 24"),
        (b"\xc1\x1a\x5f\x00\x00\x00", "unexpected CBOR tag 1"),
        (b"\xd2\x84\xc2\x41\x01\xa0\x40\x40", "unexpected CBOR tag 2"),
        (_cose_with(b"\xa1\x01\xc0\x61\x30"), "unexpected CBOR tag 0"),
        (b"\xd2\x5b" + (2**64 - 1).to_bytes(8, "big"), "declares"),
        (b"\xd2\x9b" + (2**63).to_bytes(8, "big"), "declares"),
        (b"\xd2\xbb" + (2**32).to_bytes(8, "big") + b"\x00", "declares"),
        (b"\xd2\x7a\xff\xff\xff\xff" + b"\x00" * 10, "declares"),
        (b"\xd2\x81" * 40 + b"\x00", "unexpected CBOR tag"),
        (b"\xd2" + b"\x81" * 40 + b"\x00", "nested too deeply"),
        (b"\xd2\x9f\x01\xff", "indefinite"),
        (b"\xd2\x84\x58\x01\x00" + bytes(8), "non-minimal"),
        (b"\xd2\x84\xfb" + bytes(8), "floating"),
        (b"\xd2\x84\xf5\xf6\xf7\xf4", "floating"),
        (b"\xd2\x84\x1c" + bytes(8), "reserved"),
        (_cose_with(GOOD_MAP) + b"\x00", "1 bytes follow"),
        (_cose_with(b"\xa2\x01\x01\x01\x01"), "repeats a map key"),
        (_cose_with(b"\xa1\x02\x62\xc3\x28"), "UTF-8"),
        (bytes(1025), "longer than 1024"),
    ],
)
def test_malformed_cbor(cose: bytes, why: str) -> None:
    assert why in _malformed(cose)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("https://verify.e-mongolia.mn/", "no /v/"),
        ("https://verify.e-mongolia.mn/v/", "empty"),
        ("HTTPS://VERIFY.E-MONGOLIA.MN/V/ABC DEF", "not base32"),
        ("ABC=DEFG", "not base32"),
        ("ЯБВГ", "not base32"),
        ("A", "whole number of bytes"),
        ("AB", "byte boundary"),
        ("A" * 5000, "more than 4096"),
        ("A" * 1700, "longer than 1024"),
    ],
)
def test_malformed_text(text: str, why: str) -> None:
    assert why in _malformed(text)


def test_non_text_input() -> None:
    with pytest.raises(SealFormatError):
        decode_seal(b"bytes")  # type: ignore[arg-type]


def test_seeded_fuzz_never_crashes(signer: SealSigner) -> None:
    """Random bytes, truncations and byte flips of a real seal: a SealFormatError or a decoded
    seal, never another exception."""
    good = signer.sign_cose(CLAIMS)
    rng = random.Random(20261125)
    decoded = 0
    for _ in range(4000):
        roll = rng.random()
        if roll < 0.3:
            data = rng.randbytes(rng.randint(0, 300))
        elif roll < 0.5:
            data = good[: rng.randrange(len(good))]
        else:
            data = bytearray(good)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data)
        try:
            decode_cose(data)
            decoded += 1
        except SealFormatError as e:
            assert "\n" not in str(e)
    assert decoded < 4000


def test_verify_never_raises_on_garbage(trust: TrustConfig, seal_certs: tuple) -> None:
    rng = random.Random(7)
    for _ in range(50):
        text = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567/:?.vV") for _ in range(120))
        report = verify_seal(text, trust, seal_certs, at=AT)
        assert isinstance(report, SealReport)
        assert report.subindication == "FORMAT_FAILURE"


def test_url_helper_round_trip() -> None:
    assert decode_cose(bytes.fromhex(_vector_hex())).claims.number == "ОСХ-2026-000123"
    assert seal_url(BASE_URL, "AA").endswith("/V/AA")


def _vector_hex() -> str:
    return str(json.loads((VECTORS / "01-valid.json").read_text("utf-8"))["cose_sign1_hex"])
