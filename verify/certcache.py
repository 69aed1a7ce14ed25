"""Per-run memos of the AdES work that depends only on certificate bytes, so a batch of one
agency's documents does it once, not once per document (issue 13).

Every document of such a batch carries byte-identical certificates: the seal certificate and
its chain in the signature's CMS, the TSA's certificate in its timestamp token. pyHanko's
``extract_certificate_info`` hands out fresh copies of them on every call (``untag()`` copies),
and its AdES process then parses each copy's fields again: signer identification, the ESS
signing-certificate check, path building (issuer names, key identifiers), key usage, the
validation-object identifiers. Profiled on a B-LT batch (pyinstrument), that was the bulk of
the AdES time left after path validation was cached (verify/pathcache.py).

:class:`CertCache`, owned by a verifier, keeps, by content and never by name:

- the outcome of ``extract_certificate_info``, keyed by the SHA-256 of the CMS ``certificates``
  field's encoding and of the signer identifier: a hit returns the objects the first call built
  from the same bytes, which is what pyHanko would build again;
- that the ESS signing-certificate check passed, keyed by the certificate's SHA-256 and the
  encodings of the signing-certificate attributes (all the check reads).

Failures are never kept: a CMS without its signer certificate, or whose signing-certificate
attribute does not match, gets pyHanko's own error each time. A certificate differing in one
byte changes the key, so it gets its own objects and its own verdict. The document's own
signature, message digest, signed attributes and timestamp imprint are checked per document.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

# the submodule itself: `from pyhanko.sign import general` would run pyhanko.sign's __init__ (every
# signer, aiohttp), which esign/lazyimports.py defers for the one-file CLI and the batch workers
import pyhanko.sign.general as general
from asn1crypto import cms, core, crl, x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SignedDataCerts
from pyhanko.sign.validation import ades, dss, generic_cms
from pyhanko.sign.validation.policy_decl import LocalKnowledge
from pyhanko.sign.validation.utils import _DefaultPolicyMixin
from pyhanko_certvalidator.ltv.poe import ValidationObject, ValidationObjectType

from .policy import StateCryptoPolicy

MAX_ENTRIES = 256
"""Distinct (certificates, signer) combinations kept; the least recently used goes."""

MAX_DSS_BYTES = 16 * 2**20
"""DSS content (certificates, OCSP responses, CRLs) whose parsed form is kept, as much as
Verifier._shared keeps of the same objects: a national CA's CRL may be megabytes, and parsed
it is larger still; a batch meets one or two distinct stores."""


class CertCache:
    """The certificate extractions of one verifier's run, keyed by the CMS bytes they read."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[bytes, SignedDataCerts] = OrderedDict()
        self._ess: OrderedDict[bytes, None] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.ess_hits = 0
        self._dss: OrderedDict[bytes, tuple[int, LocalKnowledge]] = OrderedDict()
        self._dss_bytes = 0
        self.dss_hits = 0
        self._algorithms: OrderedDict[bytes, object] = OrderedDict()
        self.algorithm_hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def extract(
        self, signed_data: cms.SignedData, original: Callable[[cms.SignedData], SignedDataCerts]
    ) -> SignedDataCerts:
        key = _key(signed_data)
        found = self._entries.get(key) if key is not None else None
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)  # type: ignore[arg-type]
            return _copy(found)
        result = original(signed_data)  # raises as pyHanko does on a CMS it cannot use
        if key is not None:
            self.misses += 1
            self._entries[key] = result
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return _copy(result)

    def check_signing_certificate(
        self,
        cert: x509.Certificate,
        signed_attrs: cms.CMSAttributes,
        original: Callable[[x509.Certificate, cms.CMSAttributes], None],
    ) -> None:
        """pyHanko's ESS signing-certificate check, skipped when it already passed for the same
        certificate and the same signing-certificate attributes (every attribute of either
        type, as encoded, in order: all the check reads)."""
        key = _ess_key(cert, signed_attrs)
        if key is not None and key in self._ess:
            self.ess_hits += 1
            self._ess.move_to_end(key)
            return
        original(cert, signed_attrs)  # raises pyHanko's own error on a mismatch
        if key is not None:
            self._ess[key] = None
            while len(self._ess) > self._max:
                self._ess.popitem(last=False)

    def dss_knowledge(
        self, reader: PdfFileReader, original: Callable[[PdfFileReader], LocalKnowledge]
    ) -> LocalKnowledge:
        """What ``original`` (pyHanko's reading of the DSS, parsed) gives for ``reader``,
        remembered by the DSS's content: every certificate, OCSP response and CRL stream pyHanko
        reads, in its order, decoded for the same purpose. Profiled on a B-LT batch, parsing the
        same DSS again (each certificate twice, with its issuer and serial) was 15 % of AdES."""
        found = _dss_key(reader)
        if found is None:
            return original(reader)
        key, size = found
        entry = self._dss.get(key)
        if entry is not None:
            self.dss_hits += 1
            self._dss.move_to_end(key)
            return _knowledge_copy(entry[1])
        result = original(reader)
        if size <= MAX_DSS_BYTES:
            self._dss[key] = (size, result)
            self._dss_bytes += size
            while self._dss_bytes > MAX_DSS_BYTES:
                _, (dropped, _) = self._dss.popitem(last=False)
                self._dss_bytes -= dropped
        return _knowledge_copy(result)

    def enforce_algorithm_usage(
        self,
        signer_info: cms.SignerInfo,
        cert: x509.Certificate,
        algorithm_usage_policy: Any,
        time_indic: datetime | None,
        original: Callable[..., None],
    ) -> None:
        """pyHanko's check of the signature and digest algorithms against the crypto policy,
        skipped when it already passed for the same algorithm identifiers (as encoded), the same
        certificate (its public key), time and policy: 10 % of the AdES time of a B-LT batch
        (pyinstrument), rebuilding DigestAlgorithm objects to compare names. Only for esign's
        own StateCryptoPolicy (a pure function of those inputs); a refusal is never kept."""
        key = _algorithm_key(signer_info, cert, algorithm_usage_policy, time_indic)
        if key is not None and key in self._algorithms:
            self.algorithm_hits += 1
            self._algorithms.move_to_end(key)
            return
        original(
            signer_info,
            cert,
            algorithm_usage_policy=algorithm_usage_policy,
            time_indic=time_indic,
        )
        if key is not None:
            self._algorithms[key] = _underlying(algorithm_usage_policy)  # held: its id is keyed
            while len(self._algorithms) > self._max:
                self._algorithms.popitem(last=False)


