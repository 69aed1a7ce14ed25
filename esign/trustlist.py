"""The seal trust list: what an offline verifier needs to judge QR seals, signed in one file.

A bank or a border post cannot ask the registry. It holds the state root and, synced whenever the
network allows, this list: every agency seal key (by kid) with its agency and the days it may seal,
the intermediate CA certificates, the documents withdrawn (revoked or superseded) by a hashed id,
the list's issue time and next update. Format (``docs/trust-list.md``): a COSE_Sign1 with ES256
over deterministic CBOR, like the seal, with the signer's certificate chain in ``x5chain``
(RFC 9360). This module builds and signs it; ``verify.trustlist`` checks it.
"""

from __future__ import annotations

import enum
import hashlib
import os
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from .certfiles import load_cert_paths
from .errors import InputError, KeySourceError, UsageError
from .seal import (
    ALG_ES256,
    COSE_SIGN1_TAG,
    HEADER_ALG,
    RawSign,
    agency_code,
    days,
    key_id,
    raw_signer,
    sig_structure,
)

if TYPE_CHECKING:
    from .keysource import LoadedKey
    from .registry import Registry

TRUST_LIST_VERSION = 1
MEDIA_TYPE = "application/esign-trust-list+cbor"
"""The ``typ`` header (RFC 9596): a seal or any other COSE object cannot pass for a trust list."""
HEADER_TYP = 16
HEADER_X5CHAIN = 33
HEADER_X5T = 34
ALG_SHA256 = -16
TRUST_LIST_EKU = "2.25.322411119705745722155537351085089429989"
"""Extended key usage a trust-list signing certificate must carry. An OID under the UUID arc
2.25 (ITU-T X.667: anyone may derive one from a fresh UUID without registering it), here from
f28e1f7b-e90a-473b-8f39-1f216c3919e5. A dedicated purpose keeps seal keys and document-signing
certificates (id-kp-documentSigning, RFC 9336, is for human-readable documents) from signing
lists."""
WITHDRAWN_DOMAIN = b"esign-trust-list-v1 withdrawn document\x00"
WITHDRAWN_BYTES = 16
AGENCY_MAX_BYTES = 32
MONGOLIA = timezone(timedelta(hours=8), "Asia/Ulaanbaatar")
DEFAULT_VALIDITY = timedelta(hours=48)
MAX_LIST_BYTES = 4 * 1024 * 1024
"""Cap on a trust list; verifiers refuse bigger files before decoding them."""


class ListKey(enum.IntEnum):
    """Integer keys of the trust list payload map (docs/trust-list.md, section 3)."""

    VERSION = 1
    ISSUED = 2
    NEXT_UPDATE = 3
    SEAL_KEYS = 4
    INTERMEDIATES = 5
    WITHDRAWN = 6


class KeyField(enum.IntEnum):
    """Integer keys of one seal key entry."""

    KID = 1
    AGENCY = 2
    CERTIFICATE = 3
    SEAL_FROM = 4
    SEAL_UNTIL = 5
    REVOKED_FROM = 6


def day_start(day: date) -> datetime:
    """00:00 in Ulaanbaatar on ``day``: when a sealing day begins (seal dates are civil dates)."""
    return datetime.combine(day, time(0), MONGOLIA)


def withdrawn_hash(document_id: str) -> bytes:
    """The list's identifier of a withdrawn document: the first 16 bytes of SHA-256 over a domain
    tag and the document id printed under the QR (``XXXXX-XXXXX``). It names no person, and a
    hash of the id cannot be confused with any other esign digest."""
    return hashlib.sha256(WITHDRAWN_DOMAIN + document_id.encode("ascii")).digest()[:WITHDRAWN_BYTES]


def sealing_days(cert: x509.Certificate) -> tuple[date, date]:
    """The first and last whole Ulaanbaatar days inside the certificate's validity (notAfter is
    the last second it is valid)."""
    first = cert.not_valid_before_utc.astimezone(MONGOLIA).date()
    if day_start(first) < cert.not_valid_before_utc:
        first += timedelta(days=1)
    after = cert.not_valid_after_utc + timedelta(seconds=1)
    return first, after.astimezone(MONGOLIA).date() - timedelta(days=1)


