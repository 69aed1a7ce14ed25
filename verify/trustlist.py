"""Judge QR seals offline from a signed trust list and the state root alone (docs/trust-list.md).

The list is checked before anything in it is used: its COSE_Sign1 structure and CBOR profile, the
signer certificate named by ``x5t`` and carried in ``x5chain``, the signature, the signer's path
to a trust anchor with the trust-list extended key usage, then freshness. A list that fails is
refused with one reason and the seal is INDETERMINATE (never TOTAL-FAILED: a bad list says nothing
about the seal), unless the seal itself is malformed.

Then the seal: its kid must be listed; the key's certificate is judged at the start of the seal's
issue day (Ulaanbaatar) when that day is inside the key's listed sealing period, which is what
lets a seal outlive its certificate; a key revoked from a date fails seals dated from then on;
a document the list names as withdrawn fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cbor2
from asn1crypto import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import load_der_x509_certificate
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    ValidationError,
)

from esign.seal import (
    ALG_ES256,
    COSE_SIGN1_TAG,
    HEADER_ALG,
    KID_BYTES,
    MAX_DAYS,
    SIGNATURE_BYTES,
    SealFormatError,
    from_days,
    key_id,
    sig_structure,
)
from esign.trustlist import (
    AGENCY_MAX_BYTES,
    ALG_SHA256,
    HEADER_TYP,
    HEADER_X5CHAIN,
    HEADER_X5T,
    MAX_LIST_BYTES,
    MEDIA_TYPE,
    TRUST_LIST_EKU,
    TRUST_LIST_VERSION,
    WITHDRAWN_BYTES,
    KeyField,
    ListKey,
    day_start,
    withdrawn_hash,
)

from .policy import StateCryptoPolicy
from .report import Indication, Text
from .seal import _TEXTS, SealReport, _loads, averify_seal, decode_seal
from .trust import TrustConfig

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a list's issue time may lie (a verifier's clock may be a little slow)."""

REFUSED = Text(
    "Итгэмжлэлийн жагсаалтыг хүлээн авах боломжгүй тул QR тамгыг шалгаж чадсангүй.",
    "The trust list cannot be accepted, so the QR seal could not be checked.",
)
STALE = Text(
    "Итгэмжлэлийн жагсаалт хуучирсан байна: шинэчилсэн жагсаалт татаж аваад дахин шалгана уу.",
    "The trust list is out of date: fetch a current one and check again.",
)
NOT_LISTED = Text(
    "QR тамгын түлхүүр итгэмжлэлийн жагсаалтад алга.",
    "The seal's key is not in the trust list.",
)
KEY_REVOKED = Text(
    "Тамга үүсгэсэн түлхүүрийг хүчингүй болгосон өдрөөс хойш энэ тамга огноологдсон тул хүчингүй.",
    "The seal is dated on or after the day its key was revoked: it is not valid.",
)
OUT_OF_PERIOD = Text(
    "Тамгын огноо нь түлхүүрийг тамга үүсгэхэд ашиглах хугацаанд хамаарахгүй байна.",
    "The seal's date is outside the period in which its key was used for sealing.",
)
WITHDRAWN = Text(
    "Энэ баримтыг олгосон байгууллага хүчингүй болгосон эсвэл шинэ баримтаар сольсон.",
    "The issuer has revoked or replaced this document.",
)
ISSUER_MISMATCH = _TEXTS["ISSUER_MISMATCH"]
"""The text verify.seal gives when the certificate's agency differs from claim 2."""