def _underlying(policy: Any) -> Any:
    return policy._policy if type(policy) is _DefaultPolicyMixin else policy


def _algorithm_key(
    signer_info: cms.SignerInfo, cert: x509.Certificate, policy: Any, moment: datetime | None
) -> bytes | None:
    underlying = _underlying(policy)
    if type(underlying) is not StateCryptoPolicy:
        return None
    try:
        digest = hashlib.sha256(b"%d %d;" % (type(policy) is _DefaultPolicyMixin, id(underlying)))
        digest.update(cert.sha256)
        for part in (signer_info["signature_algorithm"], signer_info["digest_algorithm"]):
            encoded = _raw(part)
            if encoded is None:
                return None
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
        digest.update(repr(moment).encode())
        return digest.digest()
    except _UNREADABLE:
        return None


_DSS_PARTS = (
    ("/Certs", DecodePurpose.CERTIFICATE),
    ("/OCSPs", DecodePurpose.OCSP_RESPONSE),
    ("/CRLs", DecodePurpose.CRL),
)
"""What pyHanko's DocumentSecurityStore.read_dss reads, in its order and for its purposes."""


def _dss_key(reader: PdfFileReader) -> tuple[bytes, int] | None:
    """SHA-256 over the DSS streams pyHanko reads, and their size; None when there is no DSS or
    anything in it is unusual (pyHanko then reads it, and says what is wrong). A decoding limit
    hit here is the one pyHanko's reading would hit at the same stream: it is raised."""
    try:
        store = reader.root["/DSS"]
        digest = hashlib.sha256()
        size = 0
        for name, purpose in _DSS_PARTS:
            refs = list(store[name]) if name in store else []
            digest.update(b"%s %d;" % (name.encode(), len(refs)))
            for ref in refs:
                data = ref.get_object().read_data(purpose)
                digest.update(len(data).to_bytes(8, "big"))
                digest.update(data)
                size += len(data)
        if "/VRI" in store:
            dict(store["/VRI"])
        return digest.digest(), size
    except (PdfDecodeLimitError, MemoryError):
        raise
    except Exception:  # whatever it is, pyHanko's own reading meets it next
        return None


