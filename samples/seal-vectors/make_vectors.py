"""Regenerate the QR seal conformance vectors (docs/qr-seal.md, "Conformance vectors").

Run: python samples/seal-vectors/make_vectors.py [--check] [--new-keys]

The test-only keys in ``pki/`` are made once (``--new-keys`` replaces them) and committed; the
certificates and every vector are then derived deterministically (RFC 6979 ECDSA, PKCS#1 v1.5 RSA,
fixed serials and dates), so running this again rewrites identical bytes and ``--check`` proves it.
The vectors verify forever against ``pki/root.pem`` at their ``validation_time``, without any
other PKI. The vector format is described in ``README.md`` beside this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from esign.issue import document_id  # noqa: E402
from esign.seal import (  # noqa: E402
    SEAL_EKU_OID,
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
from esign.trustlist import (  # noqa: E402
    TRUST_LIST_EKU,
    SealKey,
    TrustListContent,
    TrustListSigner,
    sealing_days,
)

PKI = HERE / "pki"
BASE_URL = "https://verify.e-mongolia.mn"
SEAL_EKU = x509.ObjectIdentifier(SEAL_EKU_OID)
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336)."""
"""id-kp-esignQrSeal (docs/qr-seal.md section 4)."""
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
VALIDATION_TIME = datetime(2026, 12, 1, 4, tzinfo=UTC)
"""Default validation time: noon in Ulaanbaatar on 1 December 2026."""
T2025 = datetime(2025, 1, 1, tzinfo=UTC)
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
ORG = "Улсын бүртгэлийн ерөнхий газар (Test Vector)"

# --- the vector PKI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CertSpec:
    """One certificate of the vector PKI; ``issuer`` names another spec (None: self-signed)."""

    name: str
    common_name: str
    key: str
    issuer: str | None
    serial: int
    not_before: datetime = T2025
    not_after: datetime = datetime(2045, 1, 1, tzinfo=UTC)
    ca: bool | None = False
    """basicConstraints cA; None leaves the extension out."""
    path_len: int | None = None
    key_usage: frozenset[str] | None = frozenset({"digital_signature", "content_commitment"})
    eku: tuple[x509.ObjectIdentifier, ...] | None = (SEAL_EKU,)
    org_id: str | None = "GV:MN-UBEG"
    organization: str = ORG
    forged_by: str | None = None
    eku_critical: bool = False
    issuer_name_variant: str | None = None
    """``upper``: the issuer's name with its CN upper-cased; ``printable``: the issuer's name with
    its attributes as PrintableString instead of UTF8String (both still match, RFC 5280 §7.1)."""
    critical_issuer_alt_name: bool = False
    unknown_critical: bool = False
    """Add a critical extension no verifier knows (a private OID)."""
    """Sign with this key instead of the issuer's (names and key identifiers still the issuer's)."""


