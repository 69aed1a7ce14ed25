"""Regenerate the QR seal test vectors (docs/qr-seal.md, "Test vectors").

Run: python samples/seal-vectors/make_vectors.py [--check] [--new-keys]

The test-only keys in ``pki/`` are made once (``--new-keys`` replaces them) and committed; the
certificates and every vector are then derived deterministically (RFC 6979 ECDSA, fixed serials
and dates), so running this again rewrites identical bytes and ``--check`` can prove it. The
vectors verify forever against ``pki/root.pem`` at their ``validation_time``, without the test PKI.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from esign.seal import (  # noqa: E402
    SealClaims,
    b32,
    claims_map,
    cose_sign1,
    fields_cbor,
    fields_digest,
    key_id,
    protected_header,
    qr_version,
    seal_url,
    sig_structure,
)

PKI = HERE / "pki"
BASE_URL = "https://verify.e-mongolia.mn"
VALIDATION_TIME = datetime(2026, 12, 1, tzinfo=UTC)
NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2125, 1, 1, tzinfo=UTC)
KEY_FIELDS = {
    "address": "Улаанбаатар, Сүхбаатар дүүрэг, 1-р хороо, Өлзийт гудамж 12-34",
    "registered_since": "2019-04-15",
}
CLAIMS = SealClaims(
    issuer="UBEG",
    doc_type="residence",
    number="ОСХ-2026-000123",
    issued=date(2026, 11, 25),
    expires=date(2027, 2, 23),
    subject_name="Батбаярын Энх-Амгалан",
    subject_id="УБ99112233",
    fields_digest=fields_digest(KEY_FIELDS),
)


def _key(name: str, new: bool) -> ec.EllipticCurvePrivateKey:
    path = PKI / f"{name}.key.pem"
    if new or not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


def _cert(
    subject: str,
    serial: int,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "esign seal test vectors"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    ca = issuer is None
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
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
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    seal: x509.Certificate
    seal_key: ec.EllipticCurvePrivateKey
    unpublished: x509.Certificate
    unpublished_key: ec.EllipticCurvePrivateKey


def build_pki(new_keys: bool = False) -> tuple[Pki, dict[str, bytes]]:
    """The "Test Vector Root" -> "Test Vector Seal" chain, plus an unpublished seal."""
    PKI.mkdir(exist_ok=True)
    root_key = _key("root", new_keys)
    seal_key = _key("seal", new_keys)
    other_key = _key("unpublished-seal", new_keys)
    root = _cert("Test Vector Root", 1, root_key, None, root_key)
    seal = _cert("Test Vector Seal", 2, seal_key, root, root_key)
    other = _cert("Test Vector Unpublished Seal", 3, other_key, None, other_key)
    pem = serialization.Encoding.PEM
    files = {
        "root.pem": root.public_bytes(pem),
        "seal.pem": seal.public_bytes(pem),
        "unpublished-seal.pem": other.public_bytes(pem),
    }
    return Pki(root, seal, seal_key, other, other_key), files


def _sign(key: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes) -> bytes:
    der = key.sign(
        sig_structure(protected, payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _claims_json(claims: SealClaims) -> dict[str, Any]:
    return {
        "issuer": claims.issuer,
        "doc_type": claims.doc_type,
        "number": claims.number,
        "issued": claims.issued.isoformat(),
        "expires": claims.expires.isoformat() if claims.expires else None,
        "subject_name": claims.subject_name,
        "subject_id": claims.subject_id,
        "fields_digest": claims.fields_digest.hex(),
    }


def _vector(
    name: str,
    description: str,
    expected: tuple[str, str | None],
    *,
    claims: SealClaims = CLAIMS,
    payload: bytes | None = None,
    protected: bytes | None = None,
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    mutate: Any = None,
    text: Any = None,
) -> dict[str, Any]:
    """One vector: sign ``payload`` (default: the claims' deterministic CBOR), then optionally
    ``mutate`` the signed COSE bytes and/or turn the URL into the verifier's ``input`` with
    ``text``."""
    kid = key_id(cert.public_bytes(serialization.Encoding.DER))
    protected = protected if protected is not None else protected_header(kid)
    payload = payload if payload is not None else cbor2.dumps(claims_map(claims), canonical=True)
    signature = _sign(key, protected, payload)
    cose = cose_sign1(protected, payload, signature)
    if mutate is not None:
        cose = mutate(cose)
    url = seal_url(BASE_URL, b32(cose))
    given = text(url) if text is not None else url
    return {
        "name": name,
        "description": description,
        "input": given,
        "validation_time": VALIDATION_TIME.isoformat().replace("+00:00", "Z"),
        "trust_anchors": ["pki/root.pem"],
        "seal_certificates": ["pki/seal.pem"],
        "expected": {"indication": expected[0], "subindication": expected[1]},
        "claims": _claims_json(claims),
        "key_fields": KEY_FIELDS,
        "key_fields_cbor_hex": fields_cbor(KEY_FIELDS).hex(),
        "kid_hex": kid.hex(),
        "protected_hex": protected.hex(),
        "payload_hex": payload.hex(),
        "sig_structure_hex": sig_structure(protected, payload).hex(),
        "signature_hex": signature.hex(),
        "cose_sign1_hex": cose.hex(),
        "url": url,
        "qr_version_at_m": qr_version(given),
    }


def build_vectors(pki: Pki) -> dict[str, dict[str, Any]]:
    seal, key = pki.seal, pki.seal_key
    ok = ("TOTAL-PASSED", None)
    fmt = ("TOTAL-FAILED", "FORMAT_FAILURE")
    base: dict[str, Any] = {"key": key, "cert": seal}
    changed = replace(CLAIMS, number="ОСХ-2026-000124")

    def swap_payload(cose: bytes) -> bytes:
        old = cbor2.dumps(claims_map(CLAIMS), canonical=True)
        new = cbor2.dumps(claims_map(changed), canonical=True)
        assert len(old) == len(new) and cose.count(old) == 1
        return cose.replace(old, new)

    def flip_signature_bit(cose: bytes) -> bytes:
        return cose[:-1] + bytes([cose[-1] ^ 0x01])

    extension = claims_map(CLAIMS) | {24: "ignored by version-1 verifiers"}
    critical = claims_map(CLAIMS) | {10: "unknown critical claim"}
    unordered = dict(sorted(claims_map(CLAIMS).items(), reverse=True))
    kid = key_id(seal.public_bytes(serialization.Encoding.DER))
    es384 = cbor2.dumps({1: -35, 4: kid}, canonical=True)
    vectors = [
        _vector("01-valid", "A residence certificate; the reference vector.", ok, **base),
        _vector(
            "02-valid-no-expiry",
            "No expiry claim (6): a document that does not expire.",
            ok,
            claims=replace(CLAIMS, expires=None),
            **base,
        ),
        _vector(
            "03-valid-lowercase-url",
            "The same seal read as a lower-case URL with a trailing slash and a query: "
            "verifiers must accept any case.",
            ok,
            text=lambda url: url.lower() + "/?lang=en",
            **base,
        ),
        _vector(
            "04-valid-extension-claim",
            "An extension claim (key 24, >= 24) is covered by the signature and ignored.",
            ok,
            payload=cbor2.dumps(extension, canonical=True),
            **base,
        ),
        _vector(
            "05-changed-claim",
            "The document number in the payload changed after signing.",
            ("TOTAL-FAILED", "SIG_CRYPTO_FAILURE"),
            mutate=swap_payload,
            **base,
        ),
        _vector(
            "06-bad-signature",
            "One bit of the signature flipped.",
            ("TOTAL-FAILED", "SIG_CRYPTO_FAILURE"),
            mutate=flip_signature_bit,
            **base,
        ),
        _vector(
            "07-truncated",
            "The URL lost its last 16 characters (10 bytes), as from a damaged scan.",
            fmt,
            text=lambda url: url[:-16],
            **base,
        ),
        _vector(
            "08-wrong-alg",
            "The protected header names ES384 (-35); version 1 allows only ES256 (-7).",
            fmt,
            protected=es384,
            **base,
        ),
        _vector(
            "09-unknown-kid",
            "Sealed by a key whose certificate is not among the published seal certificates.",
            ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
            key=pki.unpublished_key,
            cert=pki.unpublished,
        ),
        _vector(
            "10-expired-document",
            "A genuine seal on a document whose expiry date (2026-11-30) is before the "
            "validation date.",
            ("INDETERMINATE", "EXPIRED"),
            claims=replace(CLAIMS, issued=date(2026, 9, 1), expires=date(2026, 11, 30)),
            **base,
        ),
        _vector(
            "11-unknown-critical-claim",
            "A correctly signed claim map with key 10 (< 24, unknown): must be rejected.",
            fmt,
            payload=cbor2.dumps(critical, canonical=True),
            **base,
        ),
        _vector(
            "12-non-deterministic-cbor",
            "A correctly signed claim map with its keys in descending order: not deterministic "
            "CBOR, must be rejected.",
            fmt,
            payload=cbor2.dumps(unordered),
            **base,
        ),
    ]
    return {v["name"] + ".json": v for v in vectors}


def render(vector: dict[str, Any]) -> bytes:
    return (json.dumps(vector, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--new-keys", action="store_true", help="replace the test-only keys")
    args = parser.parse_args()
    pki, files = build_pki(args.new_keys)
    outputs = {PKI / name: data for name, data in files.items()}
    outputs |= {HERE / n: render(v) for n, v in build_vectors(pki).items()}
    stale = [p for p, data in outputs.items() if not p.exists() or p.read_bytes() != data]
    if args.check:
        for p in stale:
            print(f"differs: {p.relative_to(HERE)}")
        return 1 if stale else 0
    for p in stale:
        p.write_bytes(outputs[p])
        print(f"wrote {p.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
