"""The QR seal: a compact claim set signed by an agency's seal key, carried in a URL.

A printed or photographed certificate loses its PDF signature; the QR seal carries its own proof.
Format (specified in ``docs/qr-seal.md``): a COSE_Sign1 (RFC 9052) with ES256, the key id in the
protected header and a deterministic-CBOR claim map as payload, written as unpadded RFC 4648 base32
in ``<base URL>/V/<payload>`` so the whole URL stays in the QR alphanumeric mode.

This module encodes and signs; ``verify.seal`` decodes and verifies.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import cbor2
import qrcode
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .errors import InputError, KeySourceError, UsageError

if TYPE_CHECKING:
    from .keysource import LoadedKey

SEAL_VERSION = 1
COSE_SIGN1_TAG = 18
ALG_ES256 = -7
HEADER_ALG = 1
HEADER_KID = 4
KID_BYTES = 8
DIGEST_BYTES = 16
SIGNATURE_BYTES = 64
MAX_COSE_BYTES = 1024
"""Cap on the decoded COSE_Sign1; checked before any CBOR is parsed."""
FIRST_EXTENSION_KEY = 24
"""Claim keys 0-23 are critical (unknown ones are rejected); keys >= 24 are ignorable extensions."""
EPOCH = date(1970, 1, 1)
MAX_DAYS = (date.max - EPOCH).days
URL_MARKER = "/V/"
AGENCY_ID_PREFIX = "GV:MN-"
"""A seal certificate binds its agency code in the subject's organizationIdentifier (ETSI EN 319
412-1 §5.1.4, local scheme ``GV:`` = Mongolian state agency code): ``GV:MN-UBEG`` for ``UBEG``."""


class Claim(enum.IntEnum):
    """Integer keys of the claim map (docs/qr-seal.md, "Claims")."""

    VERSION = 1
    ISSUER = 2
    DOC_TYPE = 3
    NUMBER = 4
    ISSUED = 5
    EXPIRES = 6
    SUBJECT_NAME = 7
    SUBJECT_ID = 8
    FIELDS_DIGEST = 9


TEXT_LIMITS: dict[Claim, int] = {
    Claim.ISSUER: 32,
    Claim.DOC_TYPE: 32,
    Claim.NUMBER: 64,
    Claim.SUBJECT_NAME: 256,
    Claim.SUBJECT_ID: 32,
}
"""Maximum UTF-8 length in bytes of each text claim; all must be non-empty."""
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode general categories no text claim may contain (controls, format characters such as
U+202E, line and paragraph separators); Zs (spaces) may not begin or end one (qr-seal.md §5)."""
SEAL_EKU_OID = "2.25.187697793891391668806884730963693754825"
"""id-kp-esignQrSeal: the extended key usage every seal certificate carries (docs/qr-seal.md §4)."""


class SealFormatError(InputError):
    """A QR seal is malformed: not base32, not the CBOR profile, wrong types or sizes.

    Verifiers report it as TOTAL-FAILED / FORMAT_FAILURE.
    """

    exit_code = 4