@dataclass(frozen=True)
class SealKey:
    """One agency seal key as listed: the agency it seals for and the days it may seal.

    ``seal_from``/``seal_until`` are inclusive civil dates; ``revoked_from`` (compromise) is the
    first date from which seals by this key are refused."""

    certificate: x509.Certificate
    agency: str
    seal_from: date
    seal_until: date
    revoked_from: date | None = None

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def kid(self) -> bytes:
        return key_id(self.der)

    def problems(self) -> list[str]:
        """Why this key cannot be listed (empty if it can)."""
        found: list[str] = []
        who = f"seal key {self.kid.hex()} ({self.agency})"
        size = len(self.agency.encode("utf-8"))
        if not 0 < size <= AGENCY_MAX_BYTES:
            found.append(f"{who}: agency code must be 1-{AGENCY_MAX_BYTES} UTF-8 bytes")
        elif any(unicodedata.category(ch) in ("Cc", "Cf", "Zs") for ch in self.agency):
            found.append(f"{who}: agency code contains spaces, control or format characters")
        public = self.certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            found.append(f"{who}: the certificate's key is not ECDSA P-256")
        try:
            usage = self.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature:
                found.append(f"{who}: key usage does not allow digitalSignature")
        except x509.ExtensionNotFound:
            found.append(f"{who}: the certificate has no key usage extension")
        if self.seal_until < self.seal_from:
            found.append(f"{who}: sealing period ends before it starts")
        first, last = sealing_days(self.certificate)
        if self.seal_from < first or self.seal_until > last:
            found.append(
                f"{who}: sealing period {self.seal_from}..{self.seal_until} is not inside the "
                f"certificate's whole Ulaanbaatar days {first}..{last}"
            )
        return found

    def entry(self) -> dict[int, object]:
        out: dict[int, object] = {
            KeyField.KID: self.kid,
            KeyField.AGENCY: self.agency,
            KeyField.CERTIFICATE: self.der,
            KeyField.SEAL_FROM: days(self.seal_from),
            KeyField.SEAL_UNTIL: days(self.seal_until),
        }
        if self.revoked_from is not None:
            out[KeyField.REVOKED_FROM] = days(self.revoked_from)
        return {int(k): v for k, v in out.items()}


@dataclass(frozen=True)
class TrustListContent:
    """What a trust list says, before it is signed."""

    issued: datetime
    next_update: datetime
    seal_keys: tuple[SealKey, ...]
    intermediates: tuple[bytes, ...] = ()
    """DER of CA certificates between the state root and the seal (and list) certificates."""
    withdrawn: Mapping[str, Iterable[str]] = field(default_factory=dict)
    """Agency code -> ids of its withdrawn documents (hashed when encoded)."""

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.issued.tzinfo is None or self.next_update.tzinfo is None:
            found.append("issue and next-update times need a time zone")
        elif self.next_update <= self.issued:
            found.append("the next update must be after the issue time")
        kids = [k.kid for k in self.seal_keys]
        if len(set(kids)) != len(kids):
            found.append("a seal certificate is listed twice")
        if not self.seal_keys:
            found.append("no seal keys to list")
        for key in self.seal_keys:
            found.extend(key.problems())
        return found

    def payload(self) -> bytes:
        """Deterministic CBOR of the payload map (docs/trust-list.md, section 3)."""
        problems = self.problems()
        if problems:
            raise UsageError(f"cannot build the trust list: {problems[0]}")
        withdrawn = {
            agency: sorted({withdrawn_hash(i) for i in ids})
            for agency, ids in self.withdrawn.items()
        }
        body: dict[int, object] = {
            ListKey.VERSION: TRUST_LIST_VERSION,
            ListKey.ISSUED: int(self.issued.timestamp()),
            ListKey.NEXT_UPDATE: int(self.next_update.timestamp()),
            ListKey.SEAL_KEYS: [k.entry() for k in sorted(self.seal_keys, key=lambda k: k.kid)],
            ListKey.INTERMEDIATES: sorted(set(self.intermediates)),
            ListKey.WITHDRAWN: {a: h for a, h in withdrawn.items() if h},
        }
        return cbor2.dumps({int(k): v for k, v in body.items()}, canonical=True)


def _check_signer(cert: x509.Certificate) -> None:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        raise KeySourceError("the trust-list signing key must be ECDSA P-256 (ES256)")
    try:
        purposes = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        purposes = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])
    if x509.ObjectIdentifier(TRUST_LIST_EKU) not in purposes:
        raise KeySourceError(
            f"the certificate {cert.subject.rfc4514_string()} may not sign trust lists: its "
            f"extended key usage lacks {TRUST_LIST_EKU}"
        )


