"""Decode and verify QR seals (format in docs/qr-seal.md, encoding in ``esign.seal``).

Decoding is strict and bounded: the input length and the decoded size are capped before any CBOR
is parsed, and a structural scan admits only the profile the format uses (definite-length,
minimally encoded integers, strings, arrays and maps; the single COSE_Sign1 tag at the top) before
cbor2 sees the bytes. Anything else is a ``SealFormatError`` with a one-line message, never another
exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import load_der_x509_certificate
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)

from esign.seal import (
    ALG_ES256,
    COSE_SIGN1_TAG,
    DIGEST_BYTES,
    FIRST_EXTENSION_KEY,
    HEADER_ALG,
    HEADER_KID,
    KID_BYTES,
    MAX_COSE_BYTES,
    MAX_DAYS,
    SEAL_EKU_OID,
    SIGNATURE_BYTES,
    Claim,
    SealClaims,
    SealFormatError,
    agency_code,
    from_days,
    key_id,
    sig_structure,
)

from .policy import StateCryptoPolicy
from .report import Indication, Text, jsonable
from .trust import TrustConfig, load_cert_paths

SEAL_SCHEMA_VERSION = "esign.seal.report/1"
MAX_INPUT_CHARS = 4096
"""Longest text accepted, in characters of the text as given (before trimming); only ASCII is
accepted, so characters are bytes. A URL with a 1 KiB seal is under 1,700 characters."""
MAX_DEPTH = 4
MONGOLIA = timezone(timedelta(hours=8), "Asia/Ulaanbaatar")
"""Document dates are civil dates in Mongolia (UTC+8 all year, no daylight saving since 2017)."""
_B32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
TRIMMED = " \t\n\v\f\r"
"""The white space trimmed around an input (TAB LF VT FF CR SPACE); ``str.strip()`` would also
take U+001C-U+001F, which other languages' trim functions keep (docs/qr-seal.md §1)."""


