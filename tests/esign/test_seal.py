"""QR seal encoding and signing: canonical bytes, key handling, URL form and QR size."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esign import testpki
from esign.errors import KeySourceError, UsageError
from esign.keysource import load_key
from esign.seal import (
    SealClaims,
    SealSigner,
    b32,
    encode_claims,
    fields_cbor,
    fields_digest,
    key_id,
    qr_version,
    seal_url,
)
from verify.seal import decode_seal

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "samples" / "seal-vectors"
BASE_URL = "https://verify.e-mongolia.mn"

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


def _vector(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def test_fields_digest_is_canonical() -> None:
    a = {"address": "Өлзийт гудамж", "registered_since": "2019-04-15"}
    b = dict(reversed(list(a.items())))
    decomposed = {k: unicodedata.normalize("NFD", v) for k, v in a.items()}
    assert fields_digest(a) == fields_digest(b) == fields_digest(decomposed)
    assert len(fields_digest(a)) == 16
    assert fields_digest(a) != fields_digest({**a, "address": "Өлзийт гудамж 1"})


def test_fields_digest_matches_vector() -> None:
    v = _vector("01-valid.json")
    fields = v["key_fields"]
    assert isinstance(fields, dict)
    assert fields_cbor(fields).hex() == v["key_fields_cbor_hex"]
    claims = v["claims"]
    assert isinstance(claims, dict)
    assert fields_digest(fields).hex() == claims["fields_digest"]


def test_fields_digest_refuses_ambiguous_names() -> None:
    with pytest.raises(UsageError):
        fields_digest({"гудамж_й": "1", "гудамж_и\u0306": "2"})  # й twice: NFC and NFD
    with pytest.raises(UsageError):
        fields_digest({"a": 1})  # type: ignore[dict-item]


def test_payload_matches_vector_bytes() -> None:
    v = _vector("01-valid.json")
    claims = v["claims"]
    assert isinstance(claims, dict)
    decoded = SealClaims(
        issuer=claims["issuer"],
        doc_type=claims["doc_type"],
        number=claims["number"],
        issued=date.fromisoformat(claims["issued"]),
        expires=date.fromisoformat(claims["expires"]),
        subject_name=claims["subject_name"],
        subject_id=claims["subject_id"],
        fields_digest=bytes.fromhex(claims["fields_digest"]),
    )
    assert encode_claims(decoded).hex() == v["payload_hex"]


def test_committed_key_reproduces_vector_signature() -> None:
    """Deterministic ECDSA: the committed test key signs vector 01 to the committed bytes."""
    signer = SealSigner.from_pem_files(
        VECTORS / "pki" / "seal.key.pem", VECTORS / "pki" / "seal.pem"
    )
    v = _vector("01-valid.json")
    from verify.seal import decode_seal

    claims = decode_seal(str(v["url"])).claims
    assert signer.sign_cose(claims).hex() == v["cose_sign1_hex"]
    assert signer.kid.hex() == v["kid_hex"]


def test_vectors_are_reproducible() -> None:
    proc = subprocess.run(
        [sys.executable, str(VECTORS / "make_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kid_is_sha256_prefix_of_certificate(signer: SealSigner, pki: testpki.TestPki) -> None:
    cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    assert signer.kid == key_id(cert.public_bytes(serialization.Encoding.DER))
    assert len(signer.kid) == 8


def test_url_form(signer: SealSigner) -> None:
    url = signer.url(BASE_URL + "/", CLAIMS)
    assert url.startswith("HTTPS://VERIFY.E-MONGOLIA.MN/V/")
    payload = url.rsplit("/", 1)[1]
    assert set(payload) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert seal_url("https://gov.mn/seal", "AB") == "HTTPS://GOV.MN/seal/V/AB"
    with pytest.raises(UsageError):
        seal_url("verify.e-mongolia.mn", "AB")
    with pytest.raises(UsageError):
        seal_url("https://gov.mn/?x=1", "AB")


def test_same_claims_same_seal(signer: SealSigner) -> None:
    assert signer.sign(CLAIMS) == signer.sign(CLAIMS)
    assert signer.sign(CLAIMS) != signer.sign(replace(CLAIMS, number="ОСХ-2026-000124"))


def test_qr_fits_version_12_at_level_m(signer: SealSigner) -> None:
    """The issue's size budget, for a long but realistic seal: a 29-letter Mongolian name, the
    longest sample document type and the production-style base URL."""
    long = replace(
        CLAIMS,
        issuer="SHSG",
        doc_type="criminal-record",
        number="ЯШТ-2026-000123",
        subject_name="Очирбатын Төмөрхуяг-Эрдэнэбат",
        subject_id="ОЧ85120314",
    )
    assert qr_version(signer.url(BASE_URL, CLAIMS)) <= 11
    assert qr_version(signer.url(BASE_URL, long)) <= 12


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"subject_name": ""}, "subject_name must be 1-256"),
        ({"issuer": "Х" * 17}, "issuer must be 1-32"),
        ({"number": "ОСХ\n123"}, "control or format"),
        ({"subject_id": "УБ\u202e99"}, "control or format"),
        ({"expires": date(2026, 1, 1)}, "expires is before issued"),
        ({"issued": date(1969, 12, 31), "expires": None}, "on or after 1970-01-01"),
        ({"fields_digest": b"short"}, "16 bytes"),
    ],
)
def test_bad_claims_refused(signer: SealSigner, change: dict[str, object], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        signer.sign(replace(CLAIMS, **change))  # type: ignore[arg-type]


def test_signer_refuses_wrong_keys(pki: testpki.TestPki) -> None:
    with pytest.raises(KeySourceError, match="P-256"):
        SealSigner.from_pem_files(pki.key("mn-rsa", "seal"), pki.cert("mn-rsa", "seal"))
    with pytest.raises(KeySourceError, match="does not match"):
        SealSigner.from_pem_files(pki.key("mn-ec", "official"), pki.cert("mn-ec", "seal"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    with pytest.raises(KeySourceError):
        SealSigner(p384, cert)


def test_from_loaded_key(pki: testpki.TestPki, signer: SealSigner) -> None:
    loaded = load_key(str(pki.key("mn-ec", "seal")), cert=pki.cert("mn-ec", "seal"))
    via_source = SealSigner.from_loaded_key(loaded)
    assert via_source.kid == signer.kid
    assert decode_seal(via_source.sign(CLAIMS)).claims == CLAIMS
    rsa = load_key(str(pki.key("mn-rsa", "seal")), cert=pki.cert("mn-rsa", "seal"))
    with pytest.raises(KeySourceError):
        SealSigner.from_loaded_key(rsa)


def test_b32_has_no_padding() -> None:
    assert b32(b"\x00") == "AA"
    assert b32(bytes(5)) == "AAAAAAAA"