CA_USAGE = frozenset({"key_cert_sign", "crl_sign"})
_CA: dict[str, Any] = {"ca": True, "key_usage": CA_USAGE, "eku": None, "org_id": None}
_PKI_ORG = "esign seal test vectors"
CERTS: tuple[CertSpec, ...] = (
    CertSpec(
        "root",
        "Test Vector Root",
        "root",
        None,
        1,
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec(
        "intermediate",
        "Test Vector Issuing CA",
        "intermediate",
        "root",
        2,
        not_after=datetime(2100, 1, 1, tzinfo=UTC),
        path_len=0,
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec("seal", "УБЕГ цахим тамга (Test Vector)", "seal", "intermediate", 3),
    CertSpec(
        "seal-shsg",
        "ШШГЕГ цахим тамга (Test Vector)",
        "seal-shsg",
        "intermediate",
        4,
        org_id="GV:MN-SHSG",
        organization="Шүүхийн шийдвэр гүйцэтгэх ерөнхий газар (Test Vector)",
    ),
    CertSpec("seal-under-root", "УБЕГ тамга, үндсэн CA-аас (Test Vector)", "seal", "root", 5),
    CertSpec(
        "seal-no-orgid", "УБЕГ тамга, байгууллагын кодгүй", "seal", "intermediate", 6, org_id=None
    ),
    CertSpec(
        "seal-bad-orgid",
        "УБЕГ тамга, буруу кодтой",
        "seal",
        "intermediate",
        7,
        org_id="NTRMN-9011222",
    ),
    CertSpec(
        "seal-expired",
        "УБЕГ тамга, хугацаа дууссан",
        "seal",
        "intermediate",
        8,
        not_after=datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
    ),
    CertSpec(
        "seal-not-yet-valid",
        "УБЕГ тамга, хараахан эхлээгүй",
        "seal",
        "intermediate",
        9,
        not_before=datetime(2027, 1, 1, tzinfo=UTC),
    ),
    CertSpec(
        "seal-ends-2026",
        "УБЕГ тамга, 2026 онд дуусна",
        "seal",
        "intermediate",
        10,
        not_after=datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
    CertSpec(
        "seal-no-digital-signature",
        "УБЕГ тамга, digitalSignature-гүй",
        "seal",
        "intermediate",
        11,
        key_usage=frozenset({"content_commitment"}),
    ),
    CertSpec(
        "seal-no-key-usage", "УБЕГ тамга, keyUsage-гүй", "seal", "intermediate", 12, key_usage=None
    ),
    CertSpec(
        "seal-wrong-eku",
        "УБЕГ тамга, буруу EKU",
        "seal",
        "intermediate",
        13,
        eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,),
    ),
    CertSpec("seal-no-eku", "УБЕГ тамга, EKU-гүй", "seal", "intermediate", 14, eku=None),
    CertSpec(
        "seal-any-eku",
        "УБЕГ тамга, anyExtendedKeyUsage",
        "seal",
        "intermediate",
        15,
        eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,),
    ),
    CertSpec(
        "nonca-intermediate",
        "Test Vector Non-CA Intermediate",
        "nonca-intermediate",
        "root",
        16,
        ca=False,
        key_usage=frozenset({"digital_signature", "key_cert_sign"}),
        eku=None,
        org_id=None,
        organization=_PKI_ORG,
    ),
    CertSpec(
        "seal-under-nonca", "УБЕГ тамга, CA биш гэрчилгээнээс", "seal", "nonca-intermediate", 17
    ),
    CertSpec(
        "expired-intermediate",
        "Test Vector Expired Issuing CA",
        "expired-intermediate",
        "root",
        18,
        not_after=datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec(
        "seal-under-expired-intermediate",
        "УБЕГ тамга, дууссан CA-аас",
        "seal",
        "expired-intermediate",
        19,
    ),
    CertSpec(
        "weak-intermediate",
        "Test Vector RSA-1024 Issuing CA",
        "weak-intermediate",
        "root",
        20,
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec(
        "seal-under-weak-intermediate",
        "УБЕГ тамга, RSA-1024 CA-аас",
        "seal",
        "weak-intermediate",
        21,
    ),
    CertSpec(
        "forger-root",
        "Forger Root CA",
        "forger-root",
        None,
        22,
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
        organization="forger",
        **_CA,
    ),
    CertSpec(
        "forger-seal", "УБЕГ цахим тамга (Test Vector)", "unpublished-seal", "forger-root", 23
    ),
    CertSpec(
        "lookalike-root",
        "Test Vector Root",
        "forger-root",
        None,
        24,
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec(
        "lookalike-seal", "УБЕГ цахим тамга (Test Vector)", "unpublished-seal", "lookalike-root", 25
    ),
    CertSpec(
        "forged-seal",
        "УБЕГ цахим тамга (Test Vector)",
        "unpublished-seal",
        "intermediate",
        27,
        forged_by="forger-root",
    ),
    CertSpec("unpublished-seal", "Test Vector Unpublished Seal", "unpublished-seal", None, 26),
    CertSpec(
        "trust-list-signer",
        "Test Vector Trust List Signer",
        "trust-list-signer",
        "intermediate",
        28,
        key_usage=frozenset({"digital_signature"}),
        eku=(x509.ObjectIdentifier(TRUST_LIST_EKU),),
        org_id=None,
        organization=_PKI_ORG,
    ),
    CertSpec(
        "forger-trust-list-signer",
        "Test Vector Trust List Signer",
        "trust-list-signer",
        "forger-root",
        29,
        key_usage=frozenset({"digital_signature"}),
        eku=(x509.ObjectIdentifier(TRUST_LIST_EKU),),
        org_id=None,
        organization=_PKI_ORG,
    ),
    CertSpec(
        "sub-intermediate",
        "Test Vector Sub-CA (beyond pathLen 0)",
        "sub-intermediate",
        "intermediate",
        30,
        organization=_PKI_ORG,
        **_CA,
    ),
    CertSpec("seal-under-sub", "УБЕГ тамга, дэд CA-аас", "seal", "sub-intermediate", 31),
    CertSpec(
        "crl-only-intermediate",
        "Test Vector CA without keyCertSign",
        "crl-only-intermediate",
        "root",
        32,
        organization=_PKI_ORG,
        **(_CA | {"key_usage": frozenset({"crl_sign"})}),
    ),
    CertSpec(
        "seal-under-crl-only",
        "УБЕГ тамга, keyCertSign-гүй CA-аас",
        "seal",
        "crl-only-intermediate",
        33,
    ),
    CertSpec(
        "seal-unknown-critical",
        "УБЕГ тамга, critical өргөтгөл",
        "seal",
        "intermediate",
        34,
        unknown_critical=True,
    ),
    CertSpec(
        "seal-critical-eku",
        "УБЕГ тамга, critical EKU",
        "seal",
        "intermediate",
        35,
        eku_critical=True,
    ),
    CertSpec("seal-p384", "УБЕГ тамга, P-384", "seal-p384", "intermediate", 36),
)
CERTS += (
    CertSpec(
        "seal-more-ekus",
        "УБЕГ тамга, олон EKU",
        "seal",
        "intermediate",
        37,
        eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION, SEAL_EKU, DOCUMENT_SIGNING),
    ),
)
CERTS += (
    CertSpec(
        "seal-critical-ian",
        "УБЕГ тамга, critical issuerAltName",
        "seal",
        "intermediate",
        38,
        critical_issuer_alt_name=True,
    ),
    CertSpec(
        "seal-issuer-upper",
        "УБЕГ тамга, issuer том үсгээр",
        "seal",
        "intermediate",
        39,
        issuer_name_variant="upper",
    ),
    CertSpec(
        "seal-issuer-printable",
        "УБЕГ тамга, issuer PrintableString",
        "seal",
        "intermediate",
        40,
        issuer_name_variant="printable",
    ),
    CertSpec(
        "root-pathlen-0",
        "Test Vector Root",
        "root",
        None,
        41,
        path_len=0,
        not_after=datetime(2125, 1, 1, tzinfo=UTC),
        organization=_PKI_ORG,
        **_CA,
    ),
)
RSA_KEYS = {"weak-intermediate": 1024}
P384_KEYS = {"seal-p384"}
UNKNOWN_EXTENSION = x509.ObjectIdentifier("2.25.187697793891391668806884730963693754825.99")


def _key(name: str, new: bool) -> Any:
    path = PKI / f"{name}.key.pem"
    if new or not path.exists():
        key: Any
        if name in RSA_KEYS:
            key = rsa.generate_private_key(65537, RSA_KEYS[name])
        else:
            curve = ec.SECP384R1() if name in P384_KEYS else ec.SECP256R1()
            key = ec.generate_private_key(curve)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return serialization.load_pem_private_key(path.read_bytes(), None)


def _name(spec: CertSpec) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization),
    ]
    if spec.org_id is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, spec.org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name))
    return x509.Name(attrs)


def _issuer_name(spec: CertSpec, issuer: x509.Certificate) -> x509.Name:
    if spec.issuer_name_variant is None:
        return issuer.subject
    attrs = []
    for attr in issuer.subject:
        value = str(attr.value)
        if spec.issuer_name_variant == "upper" and attr.oid == NameOID.COMMON_NAME:
            attrs.append(x509.NameAttribute(attr.oid, value.upper()))
        elif spec.issuer_name_variant == "printable":
            attrs.append(x509.NameAttribute(attr.oid, value, _type=_ASN1Type.PrintableString))
        else:
            attrs.append(attr)
    return x509.Name(attrs)


def _key_usage(usage: frozenset[str]) -> x509.KeyUsage:
    flags = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{f: f in usage for f in flags})


def _cert(spec: CertSpec, key: Any, issuer: x509.Certificate | None, issuer_key: Any) -> Any:
    """``issuer_key`` signs; the authority key identifier names ``issuer``'s key (or ``key``)."""
    authority = issuer.public_key() if issuer is not None else key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec))
        .issuer_name(_name(spec) if issuer is None else _issuer_name(spec, issuer))
        .public_key(key.public_key())
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=spec.ca, path_length=spec.path_len if spec.ca else None),
            critical=True,
        )
    if spec.key_usage is not None:
        builder = builder.add_extension(_key_usage(spec.key_usage), critical=True)
    if spec.eku is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(spec.eku)), critical=spec.eku_critical
        )
    if spec.critical_issuer_alt_name:
        builder = builder.add_extension(
            x509.IssuerAlternativeName([x509.DNSName("ca.example.mn")]), critical=True
        )
    if spec.unknown_critical:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(UNKNOWN_EXTENSION, b"\x05\x00"), critical=True
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority),
        critical=False,
    )
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)

    def kid(self, cert: str) -> bytes:
        return key_id(self.certs[cert].public_bytes(serialization.Encoding.DER))


def build_pki(new_keys: bool = False) -> tuple[Pki, dict[str, bytes]]:
    """Every certificate of ``CERTS``; the keys are the committed ones."""
    PKI.mkdir(exist_ok=True)
    pki = Pki()
    for name in sorted({s.key for s in CERTS}):
        pki.keys[name] = _key(name, new_keys)
    files: dict[str, bytes] = {}
    specs = {s.name: s for s in CERTS}
    for spec in CERTS:
        key = pki.keys[spec.key]
        if spec.issuer is None:
            cert = _cert(spec, key, None, key)
        else:
            signer = spec.forged_by or specs[spec.issuer].key
            cert = _cert(spec, key, pki.certs[spec.issuer], pki.keys[signer])
        pki.certs[spec.name] = cert
        files[f"{spec.name}.pem"] = cert.public_bytes(serialization.Encoding.PEM)
    return pki, files