@dataclass(frozen=True)
class SealClaims:
    """What the seal asserts. Dates are civil dates (Mongolia, UTC+8); ``expires`` is the last day
    the document is valid, or None for a document that does not expire."""

    issuer: str
    """Agency code, e.g. ``УБЕГ``."""
    doc_type: str
    """Short document-type code of the issuing agency, e.g. ``BIRTH``."""
    number: str
    issued: date
    expires: date | None
    subject_name: str
    subject_id: str
    """Citizen register number, e.g. ``УБ99112233``, or an organisation's register number."""
    fields_digest: bytes
    """``fields_digest()`` of the document's key fields (16 bytes)."""

    def problems(self) -> list[str]:
        """Why these claims cannot be sealed (empty if they can); shared by signer and decoder."""
        found: list[str] = []
        texts = {
            Claim.ISSUER: self.issuer,
            Claim.DOC_TYPE: self.doc_type,
            Claim.NUMBER: self.number,
            Claim.SUBJECT_NAME: self.subject_name,
            Claim.SUBJECT_ID: self.subject_id,
        }
        for key, value in texts.items():
            name = key.name.lower()
            if not isinstance(value, str):
                found.append(f"claim {name} must be text")
                continue
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError:
                found.append(f"claim {name} is not valid Unicode")
                continue
            if not 0 < size <= TEXT_LIMITS[key]:
                found.append(f"claim {name} must be 1-{TEXT_LIMITS[key]} UTF-8 bytes, not {size}")
            elif any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in value):
                found.append(f"claim {name} contains control or format characters or line breaks")
            elif "Zs" in (unicodedata.category(value[0]), unicodedata.category(value[-1])):
                found.append(f"claim {name} begins or ends with white space")
            elif not unicodedata.is_normalized("NFC", value):
                found.append(f"claim {name} is not in Unicode normalisation form NFC")
        for name, day in (("issued", self.issued), ("expires", self.expires)):
            if day is not None and not isinstance(day, date):
                found.append(f"claim {name} must be a date")
        if not isinstance(self.issued, date) or self.issued < EPOCH:
            found.append("claim issued must be a date on or after 1970-01-01")
        elif isinstance(self.expires, date) and self.expires < self.issued:
            found.append("claim expires is before issued")
        if not isinstance(self.fields_digest, bytes) or len(self.fields_digest) != DIGEST_BYTES:
            found.append(f"claim fields_digest must be {DIGEST_BYTES} bytes")
        return found


def days(day: date) -> int:
    """A civil date as the day count since 1970-01-01 used on the wire."""
    return (day - EPOCH).days


def from_days(count: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + count)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fields_cbor(fields: Mapping[str, str]) -> bytes:
    """The canonical encoding hashed by ``fields_digest``: deterministic CBOR (RFC 8949 §4.2.1) of
    the map of NFC-normalised field names to NFC-normalised values."""
    normalised: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise UsageError("document key fields must map text names to text values")
        key = _nfc(name)
        if key in normalised:
            raise UsageError(f"document key field {key!r} appears twice after NFC normalisation")
        problem = printed_form_problem(value)
        if problem:
            raise InputError(f"field {key!r} cannot be sealed: {problem}")
        normalised[key] = _nfc(value)
    return cbor2.dumps(normalised, canonical=True)


def printed_form_problem(value: str) -> str | None:
    """Why a verifier reading the printed page could not recover ``value`` exactly (None if it
    can): it reads words separated by single spaces (docs/qr-seal.md §6.1), so a bound value may
    not be empty, begin or end with white space, hold line breaks, tabs, repeated or non-breaking
    spaces, nor invisible control or format characters."""
    if not value:
        return "it is empty"
    if " ".join(value.split()) != value:
        return "white space other than single spaces between words (line break, tab, no-break)"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        return "it contains invisible control or format characters"
    return None


def fields_digest(fields: Mapping[str, str]) -> bytes:
    """First 16 bytes of SHA-256 over ``fields_cbor(fields)``: binds the seal to the document's key
    fields (printed or in the PDF) without putting them all in the QR."""
    return hashlib.sha256(fields_cbor(fields)).digest()[:DIGEST_BYTES]


def claims_map(claims: SealClaims) -> dict[int, object]:
    """The claim map as it goes on the wire (integer keys, dates as day counts)."""
    problems = claims.problems()
    if problems:
        raise UsageError(f"cannot seal these claims: {problems[0]}")
    out: dict[int, object] = {
        Claim.VERSION: SEAL_VERSION,
        Claim.ISSUER: claims.issuer,
        Claim.DOC_TYPE: claims.doc_type,
        Claim.NUMBER: claims.number,
        Claim.ISSUED: days(claims.issued),
        Claim.SUBJECT_NAME: claims.subject_name,
        Claim.SUBJECT_ID: claims.subject_id,
        Claim.FIELDS_DIGEST: claims.fields_digest,
    }
    if claims.expires is not None:
        out[Claim.EXPIRES] = days(claims.expires)
    return {int(k): v for k, v in out.items()}