@dataclass(frozen=True)
class DecodedSeal:
    """A well-formed seal, not yet verified: ``claims`` are only what the QR says."""

    claims: SealClaims
    kid: bytes
    protected: bytes
    payload: bytes
    signature: bytes
    cose: bytes

    @property
    def signed_bytes(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def _fail(reason: str) -> SealFormatError:
    return SealFormatError(f"malformed QR seal: {reason}")


def check_input(text: str) -> None:
    """Refuse what no seal can be, before anything trims, splits or case-folds it: not text,
    longer than ``MAX_INPUT_CHARS``, or not ASCII. Non-ASCII must go first: ``str.upper()`` maps
    'ſ' to 'S' and 'ı' to 'I', so without this one seal would verify under many texts."""
    if not isinstance(text, str):
        raise _fail("input is not text")
    if len(text) > MAX_INPUT_CHARS:
        raise _fail(f"input is {len(text)} characters, more than {MAX_INPUT_CHARS}")
    if not text.isascii():
        where = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise _fail(
            f"input has a non-ASCII character at position {where + 1}: "
            "not base32 (A-Z, 2-7) nor a seal URL"
        )


def canonical_payload(text: str) -> str:
    """The seal's payload as printed (upper-case base32) from any accepted form of it: one text
    per seal, for caches and logs. Raises ``SealFormatError`` for input no seal can be."""
    check_input(text)
    return _payload_text(text).upper()


def _payload_text(text: str) -> str:
    """The base32 part of a bare payload or of a URL ``.../v/<payload>[/][?...][#...]``."""
    check_input(text)
    text = text.strip(TRIMMED)
    if "/" not in text and ":" not in text:
        return text
    for cut in ("#", "?"):
        text = text.split(cut, 1)[0]
    marker = text.upper().rfind("/V/")
    if marker < 0:
        raise _fail("the URL has no /v/<payload> part")
    return text[marker + 3 :].rstrip("/")


def _b32decode(text: str) -> bytes:
    upper = text.upper()
    if not upper:
        raise _fail("the payload is empty")
    if not set(upper) <= _B32_ALPHABET:
        raise _fail("the payload is not base32 (A-Z, 2-7)")
    if len(upper) % 8 not in (0, 2, 4, 5, 7):
        raise _fail("the payload length is not a whole number of bytes in base32 (truncated?)")
    if len(upper) * 5 // 8 > MAX_COSE_BYTES:
        raise _fail(f"the payload is longer than {MAX_COSE_BYTES} bytes")
    try:
        data = base64.b32decode(upper + "=" * (-len(upper) % 8))
    except binascii.Error as e:
        raise _fail("the payload is not base32") from e
    if base64.b32encode(data).decode("ascii").rstrip("=") != upper:
        raise _fail("the payload's base32 does not end on a byte boundary (truncated?)")
    return data


def _scan(data: bytes, pos: int, depth: int, top: bool) -> int:
    """Check one data item of the allowed CBOR profile starting at ``pos``; return its end.

    Recursion is bounded by ``MAX_DEPTH`` and every declared length by the bytes that remain, so
    hostile lengths ("a 2^64-byte string") fail here without allocating anything.
    """
    if pos >= len(data):
        raise _fail("CBOR ends early (truncated)")
    head = data[pos]
    major, info = head >> 5, head & 0x1F
    pos += 1
    if major == 7:
        raise _fail("CBOR floating-point and simple values are not allowed")
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise _fail("CBOR ends early (truncated)")
        arg = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if arg < (24 if size == 1 else 1 << (4 * size)):
            raise _fail("CBOR is not deterministically encoded (non-minimal length)")
    elif info == 31:
        raise _fail("indefinite-length CBOR is not allowed")
    else:
        raise _fail("CBOR uses a reserved encoding")
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg > len(data) - pos:
            raise _fail(f"a CBOR string declares {arg} bytes but only {len(data) - pos} remain")
        return pos + arg
    if major in (4, 5):
        if depth >= MAX_DEPTH:
            raise _fail("CBOR is nested too deeply")
        items = arg * 2 if major == 5 else arg
        if items > len(data) - pos:
            raise _fail(
                f"a CBOR container declares {arg} entries but only {len(data) - pos} bytes remain"
            )
        for _ in range(items):
            pos = _scan(data, pos, depth + 1, False)
        return pos
    if top and arg == COSE_SIGN1_TAG:
        return _scan(data, pos, depth, False)
    raise _fail(f"unexpected CBOR tag {arg}")


def _loads(data: bytes, what: str, *, deterministic: bool, tagged: bool = False) -> Any:
    if not data:
        raise _fail(f"the {what} is empty")
    end = _scan(data, 0, 0, top=tagged)
    if end != len(data):
        raise _fail(f"{len(data) - end} bytes follow the {what}")
    try:
        value = cbor2.loads(
            data, max_depth=MAX_DEPTH + 1, allow_indefinite=False, allow_duplicate_keys=False
        )
    except cbor2.CBORDecodeError as e:
        if isinstance(e.__cause__, UnicodeDecodeError):
            raise _fail(f"text in the {what} is not valid UTF-8") from e
        if "Duplicate" in str(e):
            raise _fail(f"the {what} repeats a map key") from e
        raise _fail(f"the {what} is not valid CBOR") from e
    if deterministic and cbor2.dumps(value, canonical=True) != data:
        raise _fail(f"the {what} is not deterministic CBOR (map keys out of order)")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(claims: Mapping[Any, Any], key: Claim) -> str:
    value = claims.get(int(key))
    if not isinstance(value, str):
        raise _fail(f"claim {key.name.lower()} ({int(key)}) is missing or not text")
    return value


def _day(claims: Mapping[Any, Any], key: Claim) -> date:
    value = claims.get(int(key))
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAYS:
        raise _fail(f"claim {key.name.lower()} ({int(key)}) is missing or not a day count")
    return from_days(value)


def _claims(payload: bytes) -> SealClaims:
    value = _loads(payload, "claim map", deterministic=True)
    if not isinstance(value, Mapping):
        raise _fail("the COSE payload is not a CBOR map")
    known = {int(k) for k in Claim}
    for k in value:
        if not _is_int(k) or k < 0:
            raise _fail("claim keys must be unsigned integers")
        if k not in known and k < FIRST_EXTENSION_KEY:
            raise _fail(f"unknown critical claim {k}")
    version = value.get(int(Claim.VERSION))
    if version != 1 or not _is_int(version):
        raise _fail(f"unsupported seal version {version!r}")
    digest = value.get(int(Claim.FIELDS_DIGEST))
    if not isinstance(digest, bytes) or len(digest) != DIGEST_BYTES:
        raise _fail(f"claim fields_digest (9) is missing or not {DIGEST_BYTES} bytes")
    claims = SealClaims(
        issuer=_text(value, Claim.ISSUER),
        doc_type=_text(value, Claim.DOC_TYPE),
        number=_text(value, Claim.NUMBER),
        issued=_day(value, Claim.ISSUED),
        expires=_day(value, Claim.EXPIRES) if int(Claim.EXPIRES) in value else None,
        subject_name=_text(value, Claim.SUBJECT_NAME),
        subject_id=_text(value, Claim.SUBJECT_ID),
        fields_digest=digest,
    )
    problems = claims.problems()
    if problems:
        raise _fail(problems[0])
    return claims


def _protected(protected: bytes) -> bytes:
    """The kid, after checking the protected header is exactly {1: -7, 4: kid}."""
    header = _loads(protected, "protected header", deterministic=True)
    if not isinstance(header, Mapping) or set(header) != {HEADER_ALG, HEADER_KID}:
        raise _fail("the protected header must hold exactly alg (1) and kid (4)")
    alg = header[HEADER_ALG]
    if alg != ALG_ES256 or not _is_int(alg):
        raise _fail(f"signature algorithm {alg!r} is not ES256 (-7)")
    kid = header[HEADER_KID]
    if not isinstance(kid, bytes) or len(kid) != KID_BYTES:
        raise _fail(f"the kid must be {KID_BYTES} bytes")
    return kid


def decode_cose(cose: bytes) -> DecodedSeal:
    """Decode COSE_Sign1 bytes; raise ``SealFormatError`` unless they are a well-formed seal."""
    if len(cose) > MAX_COSE_BYTES:
        raise _fail(f"the seal is {len(cose)} bytes, more than {MAX_COSE_BYTES}")
    value = _loads(cose, "COSE_Sign1", deterministic=False, tagged=True)
    if not isinstance(value, cbor2.CBORTag) or value.tag != COSE_SIGN1_TAG:
        raise _fail("not a tagged COSE_Sign1 (CBOR tag 18)")
    body = value.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise _fail("COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload, signature = body
    if not isinstance(protected, bytes):
        raise _fail("the COSE protected header is not a byte string")
    if not isinstance(unprotected, Mapping) or unprotected:
        raise _fail("the COSE unprotected header must be an empty map")
    if not isinstance(payload, bytes):
        raise _fail("the COSE payload is not a byte string")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise _fail(f"the ES256 signature must be {SIGNATURE_BYTES} bytes (r || s)")
    kid = _protected(protected)
    return DecodedSeal(
        claims=_claims(payload),
        kid=kid,
        protected=protected,
        payload=payload,
        signature=signature,
        cose=cose,
    )


def decode_seal(text: str) -> DecodedSeal:
    """Decode a seal from its URL (``.../v/<payload>``, any case, optional trailing slash, query or
    fragment) or from the bare base32 payload. Raises ``SealFormatError`` on malformed input."""
    return decode_cose(_b32decode(_payload_text(text)))


_TEXTS: dict[str | None, Text] = {
    None: Text(
        "QR тамга хүчинтэй: агуулга нь өөрчлөгдөөгүй бөгөөд тамгын гэрчилгээ төрийн "
        "итгэмжлэгдсэн үндсэн гэрчилгээнд холбогдож байна.",
        "The QR seal is valid: its contents are unchanged and the seal certificate chains to a "
        "state trust anchor.",
    ),
    "FORMAT_FAILURE": Text(
        "QR кодын агуулга буруу бүтэцтэй тул тамгыг уншиж чадсангүй.",
        "The QR code's contents are malformed; the seal cannot be read.",
    ),
    "SIG_CRYPTO_FAILURE": Text(
        "QR тамгын гарын үсэг таарахгүй байна: агуулгыг өөрчилсөн эсвэл хуурамч тамга байна.",
        "The seal signature does not verify: the contents were changed or the seal is forged.",
    ),
    "NO_CERTIFICATE_CHAIN_FOUND": Text(
        "QR тамгыг үл мэдэгдэх түлхүүрээр үүсгэсэн, эсвэл тамгын гэрчилгээ төрийн "
        "итгэмжлэгдсэн үндсэн гэрчилгээнд холбогдохгүй байна.",
        "The seal was made with an unknown key, or its certificate does not chain to a state "
        "trust anchor.",
    ),
    "EXPIRED": Text(
        "Тамга жинхэнэ боловч баримт бичгийн хүчинтэй хугацаа дууссан.",
        "The seal is genuine but the document has expired.",
    ),
    "NOT_YET_VALID": Text(
        "Тамга жинхэнэ боловч баримт бичгийн олгосон огноо ирээдүйд байна.",
        "The seal is genuine but the document's issue date is in the future.",
    ),
    "REVOKED": Text(
        "Тамгын гэрчилгээ хүчингүй болгогдсон.",
        "The seal certificate was revoked.",
    ),
    "OUT_OF_BOUNDS_NO_POE": Text(
        "Тамгын гэрчилгээ шалгах үед хүчин төгөлдөр бус байна (хугацаа дууссан эсвэл эхлээгүй).",
        "The seal certificate is outside its validity period at the validation time.",
    ),
    "CHAIN_CONSTRAINTS_FAILURE": Text(
        "Тамгын гэрчилгээг тамга үүсгэхэд ашиглах эрхгүй (түлхүүрийн хэрэглээ).",
        "The seal certificate may not be used for sealing (key usage).",
    ),
    "CRYPTO_CONSTRAINTS_FAILURE": Text(
        "Тамгын гэрчилгээний гинжинд сул криптограф алгоритм ашигласан.",
        "A weak algorithm was used in the seal certificate's chain.",
    ),
    "ISSUER_MISMATCH": Text(
        "QR тамгад бичигдсэн олгогч байгууллага нь тамгыг үүсгэсэн түлхүүрийн эзэмшигч "
        "байгууллагатай таарахгүй байна: хуурамч тамга.",
        "The seal names another agency as issuer than the one whose seal key made it: forged.",
    ),
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": Text(
        "Тамгын гэрчилгээний гинжин холбоог шалгаж чадсангүй.",
        "The seal certificate's chain could not be validated.",
    ),
}


@dataclass(frozen=True)
class SealReport:
    """The verdict on one QR seal.

    ``claims`` is what the QR says whenever it could be decoded; it is vouched for only when the
    indication is TOTAL-PASSED or the sub-indication is EXPIRED or NOT_YET_VALID (genuine seal,
    document out of its dates). ``registry_status`` is left for the caller that asks the issued-
    document registry (revoked, superseded), which an offline verifier cannot.
    """

    indication: Indication
    subindication: str | None
    explanation: Text
    claims: SealClaims | None = None
    kid: str | None = None
    seal_certificate: str | None = None
    """Subject of the seal certificate the kid names, when one was found."""
    validation_time: datetime | None = None
    details: tuple[str, ...] = ()
    registry_status: str | None = None
    schema: str = SEAL_SCHEMA_VERSION

    @property
    def exit_code(self) -> int:
        return self.indication.exit_code

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(asdict(self))
        return result


def load_seal_certs(paths: Sequence[Path]) -> tuple[x509.Certificate, ...]:
    """Published agency seal certificates from files or folders (PEM or DER)."""
    return load_cert_paths(paths)


NO_AGENCY = Text(
    "Тамгын гэрчилгээнд байгууллагын код (organizationIdentifier GV:MN-…) алга тул тамгыг "
    "олгогчтой холбож чадсангүй.",
    "The seal certificate names no agency (organizationIdentifier GV:MN-…), so the seal cannot be "
    "bound to its issuer.",
)


def _report(
    sub: str | None,
    indication: Indication,
    at: datetime,
    *details: str,
    explanation: Text | None = None,
    **kw: Any,
) -> SealReport:
    return SealReport(
        indication=indication,
        subindication=sub,
        explanation=explanation or _TEXTS[sub],
        validation_time=at,
        details=tuple(details),
        **kw,
    )


def _signature_ok(seal: DecodedSeal, cert: x509.Certificate) -> bool:
    public = load_der_x509_certificate(cert.dump()).public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        return False
    r = int.from_bytes(seal.signature[:32], "big")
    s = int.from_bytes(seal.signature[32:], "big")
    try:
        public.verify(encode_dss_signature(r, s), seal.signed_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


async def _chain_problem(
    cert: x509.Certificate,
    trust: TrustConfig,
    at: datetime,
    published: Sequence[x509.Certificate] = (),
) -> tuple[str, Indication, str] | None:
    """Validate the seal certificate's path to the anchors at ``at`` (no fetching, revocation
    soft-fail: an offline verifier has no revocation data; the registry answers online), through
    the configured intermediates and any CA certificate published beside the seal certificates;
    then the seal certificate's profile: key usage digitalSignature, EKU ``SEAL_EKU_OID``."""
    context = ValidationContext(
        trust_roots=list(trust.anchors),
        other_certs=[*trust.intermediates, *published],
        moment=at,
        time_tolerance=timedelta(0),
        allow_fetching=False,
        revocation_mode="soft-fail",
        algorithm_usage_policy=StateCryptoPolicy(),
    )
    if cert.self_signed != "no" and cert.dump() not in {a.dump() for a in trust.anchors}:
        return "NO_CERTIFICATE_CHAIN_FOUND", Indication.INDETERMINATE, "self-signed, not an anchor"
    validator = CertificateValidator(cert, validation_context=context)
    try:
        await validator.async_validate_usage({"digital_signature"}, {SEAL_EKU_OID})
    except PathBuildingError as e:
        return "NO_CERTIFICATE_CHAIN_FOUND", Indication.INDETERMINATE, str(e)
    except RevokedError as e:
        return "REVOKED", Indication.TOTAL_FAILED, str(e)
    except (ExpiredError, NotYetValidError) as e:
        return "OUT_OF_BOUNDS_NO_POE", Indication.INDETERMINATE, str(e)
    except DisallowedAlgorithmError as e:
        return "CRYPTO_CONSTRAINTS_FAILURE", Indication.INDETERMINATE, str(e)
    except InvalidCertificateError as e:
        return "CHAIN_CONSTRAINTS_FAILURE", Indication.INDETERMINATE, str(e)
    except PathValidationError as e:
        if "could not be verified" in str(e):  # a look-alike issuer's key: no path after all
            return "NO_CERTIFICATE_CHAIN_FOUND", Indication.INDETERMINATE, str(e)
        # not a CA, no keyCertSign, path length, name constraints, unknown critical extension
        return "CHAIN_CONSTRAINTS_FAILURE", Indication.INDETERMINATE, str(e)
    return None


async def averify_seal(
    text: str,
    trust: TrustConfig,
    seal_certs: Sequence[x509.Certificate],
    at: datetime | None = None,
    *,
    chain_at: datetime | None = None,
) -> SealReport:
    """Verify a seal offline: format, signature by a published seal key (found by kid), that key's
    certificate chaining to ``trust.anchors`` at ``at`` (default now), the issuer claim equal to
    the agency code the certificate binds (``GV:MN-<code>``), then the document's dates.

    ``chain_at``: when the seal's issue date is proven (a trust list listing the key for that day,
    the registry's record), the certificate is judged then instead of at ``at``.
    Malformed input gives a FORMAT_FAILURE report, not an exception.
    """
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        seal = decode_seal(text)
    except SealFormatError as e:
        return _report("FORMAT_FAILURE", Indication.TOTAL_FAILED, at, str(e))
    kid = seal.kid.hex()
    candidates = [c for c in seal_certs if key_id(c.dump()) == seal.kid]
    if not candidates:
        return _report(
            "NO_CERTIFICATE_CHAIN_FOUND",
            Indication.INDETERMINATE,
            at,
            f"no published seal certificate has kid {kid}",
            claims=seal.claims,
            kid=kid,
        )
    cert = next((c for c in candidates if _signature_ok(seal, c)), None)
    if cert is None:
        return _report(
            "SIG_CRYPTO_FAILURE",
            Indication.TOTAL_FAILED,
            at,
            "the ES256 signature does not verify with the seal certificate's key",
            claims=seal.claims,
            kid=kid,
            seal_certificate=candidates[0].subject.human_friendly,
        )
    found = {"claims": seal.claims, "kid": kid, "seal_certificate": cert.subject.human_friendly}
    problem = await _chain_problem(cert, trust, chain_at or at, seal_certs)
    if problem is not None:
        sub, indication, detail = problem
        return _report(sub, indication, at, " ".join(detail.split()), **found)
    bound = agency_code(load_der_x509_certificate(cert.dump()))
    if bound is None:
        detail = "the seal certificate has no organizationIdentifier GV:MN-<agency code>"
        return _report(
            "CHAIN_CONSTRAINTS_FAILURE", Indication.INDETERMINATE, at, detail,
            explanation=NO_AGENCY, **found,
        )  # fmt: skip
    if bound != seal.claims.issuer:
        detail = f"issuer claim {seal.claims.issuer!r}, seal certificate of agency {bound!r}"
        return _report("ISSUER_MISMATCH", Indication.TOTAL_FAILED, at, detail, **found)
    today = at.astimezone(MONGOLIA).date()
    expires = seal.claims.expires
    if expires is not None and today > expires:
        detail = f"the document expired on {expires.isoformat()} (today is {today.isoformat()})"
        return _report("EXPIRED", Indication.INDETERMINATE, at, detail, **found)
    if seal.claims.issued > today:
        detail = f"the issue date {seal.claims.issued.isoformat()} is after {today.isoformat()}"
        return _report("NOT_YET_VALID", Indication.INDETERMINATE, at, detail, **found)
    return _report(None, Indication.TOTAL_PASSED, at, **found)


def verify_seal(
    text: str,
    trust: TrustConfig,
    seal_certs: Sequence[x509.Certificate],
    at: datetime | None = None,
    *,
    chain_at: datetime | None = None,
) -> SealReport:
    """Synchronous ``averify_seal``; inside a running event loop await ``averify_seal`` instead."""
    return asyncio.run(averify_seal(text, trust, seal_certs, at, chain_at=chain_at))


__all__ = [
    "DecodedSeal",
    "SealFormatError",
    "SealReport",
    "averify_seal",
    "canonical_payload",
    "check_input",
    "decode_cose",
    "decode_seal",
    "load_seal_certs",
    "verify_seal",
]