# --- COSE building blocks ----------------------------------------------------------------------


def enc(value: Any) -> bytes:
    """Deterministic CBOR (RFC 8949 section 4.2.1)."""
    return cbor2.dumps(value, canonical=True)


def raw_map(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A CBOR map of already-encoded keys and values, in the order given (for hostile maps)."""
    assert len(pairs) < 24
    return bytes([0xA0 + len(pairs)]) + b"".join(k + v for k, v in pairs)


def claim_pairs(claims: SealClaims = CLAIMS) -> list[tuple[bytes, bytes]]:
    return [(enc(k), enc(v)) for k, v in sorted(claims_map(claims).items())]


def swap(pairs: list[tuple[bytes, bytes]], key: int, value: bytes) -> list[tuple[bytes, bytes]]:
    """``pairs`` with the encoded value of claim ``key`` replaced by ``value``."""
    return [(k, value if k == enc(key) else v) for k, v in pairs]


def sign(key: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes) -> bytes:
    der = key.sign(
        sig_structure(protected, payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def cose_raw(protected: bytes, unprotected: bytes, payload: bytes, signature: bytes) -> bytes:
    """Tagged COSE_Sign1 from encoded parts (``payload`` may be any encoded item, e.g. nil)."""
    return b"\xd2\x84" + enc(protected) + unprotected + payload + enc(signature)


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


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _qr(text: str) -> int | None:
    if len(text) > 3000 or not text.isascii():
        return None
    try:
        return qr_version(text)
    except Exception:
        return None


OK = ("TOTAL-PASSED", None)
FMT = ("TOTAL-FAILED", "FORMAT_FAILURE")
SIG = ("TOTAL-FAILED", "SIG_CRYPTO_FAILURE")
NO_CHAIN = ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
CONSTRAINTS = ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE")
OUT_OF_BOUNDS = ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")
EXPIRED = ("INDETERMINATE", "EXPIRED")
NOT_YET = ("INDETERMINATE", "NOT_YET_VALID")


@dataclass
class Maker:
    """Builds vectors against one vector PKI."""

    pki: Pki
    vectors: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, bytes] = field(default_factory=dict)
    """Trust list files by name (``trust-lists/<name>.cbor``)."""

    def add(
        self,
        slug: str,
        group: str,
        description: str,
        expected: tuple[str, str | None],
        *,
        claims: SealClaims = CLAIMS,
        shown: SealClaims | None = None,
        payload: bytes | None = None,
        protected: bytes | None = None,
        signer: str = "seal",
        key: str | None = None,
        cose: Callable[[bytes, bytes, bytes], bytes] | None = None,
        text: Callable[[str], str] | None = None,
        at: datetime = VALIDATION_TIME,
        anchors: Sequence[str] = ("root",),
        intermediates: Sequence[str] = ("intermediate",),
        seal_certs: Sequence[str] | None = None,
        trust_list: str | None = None,
    ) -> None:
        """One vector: sign ``payload`` (default: the claims' deterministic CBOR) under
        ``protected`` (default: {1: -7, 4: kid of ``signer``}) with ``key`` (default: the signer
        certificate's key); ``cose`` may assemble the envelope differently from
        (protected, payload, signature); ``text`` turns the URL into the verifier's input."""
        kid = self.pki.kid(signer)
        protected = protected if protected is not None else protected_header(kid)
        if payload is None:
            payload = enc(claims_map(claims))
        specs = {s.name: s for s in CERTS}
        signing_key = self.pki.keys[key or specs[signer].key]
        signature = sign(signing_key, protected, payload)
        envelope = (cose or cose_sign1)(protected, payload, signature)
        url = seal_url(BASE_URL, b32(envelope))
        given = text(url) if text is not None else url
        number = len(self.vectors) + 1
        published = list(seal_certs) if seal_certs is not None else [signer]
        vector: dict[str, Any] = {
            "name": f"{number:02d}-{slug}",
            "group": group,
            "description": description,
            "input": given,
            "validation_time": _time(at),
            "trust_anchors": [f"pki/{c}.pem" for c in anchors],
            "intermediates": [] if trust_list else [f"pki/{c}.pem" for c in intermediates],
            "seal_certificates": [] if trust_list else [f"pki/{c}.pem" for c in published],
            "trust_list": f"trust-lists/{trust_list}.cbor" if trust_list else None,
            "expected": {"indication": expected[0], "subindication": expected[1]},
            "claims": None if expected == FMT else _claims_json(shown or claims),
        }
        if number == 1:
            vector["key_fields"] = KEY_FIELDS
            vector["key_fields_cbor_hex"] = fields_cbor(KEY_FIELDS).hex()
        vector |= {
            "kid_hex": kid.hex(),
            "protected_hex": protected.hex(),
            "payload_hex": payload.hex(),
            "sig_structure_hex": sig_structure(protected, payload).hex(),
            "signature_hex": signature.hex(),
            "cose_sign1_hex": envelope.hex(),
            "url": url,
            "qr_version_at_m": _qr(given),
        }
        self.vectors.append(vector)


def _claims_vectors(m: Maker) -> None:
    g = "claims"
    pairs = claim_pairs()
    m.add("valid", g, "A residence certificate; the reference vector (section 10).", OK)
    m.add(
        "valid-no-expiry",
        g,
        "No expires claim (6): a document that does not expire.",
        OK,
        claims=replace(CLAIMS, expires=None),
    )
    m.add(
        "valid-lowercase-url",
        "url",
        "The seal of vector 01 read as a lower-case URL with a trailing slash and a query.",
        OK,
        text=lambda url: url.lower() + "/?lang=en",
    )
    m.add(
        "valid-extension-claim",
        g,
        "An extension claim (key 24) is covered by the signature and ignored.",
        OK,
        payload=enc(claims_map(CLAIMS) | {24: "ignored by version-1 verifiers"}),
    )
    m.add(
        "changed-claim",
        "signature",
        "The document number in the payload changed after signing.",
        SIG,
        cose=lambda p, _payload, s: cose_sign1(
            p, enc(claims_map(replace(CLAIMS, number="ОСХ-2026-000124"))), s
        ),
        shown=replace(CLAIMS, number="ОСХ-2026-000124"),
    )
    m.add(
        "bad-signature",
        "signature",
        "The last bit of the signature flipped.",
        SIG,
        cose=lambda p, payload, s: cose_sign1(p, payload, s[:-1] + bytes([s[-1] ^ 1])),
    )
    m.add(
        "truncated",
        "url",
        "The URL lost its last 16 characters (10 bytes), as from a damaged scan.",
        FMT,
        text=lambda url: url[:-16],
    )
    m.add(
        "wrong-alg",
        "cose",
        "The protected header names ES384 (-35); version 1 allows only ES256 (-7).",
        FMT,
        protected=enc({1: -35, 4: m.pki.kid("seal")}),
    )
    m.add(
        "unknown-kid",
        "chain",
        "Sealed by a key whose certificate is not among the published seal certificates.",
        NO_CHAIN,
        signer="unpublished-seal",
        seal_certs=["seal"],
    )
    m.add(
        "expired-document",
        "time",
        "A genuine seal on a document whose expiry date (2026-11-30) is before the validation "
        "date (2026-12-01 in Ulaanbaatar).",
        EXPIRED,
        claims=replace(CLAIMS, issued=date(2026, 9, 1), expires=date(2026, 11, 30)),
    )
    m.add(
        "unknown-critical-claim",
        g,
        "A correctly signed claim map with key 10 (< 24, not defined): must be rejected.",
        FMT,
        payload=enc(claims_map(CLAIMS) | {10: "unknown critical claim"}),
    )
    m.add(
        "non-deterministic-cbor",
        "cbor",
        "A correctly signed claim map with its keys in descending order.",
        FMT,
        payload=raw_map(list(reversed(pairs))),
    )

    # -- claim profile
    def bad(slug: str, description: str, payload: bytes) -> None:
        m.add(slug, g, description, FMT, payload=payload)

    without = {k: v for k, v in claims_map(CLAIMS).items()}
    bad("version-2", "Claim 1 (version) is 2.", enc(without | {1: 2}))
    bad(
        "version-missing",
        "Claim 1 (version) is absent.",
        enc({k: v for k, v in without.items() if k != 1}),
    )
    bad(
        "issuer-missing",
        "Claim 2 (issuer) is absent.",
        enc({k: v for k, v in without.items() if k != 2}),
    )
    bad("issuer-empty", "Claim 2 (issuer) is the empty text.", enc(without | {2: ""}))
    bad(
        "issuer-33-bytes",
        "Claim 2 (issuer) has 33 UTF-8 bytes (limit 32).",
        enc(without | {2: "U" * 33}),
    )
    bad("issuer-bytes", "Claim 2 (issuer) is a byte string, not text.", enc(without | {2: b"UBEG"}))
    bad(
        "number-65-bytes",
        "Claim 4 (number) has 65 UTF-8 bytes (limit 64).",
        enc(without | {4: "Н" * 32 + "1"}),
    )
    m.add(
        "name-256-bytes",
        g,
        "Claim 7 (subject_name) has exactly 256 UTF-8 bytes (128 Cyrillic letters): the limit.",
        OK,
        claims=replace(CLAIMS, subject_name="Б" * 128),
    )
    bad(
        "name-257-bytes",
        "Claim 7 (subject_name) has 257 UTF-8 bytes.",
        enc(without | {7: "Б" * 128 + "a"}),
    )
    m.add(
        "number-64-bytes",
        g,
        "Claim 4 (number) has exactly 64 UTF-8 bytes in 32 letters: lengths count bytes.",
        OK,
        claims=replace(CLAIMS, number="Н" * 32),
    )
    bad(
        "name-control-char",
        "Claim 7 contains a LINE FEED (U+000A, category Cc).",
        enc(without | {7: "Батбаярын\nЭнх-Амгалан"}),
    )
    bad(
        "name-bidi-override",
        "Claim 7 contains U+202E RIGHT-TO-LEFT OVERRIDE (category Cf).",
        enc(without | {7: "Батбаярын \u202eЭнх-Амгалан"}),
    )
    bad(
        "name-line-separator",
        "Claim 7 contains U+2028 LINE SEPARATOR (category Zl).",
        enc(without | {7: "Батбаярын\u2028Энх-Амгалан"}),
    )
    bad(
        "name-trailing-space",
        "Claim 7 ends with a SPACE (U+0020, category Zs).",
        enc(without | {7: "Батбаярын Энх-Амгалан "}),
    )
    bad(
        "name-leading-nbsp",
        "Claim 7 begins with U+00A0 NO-BREAK SPACE (category Zs).",
        enc(without | {7: "\u00a0Батбаярын Энх-Амгалан"}),
    )
    bad(
        "name-not-nfc",
        "Claim 7 is in NFD: 'й' written as и + U+0306 COMBINING BREVE.",
        enc(without | {7: "Сүхбаатарын Ойу\u0438\u0306"}),
    )
    m.add(
        "name-nfc-inner-spaces",
        g,
        "Claim 7 in NFC with 'й' (U+0439) and two inner spaces: kept exactly as signed.",
        OK,
        claims=replace(CLAIMS, subject_name="Сүхбаатарын  Ойуй"),
    )
    bad(
        "issued-text-date",
        'Claim 5 (issued) is the text "2026-11-25", not a day count.',
        enc(without | {5: "2026-11-25"}),
    )
    bad(
        "issued-too-large",
        "Claim 5 (issued) is 2932897, one day after 9999-12-31.",
        enc(without | {5: 2932897, 6: 2932897}),
    )
    bad(
        "expires-before-issued",
        "Claim 6 (expires) is one day before claim 5 (issued).",
        enc(without | {6: without[5] - 1}),
    )
    m.add(
        "expires-equals-issued",
        g,
        "Claim 6 (expires) equals claim 5 (issued) and the validation date: valid that one day.",
        OK,
        claims=replace(CLAIMS, issued=date(2026, 12, 1), expires=date(2026, 12, 1)),
    )
    bad(
        "digest-15-bytes",
        "Claim 9 (fields_digest) has 15 bytes.",
        enc(without | {9: CLAIMS.fields_digest[:15]}),
    )
    bad(
        "digest-text",
        "Claim 9 (fields_digest) is text (hex), not bytes.",
        enc(without | {9: CLAIMS.fields_digest.hex()}),
    )
    bad("negative-key", "The claim map has the key -1.", enc(without | {-1: "x"}))
    bad("text-key", 'The claim map has the text key "24".', enc(without | {"24": "x"}))
    bad("key-0", "The claim map has the key 0 (reserved, not defined).", enc(without | {0: 0}))
    bad("key-23", "The claim map has the key 23 (reserved, not defined).", enc(without | {23: 0}))
    bad("payload-array", "The payload is a CBOR array, not a map.", enc(list(without.values())))


def _cbor_vectors(m: Maker) -> None:
    g = "cbor"
    pairs = claim_pairs()
    issued = enc(claim_map_value(5))

    def bad(slug: str, description: str, payload: bytes) -> None:
        m.add(slug, g, description, FMT, payload=payload)

    bad(
        "non-minimal-integer",
        "Claim 5 encoded as 1a 0000512e (4-byte argument for a 2-byte value).",
        raw_map(swap(pairs, 5, b"\x1a" + (20782).to_bytes(4, "big"))),
    )
    bad(
        "non-minimal-length",
        "Claim 2's text length encoded as 78 04 instead of 64.",
        raw_map(swap(pairs, 2, b"\x78\x04UBEG")),
    )
    bad(
        "indefinite-text",
        "Claim 2 as an indefinite-length text string (7f 62 'UB' 62 'EG' ff).",
        raw_map(swap(pairs, 2, b"\x7f\x62UB\x62EG\xff")),
    )
    bad(
        "indefinite-map",
        "The claim map with indefinite length (bf ... ff).",
        b"\xbf" + b"".join(k + v for k, v in pairs) + b"\xff",
    )
    dup = [*pairs[:2], pairs[1], *pairs[2:]]
    bad(
        "duplicate-key",
        "Claim 2 appears twice with the same value (a map of 10 pairs).",
        raw_map(dup),
    )
    bad(
        "tag-in-claim",
        "Claim 5 wrapped in tag 100 (RFC 8943 days): no tags inside the payload.",
        raw_map(swap(pairs, 5, b"\xd8\x64" + issued)),
    )
    bad(
        "float-version",
        "Claim 1 as the half-precision float 1.0 (f9 3c00).",
        raw_map(swap(pairs, 1, b"\xf9\x3c\x00")),
    )
    bad(
        "simple-true",
        "An extension claim 24 with the simple value true (f5).",
        raw_map([*pairs, (enc(24), b"\xf5")]),
    )
    bad(
        "null-expires",
        "Claim 6 (expires) is null (f6) instead of being left out.",
        raw_map(swap(pairs, 6, b"\xf6")),
    )
    bad(
        "invalid-utf8",
        "Claim 2 holds the bytes 55 42 c3 28: not UTF-8.",
        raw_map(swap(pairs, 2, b"\x64UB\xc3\x28")),
    )
    bad(
        "trailing-byte-payload",
        "One byte (00) after the claim map inside the payload.",
        raw_map(pairs) + b"\x00",
    )
    bad(
        "bignum-issued",
        "Claim 5 as a tag-2 bignum.",
        raw_map(swap(pairs, 5, b"\xc2\x42" + (20782).to_bytes(2, "big"))),
    )
    m.add(
        "nesting-4",
        g,
        "Extension claim 24 is [[[]]]: with the claim map that is 4 nested containers, the limit.",
        OK,
        payload=raw_map([*pairs, (enc(24), b"\x81\x81\x80")]),
    )
    bad(
        "nesting-5",
        "Extension claim 24 is [[[[]]]]: 5 nested containers.",
        raw_map([*pairs, (enc(24), b"\x81\x81\x81\x80")]),
    )
    bad(
        "string-longer-than-input",
        "Claim 7 declares 4 GiB of text (7a ffffffff) in a small payload.",
        raw_map(swap(pairs, 7, b"\x7a\xff\xff\xff\xff")),
    )


def claim_map_value(key: int) -> Any:
    return claims_map(CLAIMS)[key]


def _cose_vectors(m: Maker) -> None:
    g = "cose"
    kid = m.pki.kid("seal")

    def bad(slug: str, description: str, **kw: Any) -> None:
        m.add(slug, g, description, FMT, **kw)

    bad(
        "untagged",
        "The COSE_Sign1 array without tag 18.",
        cose=lambda p, pl, s: cose_sign1(p, pl, s)[1:],
    )
    bad(
        "tag-98",
        "Tag 98 (COSE_Sign) instead of 18.",
        cose=lambda p, pl, s: b"\xd8\x62" + cose_sign1(p, pl, s)[1:],
    )
    bad(
        "double-tag",
        "Tag 18 twice: 18(18([...])).",
        cose=lambda p, pl, s: b"\xd2" + cose_sign1(p, pl, s),
    )
    bad(
        "unprotected-kid",
        "The kid also in the unprotected header ({4: kid}).",
        cose=lambda p, pl, s: cose_raw(p, enc({4: kid}), enc(pl), s),
    )
    bad(
        "array-of-3",
        "A COSE_Sign1 array of 3 items (no signature).",
        cose=lambda p, pl, s: b"\xd2\x83" + enc(p) + b"\xa0" + enc(pl),
    )
    bad(
        "protected-extra-header",
        "The protected header also holds content type 3: 0.",
        protected=enc({1: -7, 3: 0, 4: kid}),
    )
    bad(
        "protected-out-of-order",
        "The protected header's keys in the order 4, 1.",
        protected=b"\xa2\x04\x48" + kid + b"\x01\x26",
    )
    bad("alg-text", 'alg is the text "ES256" instead of -7.', protected=enc({1: "ES256", 4: kid}))
    bad("kid-7-bytes", "The kid has 7 bytes.", protected=enc({1: -7, 4: kid[:7]}))
    bad(
        "signature-der",
        "The signature in DER (ASN.1 SEQUENCE of r, s) instead of r || s.",
        cose=lambda p, pl, s: cose_sign1(p, pl, _der(s)),
    )
    bad(
        "payload-nil",
        "A detached payload (nil) instead of the claim map.",
        cose=lambda p, pl, s: cose_raw(p, b"\xa0", b"\xf6", s),
    )
    bad(
        "trailing-byte",
        "One byte (00) after the COSE_Sign1.",
        cose=lambda p, pl, s: cose_sign1(p, pl, s) + b"\x00",
    )
    bad(
        "over-1024-bytes",
        "A correctly signed seal of 1025 bytes (a long extension claim 24).",
        payload=enc(claims_map(CLAIMS) | {24: "x" * 818}),
    )


def _der(signature: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    return encode_dss_signature(r, s)


def _high_s(
    cose_fn: Callable[[bytes, bytes, bytes], bytes],
) -> Callable[[bytes, bytes, bytes], bytes]:
    def build(p: bytes, pl: bytes, s: bytes) -> bytes:
        r, low = s[:32], int.from_bytes(s[32:], "big")
        return cose_fn(p, pl, r + (P256_ORDER - low).to_bytes(32, "big"))

    return build


def _signature_vectors(m: Maker) -> None:
    g = "signature"
    m.add(
        "high-s-signature",
        g,
        "The signature with s replaced by n - s: also a valid ECDSA "
        "signature; ES256 has no low-S rule.",
        OK,
        cose=_high_s(cose_sign1),
    )
    m.add(
        "zero-signature",
        g,
        "A signature of 64 zero bytes (r = s = 0).",
        SIG,
        cose=lambda p, pl, s: cose_sign1(p, pl, bytes(64)),
    )
    m.add(
        "other-key-same-kid",
        g,
        "The kid of the published seal certificate but signed with another key.",
        SIG,
        key="unpublished-seal",
    )


def _url_vectors(m: Maker) -> None:
    g = "url"

    def ok(slug: str, description: str, text: Callable[[str], str]) -> None:
        m.add(slug, g, description, OK, text=text)

    def bad(slug: str, description: str, text: Callable[[str], str]) -> None:
        m.add(slug, g, description, FMT, text=text)

    payload = lambda url: url.split("/V/", 1)[1]  # noqa: E731
    ok("bare-payload", "The base32 payload alone, without a URL.", payload)
    ok("bare-payload-lowercase", "The bare payload in lower case.", lambda u: payload(u).lower())
    ok(
        "surrounding-white-space",
        "The URL with CR LF TAB SPACE before and after.",
        lambda u: "\r\n\t " + u + " \t\r\n",
    )
    ok("fragment-and-query", "The URL with ?lang=mn#top appended.", lambda u: u + "?lang=mn#top")
    ok(
        "last-marker-wins",
        "A path with two /V/ markers: the payload follows the last one.",
        lambda u: u.replace("/V/", "/V/NOTIT/V/"),
    )
    ok(
        "foreign-host",
        "Another host: the signature, not the domain, is the proof.",
        lambda u: "https://example.org/check/v/" + payload(u),
    )
    ok(
        "exactly-4096-characters",
        "The URL padded with a query to exactly 4096 characters.",
        lambda u: u + "?" + "x" * (4096 - len(u) - 1),
    )
    bad(
        "4097-characters",
        "The URL padded with a query to 4097 characters: over the limit "
        "although the query would be dropped.",
        lambda u: u + "?" + "x" * (4097 - len(u) - 1),
    )
    bad(
        "4096-plus-white-space",
        "4096 characters of URL and query plus one trailing LF: the "
        "limit counts the text as received, white space included.",
        lambda u: u + "?" + "x" * (4096 - len(u) - 1) + "\n",
    )
    bad("inner-space", "A SPACE in the middle of the payload.", lambda u: u[:100] + " " + u[100:])
    bad(
        "file-separator-prefix",
        "U+001C (which some trim functions strip) before the bare "
        "payload: only TAB LF VT FF CR SPACE are trimmed.",
        lambda u: "\x1c" + payload(u),
    )
    bad(
        "long-s",
        "The URL with 'S' in HTTPS written as U+017F LATIN SMALL LETTER LONG S.",
        lambda u: u.replace("HTTPS", "HTTP\u017f", 1),
    )
    bad(
        "padding",
        "The bare payload with its '=' padding.",
        lambda u: payload(u) + "=" * (-len(payload(u)) % 8),
    )
    bad(
        "non-alphabet",
        "The digit 1 (not in A-Z2-7) in place of the payload's first character.",
        lambda u: u.replace("/V/" + payload(u)[0], "/V/1", 1),
    )
    bad("no-marker", "A URL with no /V/ part.", lambda u: u.replace("/V/", "/S/"))
    bad("empty-payload", "A URL ending in /V/.", lambda u: u.split("/V/")[0] + "/V/")
    bad(
        "stray-bits",
        "The last base32 character changed so the unused low bits are not zero.",
        lambda u: u[:-1] + _stray(u[-1]),
    )


def _stray(last: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return alphabet[alphabet.index(last) ^ 1]


def _time_vectors(m: Maker) -> None:
    g = "time"
    expires = replace(CLAIMS, issued=date(2026, 11, 1), expires=date(2026, 12, 1))
    issued = replace(CLAIMS, issued=date(2026, 12, 2), expires=date(2027, 3, 1))
    m.add(
        "expires-last-second",
        g,
        "expires 2026-12-01, validated at 2026-12-01T15:59:59Z = "
        "23:59:59 in Ulaanbaatar: still valid.",
        OK,
        claims=expires,
        at=datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC),
    )
    m.add(
        "expires-local-midnight",
        g,
        "expires 2026-12-01, validated at 2026-12-01T16:00:00Z = "
        "00:00 on 2 December in Ulaanbaatar: expired although the UTC date is still 1 December.",
        EXPIRED,
        claims=expires,
        at=datetime(2026, 12, 1, 16, tzinfo=UTC),
    )
    m.add(
        "expires-utc-evening",
        g,
        "expires 2026-12-01, validated at 2026-12-01T23:59:59Z "
        "(UTC date 1 December, Ulaanbaatar date 2 December): expired.",
        EXPIRED,
        claims=expires,
        at=datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC),
    )
    m.add(
        "issued-before-local-midnight",
        g,
        "issued 2026-12-02, validated at 2026-12-01T15:59:59Z "
        "= 23:59:59 on 1 December in Ulaanbaatar: not yet valid.",
        NOT_YET,
        claims=issued,
        at=datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC),
    )
    m.add(
        "issued-local-midnight",
        g,
        "issued 2026-12-02, validated at 2026-12-01T16:00:00Z = "
        "00:00 on 2 December in Ulaanbaatar: valid although the UTC date is 1 December.",
        OK,
        claims=issued,
        at=datetime(2026, 12, 1, 16, tzinfo=UTC),
    )
    m.add(
        "cert-last-second",
        g,
        "Seal certificate notAfter 2026-12-31T23:59:59Z, validated at "
        "that instant: notAfter is inclusive.",
        OK,
        signer="seal-ends-2026",
        at=datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    m.add(
        "cert-expired-by-a-second",
        g,
        "The same seal certificate validated at 2027-01-01T00:00:00Z.",
        OUT_OF_BOUNDS,
        signer="seal-ends-2026",
        at=datetime(2027, 1, 1, tzinfo=UTC),
    )


def _chain_vectors(m: Maker) -> None:
    g = "chain"
    m.add(
        "valid-seal-under-root",
        g,
        "A seal certificate issued by the root directly (no "
        "intermediate): a path of length 2 is fine.",
        OK,
        signer="seal-under-root",
        intermediates=(),
    )
    m.add(
        "other-agency",
        g,
        "A second agency (SHSG, organizationIdentifier GV:MN-SHSG) sealing its own document.",
        OK,
        signer="seal-shsg",
        claims=replace(CLAIMS, issuer="SHSG"),
        seal_certs=["seal", "seal-shsg"],
    )
    m.add(
        "missing-intermediate",
        g,
        "The issuing CA certificate is not among the published certificates: no path.",
        NO_CHAIN,
        intermediates=(),
    )
    m.add(
        "untrusted-root",
        g,
        "A published seal certificate under 'Forger Root CA', which is "
        "not a trust anchor; the forger root is published as an intermediate.",
        NO_CHAIN,
        signer="forger-seal",
        intermediates=("intermediate", "forger-root"),
    )
    m.add(
        "lookalike-root",
        g,
        "A seal certificate under a self-signed CA with the same name as "
        "the trust anchor ('Test Vector Root') but another key.",
        NO_CHAIN,
        signer="lookalike-seal",
        intermediates=("intermediate", "lookalike-root"),
    )
    m.add(
        "forged-issuer-signature",
        g,
        "A seal certificate naming the issuing CA as issuer, "
        "with its name and key identifier, but signed by another key.",
        NO_CHAIN,
        signer="forged-seal",
    )
    m.add(
        "self-signed-seal",
        g,
        "A published self-signed seal certificate.",
        NO_CHAIN,
        signer="unpublished-seal",
    )
    m.add(
        "expired-seal-cert",
        g,
        "The seal certificate expired on 2026-06-30.",
        OUT_OF_BOUNDS,
        signer="seal-expired",
    )
    m.add(
        "seal-cert-not-yet-valid",
        g,
        "The seal certificate is valid from 2027-01-01.",
        OUT_OF_BOUNDS,
        signer="seal-not-yet-valid",
    )
    m.add(
        "no-digital-signature",
        g,
        "The seal certificate's key usage is nonRepudiation only.",
        CONSTRAINTS,
        signer="seal-no-digital-signature",
    )
    m.add(
        "no-key-usage",
        g,
        "The seal certificate has no key usage extension.",
        CONSTRAINTS,
        signer="seal-no-key-usage",
    )
    m.add(
        "wrong-eku",
        g,
        "The seal certificate's extended key usage is emailProtection.",
        CONSTRAINTS,
        signer="seal-wrong-eku",
    )
    m.add(
        "no-eku",
        g,
        "The seal certificate has no extended key usage extension.",
        CONSTRAINTS,
        signer="seal-no-eku",
    )
    m.add(
        "any-eku",
        g,
        "The seal certificate's extended key usage is anyExtendedKeyUsage only.",
        CONSTRAINTS,
        signer="seal-any-eku",
    )
    m.add(
        "non-ca-intermediate",
        g,
        "The seal certificate's issuer has basicConstraints cA FALSE (though keyCertSign).",
        CONSTRAINTS,
        signer="seal-under-nonca",
        intermediates=("nonca-intermediate",),
    )
    m.add(
        "expired-intermediate",
        g,
        "The issuing CA certificate expired on 2026-06-30.",
        OUT_OF_BOUNDS,
        signer="seal-under-expired-intermediate",
        intermediates=("expired-intermediate",),
    )
    m.add(
        "weak-intermediate",
        g,
        "The issuing CA has an RSA-1024 key (state crypto policy: RSA >= 2048).",
        ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE"),
        signer="seal-under-weak-intermediate",
        intermediates=("weak-intermediate",),
    )
    m.add(
        "issuer-mismatch",
        g,
        "A UBEG seal certificate (GV:MN-UBEG) sealing a document that claims issuer SHSG.",
        ("TOTAL-FAILED", "ISSUER_MISMATCH"),
        claims=replace(CLAIMS, issuer="SHSG"),
    )
    m.add(
        "no-organization-identifier",
        g,
        "The seal certificate has no organizationIdentifier.",
        CONSTRAINTS,
        signer="seal-no-orgid",
    )
    m.add(
        "bad-organization-identifier",
        g,
        "The seal certificate's organizationIdentifier is "
        "NTRMN-9011222, not of the form GV:MN-<agency>.",
        CONSTRAINTS,
        signer="seal-bad-orgid",
    )


def _listed(
    pki: Pki,
    cert: str,
    agency: str = "UBEG",
    *,
    until: date | None = None,
    revoked_from: date | None = None,
) -> SealKey:
    """A seal key as a list names it: for the whole Ulaanbaatar days of its certificate."""
    first, last = sealing_days(pki.certs[cert])
    return SealKey(pki.certs[cert], agency, first, until or last, revoked_from)


def _tamper(signed_list: bytes) -> bytes:
    """The list with its next update moved one second later after signing (the payload starts
    a6 01 01 02 1a <issued> 03 1a <next update>: flip the last bit of the next update)."""
    tag = cbor2.loads(signed_list)
    protected, unprotected, payload, signature = tag.value
    assert payload[:5] == bytes.fromhex("a60101021a") and payload[9:11] == bytes.fromhex("031a")
    changed = payload[:14] + bytes([payload[14] ^ 1]) + payload[15:]
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, changed, signature]))