def _knowledge_copy(found: LocalKnowledge) -> LocalKnowledge:
    return LocalKnowledge(
        known_ocsps=list(found.known_ocsps),
        known_crls=list(found.known_crls),
        known_certs=list(found.known_certs),
        known_poes=list(found.known_poes),
        nonrevoked_assertions=list(found.nonrevoked_assertions),
    )


_ESS_ATTRIBUTES = ("signing_certificate", "signing_certificate_v2")


def _ess_key(cert: x509.Certificate, signed_attrs: cms.CMSAttributes) -> bytes | None:
    try:
        ess = [a for a in signed_attrs or () if a["type"].native in _ESS_ATTRIBUTES]
        return _digest(hashlib.sha256(cert.sha256), [_raw(attr) for attr in ess])
    except _UNREADABLE:
        return None  # pyHanko's own check meets it and says what is wrong


def _digest(digest: Any, encodings: list[bytes | None]) -> bytes | None:
    """``digest`` over the encodings, each prefixed by its length (so no two lists of
    encodings give the same input); None if any encoding is None (not kept as read)."""
    for encoded in encodings:
        if encoded is None:
            return None
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return bytes(digest.digest())


def _raw(value: Any) -> bytes | None:
    """A parsed value's encoding as read, without dump() (which re-encodes, in place, a value
    read with an indefinite length)."""
    header = value._header
    if not header or header[-1:] == b"\x80":
        return None
    return bytes(header) + bytes(value.contents) + bytes(value._trailer or b"")


def _copy(found: SignedDataCerts) -> SignedDataCerts:
    """The same certificate objects in new lists: a caller may extend what it was given."""
    return SignedDataCerts(
        signer_cert=found.signer_cert,
        other_certs=list(found.other_certs),
        attribute_certs=list(found.attribute_certs),
    )


def _key(signed_data: cms.SignedData) -> bytes | None:
    """SHA-256 over the encodings of the certificates and the one signer identifier, or None
    when they are not plain definite-length encodings as read (then nothing is remembered),
    or do not parse (then pyHanko's extraction meets them and says what is wrong)."""
    try:
        certs = signed_data["certificates"]
        infos = signed_data["signer_infos"]
        if not isinstance(certs, cms.CertificateSet) or len(infos) != 1:
            return None
        return _digest(hashlib.sha256(), [_as_read(certs), _as_read(infos[0]["sid"])])
    except _UNREADABLE:
        return None


def _as_read(value: Any) -> bytes | None:
    return _raw(value.chosen if isinstance(value, core.Choice) else value)


_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)
"""What asn1crypto raises on bytes it cannot parse."""


_CURRENT: contextvars.ContextVar[CertCache | None] = contextvars.ContextVar(
    "esign_cert_cache", default=None
)