class TrustListRefused(Exception):
    """The trust list cannot be used. ``reason`` is one line; ``stale`` tells a list that was
    genuine but is past its next update from one that is broken or forged."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


@dataclass(frozen=True)
class ListedKey:
    """One seal key as the list gives it."""

    kid: bytes
    agency: str
    certificate: x509.Certificate
    seal_from: date
    seal_until: date
    revoked_from: date | None


@dataclass(frozen=True)
class TrustList:
    """A trust list whose signature, signer and freshness were checked."""

    issued: datetime
    next_update: datetime
    keys: Mapping[bytes, ListedKey]
    intermediates: tuple[x509.Certificate, ...]
    withdrawn: Mapping[str, frozenset[bytes]]
    signer: str

    def is_withdrawn(self, issuer: str, number: str) -> bool:
        from esign.issue import document_id

        hashes_ = self.withdrawn.get(issuer, frozenset())
        return withdrawn_hash(document_id(issuer, number)) in hashes_


def _refuse(reason: str) -> TrustListRefused:
    return TrustListRefused(f"trust list refused: {reason}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cbor(data: bytes, what: str, *, deterministic: bool, tagged: bool = False) -> Any:
    """Decode under the seal's strict CBOR profile (verify.seal), with the list's wording."""
    try:
        return _loads(data, what, deterministic=deterministic, tagged=tagged)
    except SealFormatError as e:
        raise _refuse(e.message.removeprefix("malformed QR seal: ")) from e


def _cert(der: object, what: str) -> x509.Certificate:
    if not isinstance(der, bytes):
        raise _refuse(f"{what} is not a byte string")
    try:
        cert = x509.Certificate.load(der)
        cert.native  # noqa: B018 - parse it all now, not half-way through validation
        load_der_x509_certificate(der)
    except Exception as e:  # asn1crypto and cryptography raise assorted types on hostile DER
        raise _refuse(f"{what} is not a DER certificate") from e
    return cert


def _day(value: object, what: str) -> date:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAYS:
        raise _refuse(f"{what} is not a day count")
    return from_days(value)


def _time(value: object, what: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**40:
        raise _refuse(f"{what} is not a time in seconds")
    return datetime.fromtimestamp(value, UTC)


def _key(entry: object) -> ListedKey:
    if not isinstance(entry, Mapping) or set(entry) - {int(k) for k in KeyField}:
        raise _refuse("a seal key entry is not a map of the known fields")
    required = {int(k) for k in KeyField} - {int(KeyField.REVOKED_FROM)}
    if not required <= set(entry):
        raise _refuse("a seal key entry lacks a required field")
    kid, agency = entry[KeyField.KID], entry[KeyField.AGENCY]
    if not isinstance(kid, bytes) or len(kid) != KID_BYTES:
        raise _refuse(f"a seal key's kid is not {KID_BYTES} bytes")
    cert = _cert(entry[KeyField.CERTIFICATE], f"seal certificate {kid.hex()}")
    if key_id(cert.dump()) != kid:
        raise _refuse(f"kid {kid.hex()} is not the key id of the certificate listed with it")
    if not isinstance(agency, str) or not 0 < len(agency.encode("utf-8")) <= AGENCY_MAX_BYTES:
        raise _refuse(
            f"seal key {kid.hex()}: agency code is not 1-{AGENCY_MAX_BYTES} bytes of text"
        )
    revoked = entry.get(int(KeyField.REVOKED_FROM))
    listed = ListedKey(
        kid=kid,
        agency=agency,
        certificate=cert,
        seal_from=_day(entry[KeyField.SEAL_FROM], f"seal key {kid.hex()} seal_from"),
        seal_until=_day(entry[KeyField.SEAL_UNTIL], f"seal key {kid.hex()} seal_until"),
        revoked_from=None
        if revoked is None
        else _day(revoked, f"seal key {kid.hex()} revoked_from"),
    )
    if listed.seal_until < listed.seal_from:
        raise _refuse(f"seal key {kid.hex()}: sealing period ends before it starts")
    return listed


def _withdrawn(value: object) -> dict[str, frozenset[bytes]]:
    if not isinstance(value, Mapping):
        raise _refuse("withdrawn documents are not a map")
    out: dict[str, frozenset[bytes]] = {}
    for agency, items in value.items():
        if not isinstance(agency, str) or not isinstance(items, list | tuple):
            raise _refuse("withdrawn documents must map agency codes to arrays")
        if not all(isinstance(h, bytes) and len(h) == WITHDRAWN_BYTES for h in items):
            raise _refuse(f"a withdrawn document hash is not {WITHDRAWN_BYTES} bytes")
        out[agency] = frozenset(items)
    return out


@dataclass(frozen=True)
class _Parsed:
    protected: bytes
    payload: bytes
    signature: bytes
    chain: tuple[x509.Certificate, ...]
    body: Mapping[Any, Any]


def _parse(data: bytes) -> _Parsed:
    """The structure, CBOR profile and headers (docs/trust-list.md sections 2-3); no crypto yet."""
    if not isinstance(data, bytes) or not data:
        raise _refuse("the file is empty")
    if len(data) > MAX_LIST_BYTES:
        raise _refuse(f"the file is {len(data)} bytes, more than {MAX_LIST_BYTES}")
    value = _cbor(data, "COSE_Sign1", deterministic=False, tagged=True)
    if not isinstance(value, cbor2.CBORTag) or value.tag != COSE_SIGN1_TAG:
        raise _refuse("not a tagged COSE_Sign1 (CBOR tag 18)")
    body = value.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise _refuse("COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload, signature = body
    if not isinstance(protected, bytes) or not isinstance(payload, bytes):
        raise _refuse("the protected header and payload must be byte strings")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise _refuse(f"the ES256 signature must be {SIGNATURE_BYTES} bytes (r || s)")
    header = _cbor(protected, "protected header", deterministic=True)
    if not isinstance(header, Mapping) or set(header) != {HEADER_ALG, HEADER_TYP, HEADER_X5T}:
        raise _refuse("the protected header must hold exactly alg (1), typ (16) and x5t (34)")
    if header[HEADER_ALG] != ALG_ES256 or not _is_int(header[HEADER_ALG]):
        raise _refuse("the signature algorithm is not ES256 (-7)")
    if header[HEADER_TYP] != MEDIA_TYPE:
        raise _refuse(f"typ is not {MEDIA_TYPE!r}: this is not a trust list")
    x5t = header[HEADER_X5T]
    if (
        not isinstance(x5t, list | tuple)
        or len(x5t) != 2
        or x5t[0] != ALG_SHA256
        or not isinstance(x5t[1], bytes)
        or len(x5t[1]) != 32
    ):
        raise _refuse("x5t must be [-16, SHA-256 of the signer certificate]")
    if not isinstance(unprotected, Mapping) or set(unprotected) != {HEADER_X5CHAIN}:
        raise _refuse("the unprotected header must hold exactly x5chain (33)")
    x5chain = unprotected[HEADER_X5CHAIN]
    ders = [x5chain] if isinstance(x5chain, bytes) else x5chain
    if not isinstance(ders, list | tuple) or not ders:
        raise _refuse("x5chain must be a certificate or a non-empty array of them")
    if not isinstance(ders[0], bytes) or hashlib.sha256(ders[0]).digest() != x5t[1]:
        raise _refuse("the first x5chain certificate is not the signer that x5t names")
    chain = tuple(_cert(d, "an x5chain entry") for d in ders)
    content = _cbor(payload, "payload", deterministic=True)
    if not isinstance(content, Mapping):
        raise _refuse("the payload is not a CBOR map")
    return _Parsed(protected, payload, signature, chain, content)


def _signature_ok(parsed: _Parsed) -> bool:
    try:
        public = load_der_x509_certificate(parsed.chain[0].dump()).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        return False
    r = int.from_bytes(parsed.signature[:32], "big")
    s = int.from_bytes(parsed.signature[32:], "big")
    signed = sig_structure(parsed.protected, parsed.payload)
    try:
        public.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


async def _check_signer(parsed: _Parsed, anchors: Sequence[x509.Certificate], at: datetime) -> None:
    signer = parsed.chain[0]
    if signer.self_signed != "no":
        raise _refuse("the signer certificate is self-signed")
    context = ValidationContext(
        trust_roots=list(anchors),
        other_certs=list(parsed.chain[1:]),
        moment=at,
        allow_fetching=False,
        revocation_mode="soft-fail",
        algorithm_usage_policy=StateCryptoPolicy(),
    )
    validator = CertificateValidator(signer, validation_context=context)
    try:
        await validator.async_validate_usage({"digital_signature"}, {TRUST_LIST_EKU})
    except PathBuildingError as e:
        raise _refuse("the signer certificate does not chain to a trust anchor") from e
    except InvalidCertificateError as e:  # key usage or extended key usage
        raise _refuse(f"the signer certificate may not sign trust lists: {_line(e)}") from e
    except ValidationError as e:  # expired, not yet valid, revoked, weak algorithm, constraints
        raise _refuse(f"the signer certificate is not valid: {_line(e)}") from e
    except (ValueError, TypeError, AttributeError, KeyError) as e:  # hostile certificate content
        raise _refuse(f"the signer certificate cannot be validated: {_line(e)}") from e


def _line(error: Exception) -> str:
    return " ".join(str(error).split())


def _content(parsed: _Parsed) -> TrustList:
    body = parsed.body
    if set(body) != {int(k) for k in ListKey}:
        raise _refuse("the payload must hold exactly the keys 1-6")
    if body[ListKey.VERSION] != TRUST_LIST_VERSION or not _is_int(body[ListKey.VERSION]):
        raise _refuse(f"unsupported trust list version {body[ListKey.VERSION]!r}")
    entries = body[ListKey.SEAL_KEYS]
    if not isinstance(entries, list | tuple):
        raise _refuse("seal keys are not an array")
    keys: dict[bytes, ListedKey] = {}
    for entry in entries:
        listed = _key(entry)
        if listed.kid in keys:
            raise _refuse(f"kid {listed.kid.hex()} is listed twice")
        keys[listed.kid] = listed
    intermediates = body[ListKey.INTERMEDIATES]
    if not isinstance(intermediates, list | tuple):
        raise _refuse("intermediates are not an array")
    issued = _time(body[ListKey.ISSUED], "the issue time")
    next_update = _time(body[ListKey.NEXT_UPDATE], "the next update")
    if next_update <= issued:
        raise _refuse("the next update is not after the issue time")
    return TrustList(
        issued=issued,
        next_update=next_update,
        keys=keys,
        intermediates=tuple(_cert(d, "an intermediate") for d in intermediates),
        withdrawn=_withdrawn(body[ListKey.WITHDRAWN]),
        signer=parsed.chain[0].subject.human_friendly,
    )


async def acheck_trust_list(
    data: bytes, anchors: Sequence[x509.Certificate], at: datetime | None = None
) -> TrustList:
    """The list in ``data`` if it is well-formed, signed by a trust-list certificate that chains
    to ``anchors`` at ``at`` (default now) and fresh at ``at``; else ``TrustListRefused``."""
    at = at or datetime.now(UTC)
    parsed = _parse(data)
    if not _signature_ok(parsed):
        raise _refuse("its signature does not verify (altered or forged)")
    await _check_signer(parsed, anchors, at)
    content = _content(parsed)
    if content.issued > at + CLOCK_SKEW:
        raise _refuse(
            f"it was issued {content.issued:%Y-%m-%dT%H:%M:%SZ}, after {at:%Y-%m-%dT%H:%M:%SZ}"
        )
    if at >= content.next_update:
        raise TrustListRefused(
            f"trust list refused: out of date since {content.next_update:%Y-%m-%dT%H:%M:%SZ} "
            "(its next update); fetch a current one",
            stale=True,
        )
    return content


def check_trust_list(
    data: bytes, anchors: Sequence[x509.Certificate], at: datetime | None = None
) -> TrustList:
    """Synchronous ``acheck_trust_list``."""
    return asyncio.run(acheck_trust_list(data, anchors, at))


def _with(report: SealReport, ind: Indication, sub: str, text: Text, detail: str) -> SealReport:
    return dataclasses.replace(
        report, indication=ind, subindication=sub, explanation=text, details=(detail,)
    )


_GENUINE = {None, "EXPIRED", "NOT_YET_VALID"}
"""Sub-indications of a seal whose signature and certificate were accepted."""


async def averify_seal_with_list(
    text: str,
    anchors: Sequence[x509.Certificate],
    trust_list: bytes | TrustList,
    at: datetime | None = None,
) -> SealReport:
    """Verify a seal offline from a trust list (bytes, checked here, or already checked) and the
    anchors alone. Never raises for bad input: malformed seals and refused lists are reports."""
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        seal = decode_seal(text)
    except SealFormatError:
        return await averify_seal(text, TrustConfig(anchors=tuple(anchors)), (), at)
    kid = seal.kid.hex()
    base = SealReport(
        indication=Indication.INDETERMINATE,
        subindication="NO_CERTIFICATE_CHAIN_FOUND",
        explanation=REFUSED,
        claims=seal.claims,
        kid=kid,
        validation_time=at,
    )
    try:
        listed = (
            trust_list
            if isinstance(trust_list, TrustList)
            else await acheck_trust_list(trust_list, anchors, at)
        )
    except TrustListRefused as e:
        if e.stale:
            return _with(base, Indication.INDETERMINATE, "TRY_LATER", STALE, e.reason)
        return _with(
            base, Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", REFUSED, e.reason
        )
    key = listed.keys.get(seal.kid)
    if key is None:
        detail = f"kid {kid} is not in the trust list of {listed.issued:%Y-%m-%dT%H:%M:%SZ}"
        return _with(
            base, Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", NOT_LISTED, detail
        )
    issued = seal.claims.issued
    in_period = key.seal_from <= issued <= key.seal_until
    trust = TrustConfig(anchors=tuple(anchors), intermediates=listed.intermediates)
    chain_at = day_start(issued) if in_period else None
    report = await averify_seal(text, trust, (key.certificate,), at, chain_at=chain_at)
    if report.subindication in ("FORMAT_FAILURE", "SIG_CRYPTO_FAILURE"):
        return report
    if key.revoked_from is not None and issued >= key.revoked_from:
        detail = f"key {kid} revoked from {key.revoked_from}; the seal is dated {issued}"
        return _with(report, Indication.TOTAL_FAILED, "REVOKED", KEY_REVOKED, detail)
    if key.agency != seal.claims.issuer:
        detail = (
            f"issuer claim {seal.claims.issuer!r}, trust list gives key {kid} to {key.agency!r}"
        )
        return _with(report, Indication.TOTAL_FAILED, "ISSUER_MISMATCH", ISSUER_MISMATCH, detail)
    if not in_period:
        detail = (
            f"key {kid} sealed from {key.seal_from} to {key.seal_until}; the seal is dated {issued}"
        )
        return _with(
            report, Indication.INDETERMINATE, "OUT_OF_BOUNDS_NO_POE", OUT_OF_PERIOD, detail
        )
    if report.subindication not in _GENUINE:
        return report
    if listed.is_withdrawn(seal.claims.issuer, seal.claims.number):
        detail = f"withdrawn in the trust list of {listed.issued:%Y-%m-%dT%H:%M:%SZ}"
        return _with(report, Indication.TOTAL_FAILED, "REVOKED", WITHDRAWN, detail)
    return report


def verify_seal_with_list(
    text: str,
    anchors: Sequence[x509.Certificate],
    trust_list: bytes | TrustList,
    at: datetime | None = None,
) -> SealReport:
    """Synchronous ``averify_seal_with_list``."""
    return asyncio.run(averify_seal_with_list(text, anchors, trust_list, at))


__all__ = [
    "ListedKey",
    "TrustList",
    "TrustListRefused",
    "acheck_trust_list",
    "averify_seal_with_list",
    "check_trust_list",
    "verify_seal_with_list",
]