class TrustListSigner:
    """Signs trust lists with a P-256 key whose certificate carries ``TRUST_LIST_EKU``: a
    pyca/cryptography key (deterministic ECDSA, RFC 6979, where OpenSSL offers it, so test vectors
    regenerate byte for byte) or a ``RawSign`` (a token). ``chain``: the CA certificates between
    the signer and the root, carried in ``x5chain`` after the signer."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | RawSign,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        _check_signer(certificate)
        public = certificate.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if key.public_key().public_numbers() != public.public_numbers():
                raise KeySourceError("the trust-list key does not match its certificate")
            private = key
            algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=_deterministic())
            self._raw_sign: RawSign = lambda data: private.sign(data, algorithm)
        else:
            self._raw_sign = key
        self._public = public
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._x5chain = [der] + [
            d
            for d in (c.public_bytes(serialization.Encoding.DER) for c in chain)
            if d != der and not _self_signed(d)
        ]
        self._protected = cbor2.dumps(
            {
                HEADER_ALG: ALG_ES256,
                HEADER_TYP: MEDIA_TYPE,
                HEADER_X5T: [ALG_SHA256, hashlib.sha256(der).digest()],
            },
            canonical=True,
        )

    @classmethod
    def from_loaded_key(cls, loaded: LoadedKey) -> TrustListSigner:
        """A signer over any key source (file, PKCS#12, PKCS#11 token)."""
        cert = x509.load_der_x509_certificate(loaded.signing_cert.dump())
        chain = [x509.load_der_x509_certificate(c.dump()) for c in loaded.chain]
        return cls(raw_signer(loaded), cert, chain)

    def sign(self, content: TrustListContent) -> bytes:
        """The tagged COSE_Sign1 of ``content``: the trust list file."""
        payload = content.payload()
        to_sign = sig_structure(self._protected, payload)
        signature_der = self._raw_sign(to_sign)
        try:
            self._public.verify(signature_der, to_sign, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as e:
            raise KeySourceError("the trust-list key does not match its certificate") from e
        r, s = decode_dss_signature(signature_der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        chain = self._x5chain
        x5chain: bytes | list[bytes] = chain[0] if len(chain) == 1 else chain
        unprotected = {HEADER_X5CHAIN: x5chain}
        return cbor2.dumps(
            cbor2.CBORTag(COSE_SIGN1_TAG, [self._protected, unprotected, payload, signature])
        )


def _self_signed(der: bytes) -> bool:
    cert = x509.load_der_x509_certificate(der)
    return cert.issuer == cert.subject


def _deterministic() -> bool:
    from cryptography.hazmat.backends.openssl import backend

    return bool(backend.ecdsa_deterministic_supported())


# --- the seal key register: which keys, for which agency, for which days -------------------------


def _date(value: object, what: str, source: Path) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InputError(f"{source}: {what} must be a date (YYYY-MM-DD), not {value!r}")
    return value


def load_seal_register(path: Path) -> tuple[tuple[SealKey, ...], tuple[bytes, ...]]:
    """Seal keys and intermediates from a register file (TOML, docs/trust-list.md section 5).

    Paths are relative to the file. A key's agency defaults to, and must be, the one its
    certificate binds (qr-seal.md section 4); its sealing period defaults to the whole Ulaanbaatar
    days of the certificate's validity."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read seal key register {path}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid TOML: {e}") from e
    unknown = set(data) - {"intermediates", "key"}
    if unknown:
        raise InputError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    base = path.parent
    intermediates = tuple(
        c.dump() for c in load_cert_paths([base / p for p in data.get("intermediates", [])])
    )
    keys: list[SealKey] = []
    allowed = {"agency", "certificate", "seal_from", "seal_until", "revoked_from"}
    for n, item in enumerate(data.get("key", []), 1):
        if not isinstance(item, dict):
            raise InputError(f"{path}: [[key]] number {n} is not a table")
        extra = set(item) - allowed
        if extra:
            raise InputError(f"{path}: [[key]] number {n} has unknown key {sorted(extra)[0]!r}")
        if not isinstance(item.get("certificate"), str):
            raise InputError(f"{path}: [[key]] number {n} needs a certificate")
        certs = load_cert_paths([base / item["certificate"]])
        if len(certs) != 1:
            raise InputError(f"{path}: {item['certificate']} must hold exactly one certificate")
        cert = x509.load_der_x509_certificate(certs[0].dump())
        bound = agency_code(cert)
        agency = item.get("agency", bound)
        if bound is None or agency != bound:
            raise InputError(
                f"{path}: [[key]] number {n}: {item['certificate']} binds agency {bound!r} "
                f"(organizationIdentifier GV:MN-<code>), not {agency!r}: its seals would fail"
            )
        first, last = sealing_days(cert)
        revoked = item.get("revoked_from")
        keys.append(
            SealKey(
                certificate=cert,
                agency=bound,
                seal_from=_date(item.get("seal_from", first), "seal_from", path),
                seal_until=_date(item.get("seal_until", last), "seal_until", path),
                revoked_from=None if revoked is None else _date(revoked, "revoked_from", path),
            )
        )
    return tuple(keys), intermediates


def test_pki_register() -> tuple[tuple[SealKey, ...], tuple[bytes, ...]]:
    """The built test PKI's agency seals (agency from each certificate's ``GV:MN-<code>``, the
    whole validity as sealing period) and its ECDSA intermediates: the default register."""
    from . import testpki

    pki = testpki.build()
    keys: list[SealKey] = []
    for cert_asn1 in load_cert_paths([pki.seals_dir]):
        cert = x509.load_der_x509_certificate(cert_asn1.dump())
        agency = agency_code(cert)
        if agency is None:
            raise InputError(
                f"the test PKI in {pki.root} has a seal without organizationIdentifier GV:MN-…; "
                f"rebuild it: esign pki build --dir {pki.root} --url {pki.url} --force"
            )
        first, last = sealing_days(cert)
        keys.append(SealKey(certificate=cert, agency=agency, seal_from=first, seal_until=last))
    intermediates = load_cert_paths(sorted(pki.intermediates_dir.glob("mn-ec-*.pem")))
    return tuple(keys), tuple(c.dump() for c in intermediates)


def test_pki_signer() -> tuple[str, Path, tuple[Path, ...]]:
    """Key, certificate and chain files of the test PKI's trust-list signer."""
    from . import testpki

    pki = testpki.build()
    key = pki.key("mn-ec", "trust-list")
    if not key.is_file():
        raise InputError(
            f"the test PKI in {pki.root} has no trust-list signer (built before it was added); "
            f"rebuild it: esign pki build --dir {pki.root} --url {pki.url} --force"
        )
    return str(key), pki.cert("mn-ec", "trust-list"), (pki.chain("mn-ec", "trust-list"),)


def write_file(path: Path, data: bytes) -> None:
    """Write beside the target and rename: a verifier or the server never reads half a list,
    and a failed build leaves no file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e


def withdrawn_documents(registry: Registry, today: date | None = None) -> dict[str, list[str]]:
    """Agency code -> ids of its revoked or superseded documents, from the registry. Documents
    that expired before ``today`` (Ulaanbaatar date) are left out: no verifier accepts them any
    more, and the list stays bounded by what is still in force."""
    out: dict[str, list[str]] = {}
    for doc in registry.withdrawn():
        if today is not None and doc.expires_on is not None and doc.expires_on < today:
            continue
        out.setdefault(doc.issuer, []).append(doc.id)
    return out


def build_content(
    seal_keys: Sequence[SealKey],
    intermediates: Sequence[bytes],
    withdrawn: Mapping[str, Iterable[str]],
    *,
    issued: datetime | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
) -> TrustListContent:
    issued = (issued or datetime.now(UTC)).replace(microsecond=0)
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=UTC)
    return TrustListContent(
        issued=issued,
        next_update=issued + validity,
        seal_keys=tuple(seal_keys),
        intermediates=tuple(intermediates),
        withdrawn=withdrawn,
    )


__all__ = [
    "MEDIA_TYPE",
    "TRUST_LIST_EKU",
    "KeyField",
    "ListKey",
    "SealKey",
    "TrustListContent",
    "TrustListSigner",
    "build_content",
    "day_start",
    "load_seal_register",
    "sealing_days",
    "test_pki_register",
    "test_pki_signer",
    "withdrawn_documents",
    "withdrawn_hash",
    "write_file",
]