@contextlib.contextmanager
def using(cache: CertCache | None) -> Iterator[None]:
    """Certificate extractions done meanwhile (in this context) may be served from ``cache``."""
    token = _CURRENT.set(cache)
    try:
        yield
    finally:
        _CURRENT.reset(token)


_Extract = Callable[[cms.SignedData], SignedDataCerts]


def _memoised(original: _Extract) -> _Extract:
    def extract_certificate_info(signed_data: cms.SignedData) -> SignedDataCerts:
        cache = _CURRENT.get()
        if cache is None:
            return original(signed_data)
        return cache.extract(signed_data, original)

    extract_certificate_info.__wrapped__ = original  # type: ignore[attr-defined]
    return extract_certificate_info


_Check = Callable[[x509.Certificate, cms.CMSAttributes], None]


def _memoised_check(original: _Check) -> _Check:
    def _check_signing_certificate(cert: x509.Certificate, signed_attrs: cms.CMSAttributes) -> None:
        cache = _CURRENT.get()
        if cache is None:
            return original(cert, signed_attrs)
        return cache.check_signing_certificate(cert, signed_attrs, original)

    _check_signing_certificate.__wrapped__ = original  # type: ignore[attr-defined]
    return _check_signing_certificate


_Enforce = Callable[..., None]


def _memoised_enforce(original: _Enforce) -> _Enforce:
    def _enforce_algorithm_usage(
        signer_info: cms.SignerInfo,
        cert: x509.Certificate,
        algorithm_usage_policy: Any,
        time_indic: datetime | None = None,
    ) -> None:
        cache = _CURRENT.get()
        if cache is None:
            return original(
                signer_info,
                cert,
                algorithm_usage_policy=algorithm_usage_policy,
                time_indic=time_indic,
            )
        return cache.enforce_algorithm_usage(
            signer_info, cert, algorithm_usage_policy, time_indic, original
        )

    _enforce_algorithm_usage.__wrapped__ = original  # type: ignore[attr-defined]
    return _enforce_algorithm_usage


def _validation_object_identifier(vo: ValidationObject) -> str | None:
    """pyHanko's identifier of a certificate or CRL, from the SHA-256 of its DER that asn1crypto
    keeps on the object, instead of re-encoding it per call (a shared certificate's parsed tree
    is walked on every dump()): 15 % of the AdES time of a B-LT batch (pyinstrument)."""
    value = vo.value
    kind = vo.object_type
    if kind is ValidationObjectType.CERTIFICATE and type(value) is x509.Certificate:
        return f"vo-{kind.value}-{value.sha256.hex()}"
    if kind is ValidationObjectType.CRL and type(value.crl_data) is crl.CertificateList:
        return f"vo-{kind.value}-{value.crl_data.sha256.hex()}"
    return _original_identifier(vo)


_original_identifier = ades.derive_validation_object_identifier

_MODULES = (general, generic_cms, ades, dss)
"""Where pyHanko calls ``extract_certificate_info`` by its imported name."""


def install() -> None:
    """Route pyHanko's ``extract_certificate_info``, ESS signing-certificate check and
    algorithm-policy check through the memos (a no-op outside :func:`using`), and its
    validation-object identifiers through the SHA-256 asn1crypto keeps. Idempotent."""
    current = general.extract_certificate_info
    if getattr(current, "__wrapped__", None) is not None:
        return
    memo = _memoised(current)
    for module in _MODULES:
        if getattr(module, "extract_certificate_info", None) is current:
            setattr(module, "extract_certificate_info", memo)  # noqa: B010
    check = generic_cms._check_signing_certificate
    enforce = generic_cms._enforce_algorithm_usage
    setattr(generic_cms, "_enforce_algorithm_usage", _memoised_enforce(enforce))  # noqa: B010
    setattr(generic_cms, "_check_signing_certificate", _memoised_check(check))  # noqa: B010
    setattr(ades, "derive_validation_object_identifier", _validation_object_identifier)  # noqa: B010