LIST_ISSUED = datetime(2026, 12, 1, tzinfo=UTC)
LIST_NEXT = datetime(2026, 12, 3, tzinfo=UTC)
OTHER_DOC = document_id("UBEG", "ОСХ-2026-000999")


def _sign_list(
    pki: Pki,
    keys: Sequence[SealKey],
    *,
    withdrawn: Sequence[str] = (OTHER_DOC,),
    issued: datetime = LIST_ISSUED,
    next_update: datetime = LIST_NEXT,
    signer: str = "trust-list-signer",
) -> bytes:
    content = TrustListContent(
        issued=issued,
        next_update=next_update,
        seal_keys=tuple(keys),
        intermediates=(pki.certs["intermediate"].public_bytes(serialization.Encoding.DER),),
        withdrawn={"UBEG": list(withdrawn)},
    )
    chain = [pki.certs["intermediate"]] if signer == "trust-list-signer" else []
    return TrustListSigner(pki.keys["trust-list-signer"], pki.certs[signer], chain).sign(content)


def _trust_list_vectors(m: Maker) -> None:
    g = "trust-list"
    pki = m.pki
    both = [_listed(pki, "seal"), _listed(pki, "seal-shsg", "SHSG")]
    valid = _sign_list(pki, both)
    m.lists["valid"] = valid
    m.lists["withdrawn"] = _sign_list(
        pki, both, withdrawn=(OTHER_DOC, document_id("UBEG", CLAIMS.number))
    )
    revoked = date(2026, 11, 20)
    m.lists["key-revoked"] = _sign_list(pki, [_listed(pki, "seal", revoked_from=revoked)])
    m.lists["key-revoked-later"] = _sign_list(
        pki, [_listed(pki, "seal", revoked_from=date(2026, 11, 26))]
    )
    m.lists["other-agency"] = _sign_list(pki, [_listed(pki, "seal", "SHSG")])
    m.lists["period-ended"] = _sign_list(pki, [_listed(pki, "seal", until=date(2026, 11, 24))])
    m.lists["without-key"] = _sign_list(pki, both[1:])
    m.lists["untrusted-signer"] = _sign_list(pki, both, signer="forger-trust-list-signer")
    m.lists["tampered"] = _tamper(valid)
    m.lists["outlived"] = _sign_list(
        pki,
        [_listed(pki, "seal-ends-2026")],
        issued=datetime(2027, 6, 1, tzinfo=UTC),
        next_update=datetime(2027, 6, 3, tzinfo=UTC),
    )
    m.lists["not-a-list"] = bytes.fromhex(m.vectors[0]["cose_sign1_hex"])
    refused = ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
    tl: dict[str, Any] = {"intermediates": ()}
    m.add(
        "list-valid",
        g,
        "A current trust list that lists the seal key.",
        OK,
        trust_list="valid",
        **tl,
    )
    m.add(
        "list-valid-other-agency",
        g,
        "The same list; the SHSG key sealing an SHSG document.",
        OK,
        signer="seal-shsg",
        claims=replace(CLAIMS, issuer="SHSG"),
        trust_list="valid",
        **tl,
    )
    m.add(
        "list-last-second",
        g,
        "The list validated one second before its next update (2026-12-03T00:00:00Z).",
        OK,
        trust_list="valid",
        at=datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC),
        **tl,
    )
    m.add(
        "list-stale",
        g,
        "The list validated at its next update: out of date.",
        ("INDETERMINATE", "TRY_LATER"),
        trust_list="valid",
        at=LIST_NEXT,
        **tl,
    )
    m.add(
        "list-tampered",
        g,
        "One bit of the list's payload changed after signing.",
        refused,
        trust_list="tampered",
        **tl,
    )
    m.add(
        "list-untrusted-signer",
        g,
        "A list signed by a certificate under 'Forger Root CA'.",
        refused,
        trust_list="untrusted-signer",
        **tl,
    )
    m.add(
        "list-not-a-list",
        g,
        "A seal's COSE_Sign1 given as the trust list.",
        refused,
        trust_list="not-a-list",
        **tl,
    )
    m.add(
        "list-from-the-future",
        g,
        "The list's issue time (2026-12-01T00:00:00Z) is more than "
        "5 minutes after the validation time.",
        refused,
        trust_list="valid",
        at=datetime(2026, 11, 30, 23, 54, 59, tzinfo=UTC),
        **tl,
    )
    m.add(
        "list-kid-not-listed",
        g,
        "A valid list that does not list the seal's key.",
        refused,
        trust_list="without-key",
        **tl,
    )
    m.add(
        "list-document-withdrawn",
        g,
        "The list names this document (UBEG, its number) as withdrawn.",
        ("TOTAL-FAILED", "REVOKED"),
        trust_list="withdrawn",
        **tl,
    )
    m.add(
        "list-key-revoked",
        g,
        "The seal key is revoked from 2026-11-20; the seal is dated 2026-11-25.",
        ("TOTAL-FAILED", "REVOKED"),
        trust_list="key-revoked",
        **tl,
    )
    m.add(
        "list-key-revoked-later",
        g,
        "The seal key is revoked from 2026-11-26; the seal, dated 2026-11-25, was made before.",
        OK,
        trust_list="key-revoked-later",
        **tl,
    )
    m.add(
        "list-agency-mismatch",
        g,
        "The list gives the seal key to SHSG; the seal claims UBEG.",
        ("TOTAL-FAILED", "ISSUER_MISMATCH"),
        trust_list="other-agency",
        **tl,
    )
    m.add(
        "list-outside-period",
        g,
        "The list lets the key seal until 2026-11-24; the seal is dated 2026-11-25.",
        OUT_OF_BOUNDS,
        trust_list="period-ended",
        **tl,
    )
    m.add(
        "list-seal-outlives-cert",
        g,
        "A seal dated 2026-11-25 (no expiry) by a certificate "
        "that expired 2026-12-31, validated 2027-06-01 with a list of that day: the key is "
        "judged at the seal's date.",
        OK,
        signer="seal-ends-2026",
        claims=replace(CLAIMS, expires=None),
        trust_list="outlived",
        at=datetime(2027, 6, 1, 4, tzinfo=UTC),
        **tl,
    )
    m.add(
        "list-seal-outlives-cert-no-list",
        g,
        "The same seal with published certificates "
        "only: the expired certificate cannot be judged at the seal's date.",
        OUT_OF_BOUNDS,
        signer="seal-ends-2026",
        claims=replace(CLAIMS, expires=None),
        at=datetime(2027, 6, 1, 4, tzinfo=UTC),
    )