def encode_claims(claims: SealClaims) -> bytes:
    """Deterministic CBOR of the claim map: the COSE payload."""
    return cbor2.dumps(claims_map(claims), canonical=True)


def key_id(certificate_der: bytes) -> bytes:
    """First 8 bytes of SHA-256 of the seal certificate's DER: how a verifier finds the key."""
    return hashlib.sha256(certificate_der).digest()[:KID_BYTES]


def protected_header(kid: bytes, alg: int = ALG_ES256) -> bytes:
    return cbor2.dumps({HEADER_ALG: alg, HEADER_KID: kid}, canonical=True)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 §4.4 Sig_structure for COSE_Sign1 with empty external AAD: the bytes signed."""
    return cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)


def cose_sign1(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """Tagged COSE_Sign1 with an empty unprotected header."""
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def b32(data: bytes) -> str:
    """RFC 4648 base32, upper case, without padding: only A-Z and 2-7 (QR alphanumeric mode)."""
    return base64.b32encode(data).decode("ascii").rstrip("=")


def seal_url(base_url: str, payload: str) -> str:
    """``<base URL>/V/<payload>`` with scheme and host upper-cased (they are case-insensitive) so
    the QR stays alphanumeric; a path in the base URL is kept as given."""
    parts = urlsplit(base_url.strip())
    if not parts.scheme or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"seal base URL must be scheme://host[/path]: {base_url!r}")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.upper()}://{parts.netloc.upper()}{path}{URL_MARKER}{payload}"


def qr_version(text: str, level: str = "M") -> int:
    """The smallest QR version that holds ``text`` at the error-correction level (L, M, Q, H)."""
    levels = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    qr = qrcode.QRCode(error_correction=levels[level])
    qr.add_data(text)
    qr.make(fit=True)
    return int(qr.version)


class IssuerMismatch(UsageError):
    """A template names another agency than the one the seal key's certificate belongs to."""


def agency_code(certificate: x509.Certificate) -> str | None:
    """The agency code a seal certificate binds: its one organizationIdentifier ``GV:MN-<code>``
    (code 1-32 UTF-8 bytes). None when there is none, several, or another scheme: such a
    certificate cannot vouch for any issuer claim."""
    values = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_IDENTIFIER)
    if len(values) != 1 or not isinstance(values[0].value, str):
        return None
    value = values[0].value
    if not value.startswith(AGENCY_ID_PREFIX):
        return None
    code = value[len(AGENCY_ID_PREFIX) :]
    if not 0 < len(code.encode("utf-8")) <= TEXT_LIMITS[Claim.ISSUER]:
        return None
    return code


def organisation(certificate: x509.Certificate) -> str:
    """The subject's organisationName (or the whole subject), for messages."""
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def check_issuer(issuer_code: str, certificate: x509.Certificate) -> None:
    """Refuse to seal in the name of ``issuer_code`` with a certificate bound to another agency
    (or to none): a verifier would call every such seal forged."""
    bound = agency_code(certificate)
    if bound == issuer_code:
        return
    org = organisation(certificate)
    owner = f"{bound} ({org})" if bound else f"no agency ({org}: no organizationIdentifier GV:MN-…)"
    raise IssuerMismatch(
        f"the template's issuer is {issuer_code} but the seal key's certificate is for {owner}"
    )


RawSign = Callable[[bytes], bytes]
"""Signs its input with ECDSA over SHA-256 and returns the DER signature (a token, an HSM)."""


def raw_signer(loaded: LoadedKey) -> RawSign:
    """SHA-256 raw signatures by any key source's pyHanko signer (file, PKCS#12, PKCS#11 token):
    its synchronous ``sign_raw`` where it has one, else the async one run to completion."""
    pyhanko_signer: Any = loaded.signer
    sync_sign = getattr(pyhanko_signer, "sign_raw", None)

    def raw_sign(data: bytes) -> bytes:
        if sync_sign is not None:
            return bytes(sync_sign(data, "sha256"))
        return bytes(asyncio.run(pyhanko_signer.async_sign_raw(data, "sha256")))

    return raw_sign


class SealSigner:
    """Seals claims with an agency's P-256 seal key: a pyca/cryptography key or a ``RawSign``.

    With a key object, signatures use deterministic ECDSA (RFC 6979) where OpenSSL offers it, so the
    same claims give the same QR and the test vectors regenerate byte for byte.
    """

    def __init__(
        self, key: ec.EllipticCurvePrivateKey | RawSign, certificate: x509.Certificate
    ) -> None:
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            raise KeySourceError("the QR seal needs an ECDSA P-256 seal certificate (ES256)")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if key.public_key().public_numbers() != public.public_numbers():
                raise KeySourceError("the seal key does not match the seal certificate")
            algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=_deterministic())
            private = key
            self._raw_sign: RawSign = lambda data: private.sign(data, algorithm)
        elif callable(key):
            self._raw_sign = key
        else:
            raise KeySourceError("the QR seal needs an ECDSA P-256 seal key (ES256)")
        self.certificate = certificate
        self.kid = key_id(certificate.public_bytes(serialization.Encoding.DER))
        self._protected = protected_header(self.kid)

    @classmethod
    def from_pem_files(
        cls, key_path: Path, cert_path: Path, password: bytes | None = None
    ) -> SealSigner:
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except OSError as e:
            raise InputError(f"cannot read seal key or certificate: {e}") from e
        except (ValueError, TypeError) as e:
            raise KeySourceError(f"cannot load seal key {key_path} or certificate: {e}") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeySourceError("the QR seal needs an ECDSA P-256 seal key (ES256)")
        return cls(key, cert)

    @classmethod
    def from_loaded_key(cls, loaded: LoadedKey) -> SealSigner:
        """A seal signer over any key source (file, PKCS#12, PKCS#11 token). One test signature
        is checked against the certificate, so a key/certificate mismatch fails at start-up, not
        in every QR printed afterwards."""
        cert = x509.load_der_x509_certificate(loaded.signing_cert.dump())
        raw_sign = raw_signer(loaded)
        signer = cls(raw_sign, cert)
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        probe = b"esign seal key check"
        try:
            public.verify(raw_sign(probe), probe, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as e:
            raise KeySourceError("the seal key does not match the seal certificate") from e
        return signer

    def sign_cose(self, claims: SealClaims) -> bytes:
        """The tagged COSE_Sign1 bytes."""
        payload = encode_claims(claims)
        der = self._raw_sign(sig_structure(self._protected, payload))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return cose_sign1(self._protected, payload, signature)

    def sign(self, claims: SealClaims) -> str:
        """The base32 text that follows ``/V/`` in the seal URL."""
        return b32(self.sign_cose(claims))

    def url(self, base_url: str, claims: SealClaims) -> str:
        return seal_url(base_url, self.sign(claims))


def _deterministic() -> bool:
    from cryptography.hazmat.backends.openssl import backend

    return bool(backend.ecdsa_deterministic_supported())


__all__ = [
    "AGENCY_ID_PREFIX",
    "ALG_ES256",
    "Claim",
    "IssuerMismatch",
    "RawSign",
    "SealClaims",
    "SealFormatError",
    "SealSigner",
    "agency_code",
    "b32",
    "check_issuer",
    "cose_sign1",
    "encode_claims",
    "fields_cbor",
    "fields_digest",
    "key_id",
    "organisation",
    "printed_form_problem",
    "protected_header",
    "qr_version",
    "seal_url",
    "sig_structure",
]