def _more_vectors(m: Maker) -> None:
    """Added after the first 131; kept last so earlier vectors keep their numbers."""
    m.add(
        "path-length-exceeded",
        "chain",
        "A sub-CA under the issuing CA, whose pathLenConstraint is 0, issued the seal certificate.",
        CONSTRAINTS,
        signer="seal-under-sub",
        intermediates=("intermediate", "sub-intermediate"),
    )
    m.add(
        "ca-without-keycertsign",
        "chain",
        "The issuing CA has cA TRUE but key usage cRLSign only.",
        CONSTRAINTS,
        signer="seal-under-crl-only",
        intermediates=("crl-only-intermediate",),
    )
    m.add(
        "unknown-critical-extension",
        "chain",
        "The seal certificate has a critical extension with an unknown OID.",
        CONSTRAINTS,
        signer="seal-unknown-critical",
    )
    m.add(
        "critical-eku",
        "chain",
        "The seal certificate's EKU extension is marked critical: allowed.",
        OK,
        signer="seal-critical-eku",
    )
    m.add(
        "p384-seal-cert",
        "signature",
        "The kid names a seal certificate with a P-384 key; the "
        "ES256 signature (made with the P-256 seal key) cannot verify with it.",
        SIG,
        signer="seal-p384",
        key="seal",
    )
    m.add(
        "cert-first-second",
        "time",
        "Seal certificate notBefore 2027-01-01T00:00:00Z, "
        "validated at that instant: notBefore is inclusive.",
        OK,
        signer="seal-not-yet-valid",
        at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    m.add(
        "cert-one-second-early",
        "time",
        "The same certificate validated at 2026-12-31T23:59:59Z.",
        OUT_OF_BOUNDS,
        signer="seal-not-yet-valid",
        at=datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    )

    m.add(
        "eku-with-other-purposes",
        "chain",
        "The seal certificate's EKU lists emailProtection, id-kp-esignQrSeal and "
        "id-kp-documentSigning: other purposes beside the seal's are allowed.",
        OK,
        signer="seal-more-ekus",
    )

    m.add(
        "critical-issuer-alt-name",
        "chain",
        "The seal certificate has a critical issuer "
        "alternative name (2.5.29.18), which is not among the recognised extensions.",
        CONSTRAINTS,
        signer="seal-critical-ian",
    )
    m.add(
        "issuer-name-case",
        "chain",
        "The seal certificate names its issuer with the CN in "
        "upper case ('TEST VECTOR ISSUING CA'): names match case-insensitively.",
        OK,
        signer="seal-issuer-upper",
    )
    m.add(
        "issuer-name-printable",
        "chain",
        "The seal certificate names its issuer with "
        "PrintableString attributes where the CA's subject has UTF8String: names match "
        "whatever the string type.",
        OK,
        signer="seal-issuer-printable",
    )
    m.add(
        "anchor-pathlen-not-applied",
        "chain",
        "The trust anchor has pathLenConstraint 0 and "
        "the path has one intermediate: an anchor's own constraints are not applied.",
        OK,
        anchors=("root-pathlen-0",),
    )


def build_vectors(pki: Pki) -> tuple[dict[str, dict[str, Any]], dict[str, bytes]]:
    m = Maker(pki)
    _claims_vectors(m)
    _cbor_vectors(m)
    _cose_vectors(m)
    _signature_vectors(m)
    _url_vectors(m)
    _time_vectors(m)
    _chain_vectors(m)
    _trust_list_vectors(m)
    _more_vectors(m)
    return {v["name"] + ".json": v for v in m.vectors}, m.lists


def render(vector: dict[str, Any]) -> bytes:
    return (json.dumps(vector, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def outputs(new_keys: bool = False) -> dict[Path, bytes]:
    """Every generated file and its bytes."""
    pki, files = build_pki(new_keys)
    result = {PKI / name: data for name, data in files.items()}
    vectors, lists = build_vectors(pki)
    result |= {HERE / n: render(v) for n, v in vectors.items()}
    result |= {HERE / "trust-lists" / f"{n}.cbor": data for n, data in lists.items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--new-keys", action="store_true", help="replace the test-only keys")
    args = parser.parse_args()
    wanted = outputs(args.new_keys)
    stale = [p for p, data in wanted.items() if not p.exists() or p.read_bytes() != data]
    extra = [p for p in HERE.glob("*.json") if p not in wanted]
    extra += [p for p in PKI.glob("*.pem") if p not in wanted and not p.name.endswith(".key.pem")]
    extra += [p for p in HERE.glob("trust-lists/*") if p not in wanted]
    if args.check:
        for p in stale:
            print(f"differs: {p.relative_to(HERE)}")
        for p in extra:
            print(f"not generated: {p.relative_to(HERE)}")
        return 1 if stale or extra else 0
    for p in extra:
        p.unlink()
        print(f"removed {p.relative_to(HERE)}")
    for p in stale:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(wanted[p])
        print(f"wrote {p.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
