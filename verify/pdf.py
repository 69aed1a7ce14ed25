"""Verify the signatures of a PDF: pyHanko's ETSI EN 319 102-1 (AdES) validation, then the checks
that process leaves to the caller: byte-range coverage, difference analysis of every change made
after signing, and DocMDP permissions. A verdict is never TOTAL-PASSED unless every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import gc
import hashlib
import logging
import re
import threading
import traceback
import weakref
import zlib
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import algos, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus, AdESSubIndic
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.ades import (
    AdESBasicValidationResult,
    _dss_to_local_knowledge,
    ades_basic_validation,
    ades_lta_validation,
    ades_with_time_validation,
)
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, async_validate_pdf_timestamp
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.sign.validation.utils import CMSAlgorithmUsagePolicy
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathValidationError,
    StaleRevinfoError,
)
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from esign.errors import InputError
from esign.pdfio import check_header, read_input

from . import _fastdiff, certcache, pathcache
from .diffpolicy import ESIGN_DIFF_POLICY
from .explain import explain, reason
from .fetch import BUDGET_EXHAUSTED, DocumentFetch, FetchPolicy, RunFetchCache
from .hybrid import dangling_reads_as_null, unused_numbers_are_fresh
from .limits import (
    LimitExceeded,
    ReadingLimits,
    decode_limit,
    memory_limit,
    open_pdf,
    signature_fields,
    structure_checks,
)
from .policy import StateCryptoPolicy
from .report import DocumentReport, Indication, SignatureReport, Signer, Text, worst
from .trust import TrustConfig

# Errors pyHanko and asn1crypto raise on malformed input; they end in FORMAT_FAILURE, never a pass.
MALFORMED = (
    PdfError,
    SignatureValidationError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    RecursionError,
    ArithmeticError,  # overflow, division by zero, decimal.InvalidOperation from a token like 1.2.3
    zlib.error,  # a corrupt Deflate stream: pyHanko's decoders let it through
)


@dataclass(frozen=True)
class VerifyOptions:
    at: datetime | None = None
    """Validate as of this moment (point-in-time validation) instead of now."""
    online: bool = True
    """Fetch OCSP/CRL for certificates chained to an anchor (allowlisted URLs only)."""
    fetch_policy: FetchPolicy = dataclasses.field(default_factory=FetchPolicy)
    """Per-document fetch budget, response size caps and timeouts."""
    limits: ReadingLimits = dataclasses.field(default_factory=ReadingLimits)
    """Sanity limits on reading the file (revisions, xref entries, signatures, decoded bytes)."""
    password: bytes | None = None
    """The user (or owner) password of an encrypted PDF; the empty user password is always
    tried, as every PDF reader does."""
    run_moment: datetime | None = None
    """Without ``at``: judge every file as of this one "now" (a folder run's start) instead of
    each file's own, so a batch's validations share their time and the path cache can reuse
    them. Still validation "now" (not point-in-time): only the clock reading is shared."""


def _signer(cert: x509.Certificate) -> Signer:
    subject = cert.subject.native
    register = subject.get("serial_number") or subject.get("organization_identifier")
    org = subject.get("organization_name")
    return Signer(
        name=_first(subject.get("common_name")),
        organisation=_first(org),
        register_number=_first(register),
        issuer=cert.issuer.human_friendly,
        certificate_serial=format(cert.serial_number, "x"),
        subject=cert.subject.human_friendly,
    )


def _first(value: object) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value is not None else None


def _indication(sub: AdESSubIndic) -> Indication:
    return {
        AdESStatus.PASSED: Indication.TOTAL_PASSED,
        AdESStatus.FAILED: Indication.TOTAL_FAILED,
        AdESStatus.INDETERMINATE: Indication.INDETERMINATE,
    }[sub.status]


def _verdict(
    ind: Indication,
    field: str,
    kind: str,
    sub: str,
    text: Text | None = None,
    detail: str | None = None,
) -> SignatureReport:
    """A signature's report that carries only a verdict (no signer, times or coverage)."""
    return SignatureReport(
        field_name=field,
        kind=kind,
        indication=ind,
        subindication=sub,
        explanation=text or explain(sub, ind),
        details=(detail,) if detail else (),
    )


def _failed(
    field: str, kind: str, sub: str, text: Text | None = None, detail: str | None = None
) -> SignatureReport:
    return _verdict(Indication.TOTAL_FAILED, field, kind, sub, text, detail)


_PATH_ERRORS: contextvars.ContextVar[list[PathValidationError] | None] = contextvars.ContextVar(
    "esign_path_errors", default=None
)


class _PathErrorLog(logging.Handler):
    """Keeps the path-validation errors pyHanko logs while it validates one signature.

    pyHanko's AdES process maps them to a sub-indication and keeps only a log line: missing
    revocation data would otherwise be CERTIFICATE_CHAIN_GENERAL_FAILURE without saying which
    certificate lacks it, or why.
    """

    def emit(self, record: logging.LogRecord) -> None:
        found = _PATH_ERRORS.get()
        error = record.exc_info[1] if record.exc_info else None
        if found is not None and isinstance(error, PathValidationError) and len(found) < 8:
            found.append(error)


_CMS_LOG = logging.getLogger("pyhanko.sign.validation.generic_cms")
_CMS_LOG.addHandler(_PathErrorLog())
_capturing = {"depth": 0, "level": logging.NOTSET, "propagate": True}
_capturing_lock = threading.Lock()


@contextlib.contextmanager
def _path_errors(found: list[PathValidationError]) -> Iterator[None]:
    """Collect the path-validation errors pyHanko logs meanwhile into ``found``.

    The CLI and the workers silence pyHanko's logging (it prints tracebacks); while collecting,
    the logger is enabled for warnings and, where it was silenced, kept from propagating, so
    nothing is printed that was not printed before.
    """
    with _capturing_lock:
        if _capturing["depth"] == 0:
            _capturing.update(level=_CMS_LOG.level, propagate=_CMS_LOG.propagate)
            if not _CMS_LOG.isEnabledFor(logging.WARNING):
                _CMS_LOG.setLevel(logging.WARNING)
                _CMS_LOG.propagate = False
        _capturing["depth"] += 1
    token = _PATH_ERRORS.set(found)
    try:
        yield
    finally:
        _PATH_ERRORS.reset(token)
        with _capturing_lock:
            _capturing["depth"] -= 1
            if _capturing["depth"] == 0:
                _CMS_LOG.setLevel(_capturing["level"])
                _CMS_LOG.propagate = bool(_capturing["propagate"])


def _revinfo_urls(cert: x509.Certificate) -> list[str]:
    urls = list(cert.ocsp_urls)
    for point in cert.crl_distribution_points:
        url = point.url
        if isinstance(url, str):
            urls.append(url)
    return urls


def _revinfo_why(
    errors: Sequence[PathValidationError],
    known: Sequence[x509.Certificate],
    fetch: DocumentFetch | None,
) -> list[str]:
    """Which certificate lacks revocation data and why, in words, for each error pyHanko saw."""
    why: list[str] = []
    for error in errors:
        if not isinstance(error, InsufficientRevinfoError | StaleRevinfoError):
            continue
        text = " ".join(error.failure_msg.split())
        text = text.removeprefix("The path could not be validated because ")
        cert = next(
            (c for c in known if c.subject.human_friendly and c.subject.human_friendly in text),
            None,
        )
        if isinstance(error, StaleRevinfoError):
            why.append(
                f"{text}: the revocation data found is outside its validity window for the "
                "validation time"
            )
        elif cert is not None and not _revinfo_urls(cert):
            why.append(f"{text}: the certificate names no OCSP responder or CRL distribution point")
        elif fetch is None:
            why.append(f"{text}: none is embedded in the file, and fetching is off (offline)")
        else:
            urls = _revinfo_urls(cert) if cert is not None else []
            tried = [f"{u} {fetch.budget.failures[u]}" for u in urls if u in fetch.budget.failures]
            if tried:
                why.append(f"{text}: none is embedded in the file; fetching " + "; ".join(tried))
            else:
                why.append(f"{text}: none is embedded in the file and none could be fetched")
    return list(dict.fromkeys(why))


_CMS_SUBFILTERS = {
    "/adbe.pkcs7.detached",
    "/ETSI.CAdES.detached",
    "/ETSI.RFC3161",
    "/adbe.pkcs7.sha1",
    "/PBAD.PAdES",
}
"""SubFilters whose /Contents must be a CMS SignedData: unreadable, it is a malformed signature."""


class _Rfc3161Timestamp(EmbeddedPdfSignature):
    """A document timestamp whose dictionary says /Type /Sig or has no /Type.

    The SubFilter /ETSI.RFC3161 says what /Contents is (a timestamp token over the byte range,
    ISO 32000-2 12.8.5); pyHanko goes by /Type and would validate it as a CMS signature.
    """

    @property
    def sig_object_type(self) -> generic.NameObject:
        return generic.NameObject("/DocTimeStamp")


@dataclass(frozen=True)
class _Unreadable:
    """A filled signature field pyHanko cannot build a signature object for: still reported."""

    field: str
    subfilter: str | None
    error: str

    def report(self) -> SignatureReport:
        kind = "document-timestamp" if self.subfilter == "/ETSI.RFC3161" else "signature"
        named = self.subfilter or "none"
        if self.subfilter == "/adbe.x509.rsa_sha1":
            return _indeterminate(
                self.field,
                kind,
                "CRYPTO_CONSTRAINTS_FAILURE",
                detail="SubFilter adbe.x509.rsa_sha1: a bare PKCS#1 signature over a SHA-1 "
                "digest; SHA-1 is below the crypto policy (SHA-256 or better)",
            )
        if self.subfilter is not None and self.subfilter not in _CMS_SUBFILTERS:
            return _indeterminate(
                self.field,
                kind,
                "GENERIC",
                reason("UNSUPPORTED_FORMAT"),
                detail=f"SubFilter {named}: esign does not read this signature format "
                f"({self.error})",
            )
        return _failed(
            self.field,
            kind,
            "FORMAT_FAILURE",
            detail=f"{f'SubFilter {named}' if self.subfilter else 'no SubFilter'}, and the "
            f"signature value (/Contents) is not a readable CMS signature: {self.error}",
        )


def _collect(
    reader: PdfFileReader, fields: Sequence[tuple[str, generic.DictionaryObject]]
) -> tuple[list[EmbeddedPdfSignature], list[_Unreadable]]:
    """A signature object for every filled signature field, each on its own: one unreadable
    CMS does not hide the others, and SubFilters pyHanko skips (adbe.pkcs7.sha1, unknown ones)
    are reported instead of dropped."""
    sigs: list[EmbeddedPdfSignature] = []
    unreadable: list[_Unreadable] = []
    for name, field in fields:
        subfilter: str | None = None
        try:
            with structure_checks():
                value = field.raw_get("/V").get_object()
                if isinstance(value, generic.DictionaryObject):
                    found = value.get("/SubFilter")
                    subfilter = str(found) if isinstance(found, generic.NameObject) else None
                rfc3161 = (
                    subfilter == "/ETSI.RFC3161"
                    and isinstance(value, generic.DictionaryObject)
                    and value.get("/Type") != "/DocTimeStamp"
                )
                cls = _Rfc3161Timestamp if rfc3161 else EmbeddedPdfSignature
                sigs.append(cls(reader, field, name))
        except PdfDecodeLimitError:
            raise
        except MALFORMED as e:
            unreadable.append(_Unreadable(name, subfilter, _words(e)))
    sigs.sort(key=lambda s: s.signed_revision)
    # pyHanko's own list (which its LTA process reads) skips or raises on the same fields
    reader._embedded_signatures = sigs  # type: ignore[assignment]
    return sigs, unreadable


_INTERNAL = (
    AttributeError,
    TypeError,
    KeyError,
    IndexError,
    NotImplementedError,
    RecursionError,
    AssertionError,
)


def _malformed(error: BaseException) -> str:
    """What to say about a signature pyHanko could not process. Its own errors say what is wrong;
    a Python error raised inside pyHanko or asn1crypto ("'NoneType' object has no attribute ...")
    says nothing to a reader, so it is named by where the reading stopped."""
    if not isinstance(error, _INTERNAL) or isinstance(error, PdfError):
        return _words(error)
    frames = traceback.extract_tb(error.__traceback__)
    where = next(
        (f.name for f in reversed(frames) if "pyhanko" in f.filename or "asn1crypto" in f.filename),
        frames[-1].name if frames else "?",
    )
    return f"a part of it has an unexpected structure (the reading stopped in {where})"


def _words(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _indeterminate(
    field: str, kind: str, sub: str, text: Text | None = None, detail: str | None = None
) -> SignatureReport:
    return _verdict(Indication.INDETERMINATE, field, kind, sub, text, detail)


_SIGNERS = 256
"""Distinct signer certificates whose report fields a verifier keeps."""

_YOUNG_OBJECTS = 50_000
"""Objects a document may leave for the cyclic collector before it runs mid-document (Python's
default is 700; a B-LT certificate leaves about 5,000, all of them cycles through its reader)."""


class _Garbage:
    depth = 0
    threshold: tuple[int, ...] = ()
    lock = threading.Lock()


@contextlib.contextmanager
def _document_garbage() -> Iterator[None]:
    """Collect one document's cyclic garbage once, when it is done.

    A document's objects (reader, parsed PDF objects, CMS structures) are cycles that live until
    the document is done. At Python's default thresholds they survive young collections into the
    oldest generation and wait there for a full collection of the whole heap: 3.9 of a 17 ms
    B-LT document went to the collector. With the young generation's threshold raised meanwhile
    (bounded: a document that makes more garbage still has it collected), they are collected with
    the young generations after the document, never promoted (13.7 -> 10.7 ms CPU a document).
    """
    with _Garbage.lock:
        if _Garbage.depth == 0:
            _Garbage.threshold = gc.get_threshold()
            young, *older = _Garbage.threshold
            if 0 < young < _YOUNG_OBJECTS:
                gc.set_threshold(_YOUNG_OBJECTS, *older)
        _Garbage.depth += 1
    try:
        yield
    finally:
        with _Garbage.lock:
            _Garbage.depth -= 1
            if _Garbage.depth == 0:
                gc.set_threshold(*_Garbage.threshold)
        if gc.isenabled():
            gc.collect(1)


class _DocumentLoop:
    """The event loop :meth:`Verifier.verify_bytes` runs documents on in the thread that built the
    verifier (other threads get ``asyncio.run``), kept for the verifier's life.

    ``asyncio.run`` builds and closes a loop (selector, self-pipe, executor shutdown) for every
    document: 0.15 ms against 0.05 ms on a kept loop. As there, each document runs in a fresh
    copy of the caller's context, and whatever it leaves running is cancelled before it returns.
    Documents are also where the cyclic garbage is collected (:func:`_document_garbage`).
    """

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self._runner: asyncio.Runner | None = None

    def run(self, coro: Coroutine[Any, Any, DocumentReport]) -> DocumentReport:
        if self._runner is None:
            self._runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        with _document_garbage():
            try:
                return self._runner.run(coro, context=contextvars.copy_context())
            finally:
                loop = self._runner.get_loop()
                left = asyncio.all_tasks(loop)
                if left:
                    for task in left:
                        task.cancel()
                    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))

    def close(self) -> None:
        """Close the kept loop. A finalizer runs this wherever the collector found the verifier
        (another thread, or inside another event loop), where only the loop's own close is
        allowed: it runs nothing."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if threading.get_ident() == self.thread:
                runner.close()  # as asyncio.run ends: async generators, the executor
                return
        runner.get_loop().close()


class Verifier:
    """Verifies many PDFs against one trust configuration; build once, reuse for a batch."""

    def __init__(self, trust: TrustConfig, options: VerifyOptions | None = None) -> None:
        self.trust = trust
        self.options = options or VerifyOptions()
        self._trust_manager = SimpleTrustManager.build(trust_roots=list(trust.anchors))
        self._crypto = StateCryptoPolicy()
        cert_policy = CertValidationPolicySpec(
            trust_manager=self._trust_manager,
            revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
            algorithm_usage_policy=self._crypto,
        )
        self._spec = PdfSignatureValidationSpec(
            SignatureValidationSpec(
                cert_validation_policy=cert_policy,
                # Offline here; _document_spec() puts each document's own fetcher in, so
                # no path can fall back on pyHanko's default (unrestricted) fetchers.
                revinfo_gathering_policy=RevocationInfoGatheringSpec(
                    online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
                    certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
                    # Offline, an allowlist of nothing: without a backend pyHanko builds (and
                    # closes) an aiohttp one per signature, importing aiohttp (~0.3 s of a
                    # one-file CLI run) for fetchers it never calls.
                    fetcher_backend=DocumentFetch(()),
                ),
                key_usage_settings=KeyUsageConstraints(
                    key_usage={"digital_signature", "non_repudiation"},
                    match_all_key_usages=False,
                ),
                signature_algorithm_policy=CMSAlgorithmUsagePolicy.lift_policy(self._crypto),
                local_knowledge=LocalKnowledge(known_certs=list(trust.intermediates)),
            ),
            # pyHanko's rules plus the changes the standards allow (verify/diffpolicy.py)
            diff_policy=ESIGN_DIFF_POLICY,
        )
        # one agency's path, OCSP responses and CRLs validated once per run (verify/pathcache.py)
        self.path_cache = pathcache.PathCache((self._trust_manager, self._crypto))
        # online: OCSP responses and CRLs fetched once per run while fresh (verify/fetch.py)
        self.fetch_cache = RunFetchCache(self.options.fetch_policy) if self.options.online else None
        # the agency's and the TSA's certificates parsed once per run (verify/certcache.py)
        self.cert_cache = certcache.CertCache()
        # template objects (fonts) read once per run by the diff analysis (verify/_fastdiff.py)
        self.diff_skeletons = _fastdiff.Skeletons()
        self._parsed: dict[tuple[str, bytes], Any] = {}
        self._parsed_bytes = 0
        self._signers: dict[bytes, Signer] = {}
        self._loop = _DocumentLoop()
        weakref.finalize(self, self._loop.close)

    def _signer(self, cert: x509.Certificate) -> Signer:
        """:func:`_signer`, once per distinct certificate (by its encoding) per run: reading its
        names costs 0.3 ms a document, and a batch's documents share one seal certificate."""
        key = cert.contents  # as read: dump() may re-encode a BER certificate in place
        if not isinstance(key, bytes):
            return _signer(cert)
        found = self._signers.get(key)
        if found is None:
            if len(self._signers) >= _SIGNERS:
                self._signers.clear()
            found = self._signers[key] = _signer(cert)
        return found

    def _document_fetch(self) -> DocumentFetch | None:
        """The fetcher shared by every signature and timestamp of one document (one cache, one
        budget), or None offline."""
        if not self.options.online:
            return None
        return DocumentFetch(self.trust.fetch_allow, self.options.fetch_policy, self.fetch_cache)

    def _document_spec(self, fetch: DocumentFetch | None) -> PdfSignatureValidationSpec:
        if fetch is None:
            return self._spec
        base = self._spec.signature_validation_spec
        gathering = dataclasses.replace(
            base.revinfo_gathering_policy,
            online_fetching_rule=RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH,
            fetcher_backend=fetch,
        )
        return dataclasses.replace(
            self._spec,
            signature_validation_spec=dataclasses.replace(base, revinfo_gathering_policy=gathering),
        )

    def _timing(self) -> ValidationTimingInfo:
        at = self.options.at
        if at is None and self.options.run_moment is not None:
            now = self.options.run_moment
            return ValidationTimingInfo(
                validation_time=now, best_signature_time=now, point_in_time_validation=False
            )
        if at is None:
            return ValidationTimingInfo.now()
        return ValidationTimingInfo(
            validation_time=at, best_signature_time=at, point_in_time_validation=True
        )

    def verify_file(self, path: Path) -> DocumentReport:
        return self.verify_bytes(read_input(path), str(path))

    def verify_bytes(self, data: bytes, name: str = "input") -> DocumentReport:
        if threading.get_ident() != self._loop.thread:
            return asyncio.run(self.averify_bytes(data, name))
        return self._loop.run(self.averify_bytes(data, name))

    async def averify_bytes(self, data: bytes, name: str = "input") -> DocumentReport:
        mode = "online" if self.options.online else "offline"
        timing = self._timing()
        try:
            # keyed by validation time: with each file's own "now" nothing could be reused
            fixed = self.options.at is not None or self.options.run_moment is not None
            with (
                pathcache.using(self.path_cache if fixed else None),
                # the whole document: the signer certificate esign reads before the AdES
                # process (_key_mismatch, 0.3 ms) comes from the same extraction
                certcache.using(self.cert_cache),
                _fastdiff.using(self.diff_skeletons),
            ):
                return await self._averify(data, name, timing, mode)
        except MemoryError:
            pass  # leave the handler first: its traceback holds everything the reading built
        gc.collect()  # that garbage is cyclic (reader <-> references); free it before answering
        return self._document(name, [], timing, mode, doc_error=("FORMAT_FAILURE", memory_limit()))

    async def _averify(
        self, data: bytes, name: str, timing: ValidationTimingInfo, mode: str
    ) -> DocumentReport:
        try:
            check_header(data, name)
        except InputError as e:
            return self._document(name, [], timing, mode, doc_error=("FORMAT_FAILURE", str(e)))
        limits = self.options.limits
        try:
            reader = open_pdf(data, limits)
            dangling_reads_as_null(reader)  # LibreOffice hybrid files (verify/hybrid.py)
            unused_numbers_are_fresh(reader)  # free numbers reused by a later writer (poppler)
            if reader.encrypted:
                locked = _unlock(reader, self.options.password)
                if locked is not None:
                    return _locked_report(name, locked, timing, mode)
            fields = signature_fields(reader, limits)
            sigs, unreadable = _collect(reader, fields)
        except LimitExceeded as e:
            return self._document(name, [], timing, mode, doc_error=("FORMAT_FAILURE", str(e)))
        except PdfDecodeLimitError as e:
            limit = str(decode_limit(e, limits))
            return self._document(name, [], timing, mode, doc_error=("FORMAT_FAILURE", limit))
        except MALFORMED as e:
            if _raised_in_decryption(e):
                why = f"esign cannot decrypt it: {e}"
                return _locked_report(name, why, timing, mode)
            return self._document(
                name, [], timing, mode, doc_error=("FORMAT_FAILURE", f"unreadable PDF: {e}")
            )
        fetch = self._document_fetch()
        try:
            reports = [await self._verify_one(sig, timing, reader, data, fetch) for sig in sigs]
            reports += [u.report() for u in unreadable]
        except PdfDecodeLimitError as e:  # the budget is the document's, so is the verdict
            limit = str(decode_limit(e, limits))
            return self._document(name, [], timing, mode, doc_error=("FORMAT_FAILURE", limit))
        return self._document(name, reports, timing, mode)

    def _document(
        self,
        name: str,
        reports: Sequence[SignatureReport],
        timing: ValidationTimingInfo,
        mode: str,
        doc_error: tuple[str, str] | None = None,
    ) -> DocumentReport:
        if doc_error is not None:
            sub, detail = doc_error
            text = explain(sub, Indication.TOTAL_FAILED)
            return DocumentReport(
                file=name,
                indication=Indication.TOTAL_FAILED,
                subindication=sub,
                explanation=Text(f"{text.mn} ({detail})", f"{text.en} ({detail})"),
                validation_time=timing.validation_time,
                revocation_mode=mode,
            )
        signatures = [r for r in reports if r.kind != "document-timestamp"]
        overall = worst([r.indication for r in reports])
        if not signatures and overall is not Indication.TOTAL_FAILED:
            # Nothing signed: not a failed signature (nothing was forged), not an ETSI verdict.
            return DocumentReport(
                file=name,
                indication=Indication.NO_SIGNATURE,
                subindication=None,
                explanation=reason("ONLY_TIMESTAMPS" if reports else "NO_SIGNATURE"),
                signatures=tuple(reports),
                validation_time=timing.validation_time,
                revocation_mode=mode,
            )
        culprit = next((r for r in reports if r.indication is overall), reports[0])
        return DocumentReport(
            file=name,
            indication=overall,
            subindication=culprit.subindication if overall is not Indication.TOTAL_PASSED else None,
            explanation=culprit.explanation,
            signatures=tuple(reports),
            validation_time=timing.validation_time,
            revocation_mode=mode,
        )

    async def _verify_one(
        self,
        sig: EmbeddedPdfSignature,
        timing: ValidationTimingInfo,
        reader: PdfFileReader,
        data: bytes,
        fetch: DocumentFetch | None = None,
    ) -> SignatureReport:
        try:
            field = str(sig.field_name)
        except MALFORMED:
            field = "?"
        try:
            kind = "document-timestamp" if sig.sig_object_type == "/DocTimeStamp" else "signature"
            gap = _byte_range_gap_problem(sig, data)
            if gap is not None:
                return _failed(field, kind, "FORMAT_FAILURE", reason("NOT_COVERED"), detail=gap)
            _read_key_algorithm_as_signature(sig.signer_info)
            unsupported = _algorithm_problem(sig.signer_info)
            if unsupported is not None:
                report = _indeterminate(
                    field, kind, "GENERIC", reason("UNSUPPORTED_ALGORITHM"), detail=unsupported
                )
                signer = _signer(sig.signer_cert) if _has_signer_cert(sig) else None
                return dataclasses.replace(report, signer=signer)
            mismatch = _key_mismatch(sig)
            if mismatch is not None:
                return dataclasses.replace(
                    _failed(field, kind, "FORMAT_FAILURE", detail=mismatch),
                    signer=_signer(sig.signer_cert),
                )
            if sig.sig_object.get("/SubFilter") == "/adbe.pkcs7.sha1":
                return self._verify_sha1(sig, field, data)
            if sig.sig_object_type == "/DocTimeStamp":
                return await self._verify_doc_timestamp(sig, field, timing, fetch)
            return await self._verify_signature(sig, field, timing, reader, fetch)
        except PdfDecodeLimitError:
            raise  # a document-level limit, not this signature's fault
        except (*MALFORMED, AssertionError) as e:  # pyHanko checks some structure with assert
            return _failed(
                field, "signature", "FORMAT_FAILURE", detail=f"malformed signature: {_malformed(e)}"
            )

    def _verify_sha1(self, sig: EmbeddedPdfSignature, field: str, data: bytes) -> SignatureReport:
        """adbe.pkcs7.sha1: the CMS signs a SHA-1 digest of the byte range, carried as its
        content. A digest that does not match proves a change (HASH_FAILURE); a match proves
        nothing SHA-1 cannot forge, so the verdict is INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE."""
        first, len1, start2, len2 = (int(v) for v in sig.byte_range)
        digest = hashlib.sha1(data[first : first + len1] + data[start2 : start2 + len2])
        content = sig.signed_data["encap_content_info"]["content"]
        carried = content.native if content.native is not None else b""
        signer = _signer(sig.signer_cert) if _has_signer_cert(sig) else None
        if carried != digest.digest():
            report = _failed(
                field,
                "signature",
                "HASH_FAILURE",
                detail="SubFilter adbe.pkcs7.sha1: the SHA-1 digest the signature carries does "
                "not match the signed bytes",
            )
        else:
            report = _indeterminate(
                field,
                "signature",
                "CRYPTO_CONSTRAINTS_FAILURE",
                detail="SubFilter adbe.pkcs7.sha1: the document is signed through a SHA-1 "
                "digest; SHA-1 is below the crypto policy (SHA-256 or better), so the signature "
                "cannot confirm the document",
            )
        return dataclasses.replace(
            report,
            signer=signer,
            claimed_signing_time=_self_reported_time(sig),
        )

    async def _verify_doc_timestamp(
        self,
        sig: EmbeddedPdfSignature,
        field: str,
        timing: ValidationTimingInfo,
        fetch: DocumentFetch | None = None,
    ) -> SignatureReport:
        # the file's DSS may hold the TSA's CA certificate and revocation data (iText's LTV does)
        dss = _dss_to_local_knowledge(sig.reader)
        path_errors: list[PathValidationError] = []
        vc = ValidationContext(
            trust_roots=list(self.trust.anchors),
            other_certs=[*self.trust.intermediates, *dss.known_certs],
            ocsps=list(dss.known_ocsps),
            crls=list(dss.known_crls),
            moment=timing.validation_time,
            # the document's fetcher, never a default one: it fetches no certificate (no AIA)
            # and OCSP/CRL only where the trust configuration allows
            allow_fetching=fetch is not None,
            fetchers=fetch.get_fetchers() if fetch is not None else None,
            revocation_mode="soft-fail",
            algorithm_usage_policy=self._crypto,
        )
        with _path_errors(path_errors):
            status = await async_validate_pdf_timestamp(
                sig, validation_context=vc, diff_policy=self._spec.diff_policy
            )
        post = _modification_problem(status.coverage, status.diff_result, status.docmdp_ok, None)
        details: list[str] = []
        text: Text | None = None
        if not status.intact:
            sub, ind = "HASH_FAILURE", Indication.TOTAL_FAILED
            details.append("the timestamp token's message imprint does not match the signed bytes")
        elif not status.valid:
            sub, ind = "SIG_CRYPTO_FAILURE", Indication.TOTAL_FAILED
            details.append("the timestamp token's signature does not verify with the TSA's key")
        elif post is not None:
            sub, ind, text = "FORMAT_FAILURE", Indication.TOTAL_FAILED, reason(post)
            if isinstance(status.diff_result, Exception):
                details.append(f"difference analysis: {_words(status.diff_result)}")
        elif not status.trusted:
            sub, ind = "NO_CERTIFICATE_CHAIN_FOUND", Indication.INDETERMINATE
            tsa = status.signing_cert.subject.human_friendly
            found = [_words(e) for e in path_errors]
            details.append(
                f"the timestamp authority's certificate ({tsa}) was not validated: "
                + ("; ".join(found) if found else "no path to a configured trust anchor")
            )
        else:
            sub, ind = None, Indication.TOTAL_PASSED
        return SignatureReport(
            field_name=field,
            kind="document-timestamp",
            indication=ind,
            subindication=sub,
            explanation=text or explain(sub, ind),
            details=tuple(details),
            signer=self._signer(status.signing_cert),
            timestamp_time=status.timestamp,
            coverage=status.coverage.name if status.coverage else None,
            modification_level=_level_name(status.modification_level),
        )

    async def _verify_signature(
        self,
        sig: EmbeddedPdfSignature,
        field: str,
        timing: ValidationTimingInfo,
        reader: PdfFileReader,
        fetch: DocumentFetch | None = None,
    ) -> SignatureReport:
        docmdp = sig.docmdp_level
        kind = "certification" if docmdp is not None else "signature"
        sig.compute_integrity_info(self._spec.diff_policy)
        integrity = sig.summarise_integrity_info()
        path_errors: list[PathValidationError] = []
        notes: list[str] = []  # ours, shown whatever the verdict
        with _path_errors(path_errors):
            spec = self._document_spec(fetch)
            result = await self._ades(sig, timing, spec)
            broken = _broken_signature_timestamp(sig, result)
            if broken is not None:
                # ETSI EN 319 102-1 5.5: a timestamp that does not validate is ignored, which
                # leaves the signature itself to basic validation; it proves nothing either way.
                notes.append(broken)
                path_errors.clear()
                result = await ades_basic_validation(
                    sig.signed_data,
                    self._with_dss(sig, spec),
                    timing_info=timing,
                    raw_digest=sig.compute_digest(),
                )
        status = result.api_status
        sub_indic: AdESSubIndic = result.ades_subindic
        details: list[str] = list(notes)
        if result.failure_msg:
            details.append(" ".join(result.failure_msg.split()))
        ind = _indication(sub_indic)
        if ind is Indication.INDETERMINATE and sub_indic.standard_name in _REVINFO_MISSING:
            known = [*_embedded_certs(sig), *self.trust.intermediates, *self.trust.anchors]
            details += _revinfo_why(path_errors, known, fetch)
        sub: str | None = sub_indic.standard_name if ind is not Indication.TOTAL_PASSED else None
        late = _existence_proved_only_after_expiry(sig, result) if sub is None else None
        if late is not None:
            ind, sub = Indication.INDETERMINATE, "OUT_OF_BOUNDS_NO_POE"
            details.append(late)
        text = explain(sub, ind)
        # pyHanko's AdES process judges the CMS signature; the PDF-level checks are ours.
        if status is not None and not status.intact:
            ind, sub = Indication.TOTAL_FAILED, "HASH_FAILURE"
            text = explain(sub, ind)
        elif status is not None and not status.valid:
            ind, sub = Indication.TOTAL_FAILED, "SIG_CRYPTO_FAILURE"
            text = explain(sub, ind)
        elif ind is not Indication.TOTAL_FAILED:
            problem = _modification_problem(
                integrity.get("coverage"),
                integrity.get("diff_result"),
                integrity.get("docmdp_ok"),
                docmdp,
            )
            if problem is not None:
                ind, sub, text = Indication.TOTAL_FAILED, "FORMAT_FAILURE", reason(problem)
                # the verdict is the change's, not what the AdES process left open
                details = [*_modification_detail(integrity.get("diff_result")), *notes]
        if status is None and ind is Indication.TOTAL_PASSED:  # never pass without a status
            ind, sub = Indication.INDETERMINATE, "GENERIC"
            text = explain(sub, ind)
        if _budget_hit(fetch, ind, sub):
            sub = "TRY_LATER"
            text = explain(sub, ind)
            details.append(
                f"{BUDGET_EXHAUSTED}: revocation data for this signature was not fetched"
            )
        ts = getattr(status, "timestamp_validity", None)
        coverage = integrity.get("coverage")
        return SignatureReport(
            field_name=field,
            kind=kind,
            indication=ind,
            subindication=sub,
            explanation=text,
            signer=self._signer(sig.signer_cert) if _has_signer_cert(sig) else None,
            # PAdES forbids the CMS signing-time attribute; the claim lives in the /M entry.
            claimed_signing_time=getattr(status, "signer_reported_dt", None)
            or _self_reported_time(sig),
            timestamp_time=ts.timestamp if ts is not None else None,
            pades_level=_pades_level(sig, reader),
            coverage=coverage.name if coverage is not None else None,
            modification_level=_level_name(_mod_level(integrity.get("diff_result"), coverage)),
            docmdp=docmdp.name if docmdp else None,
            # pyHanko leaves remarks on passed results too ("did not manage to improve ...")
            details=tuple(details) if ind is not Indication.TOTAL_PASSED else tuple(notes),
        )

    async def _ades(
        self,
        sig: EmbeddedPdfSignature,
        timing: ValidationTimingInfo,
        spec: PdfSignatureValidationSpec,
    ) -> AdESBasicValidationResult[Any]:
        """Pick the ETSI EN 319 102-1 process that fits what the signature carries.

        B-B: basic validation (5.3). A signature timestamp: validation with time (5.5), with the
        DSS as local knowledge. A later document timestamp: long-term validation (5.6.3).
        """
        if not _has_signature_timestamp(sig):
            return await ades_basic_validation(
                sig.signed_data,
                self._with_dss(sig, spec),
                timing_info=timing,
                raw_digest=sig.compute_digest(),
            )
        if _later_doc_timestamps(sig):
            return await ades_lta_validation(sig, spec, timing_info=timing)
        return await ades_with_time_validation(
            sig.signed_data,
            self._with_dss(sig, spec),
            timing_info=timing,
            raw_digest=sig.compute_digest(),
        )

    def _shared(self, dss: LocalKnowledge) -> LocalKnowledge:
        """The DSS's certificates, OCSP responses and CRLs as the objects this verifier already
        parsed from the same bytes (a batch's documents carry the same ones): what asn1crypto
        and pyhanko-certvalidator derive from them (names, key identifiers, the responder
        certificates inside a response) is then derived once per run. Keyed by type and DER."""
        same = self._parsed

        def one(obj: Any) -> Any:
            key = (type(obj).__name__, obj.dump())
            found = same.get(key)
            if found is None:
                if self._parsed_bytes > _SHARED_BYTES:
                    same.clear()  # a batch meets a few; a stream of strangers' files, many
                    self._parsed_bytes = 0
                same[key] = found = obj
                self._parsed_bytes += len(key[1])
            return found

        return LocalKnowledge(
            known_certs=[one(c) for c in dss.known_certs],
            known_ocsps=[
                dataclasses.replace(o, ocsp_response_data=one(o.ocsp_response_data))
                for o in dss.known_ocsps
            ],
            known_crls=[dataclasses.replace(c, crl_data=one(c.crl_data)) for c in dss.known_crls],
        )

    def _with_dss(
        self, sig: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec
    ) -> SignatureValidationSpec:
        base = spec.signature_validation_spec
        # pyHanko keeps DSS ingestion private; its LTA process uses this same helper.
        dss = self.cert_cache.dss_knowledge(
            sig.reader, lambda reader: self._shared(_dss_to_local_knowledge(reader))
        )
        known = base.local_knowledge
        return dataclasses.replace(
            base,
            local_knowledge=LocalKnowledge(
                known_ocsps=known.known_ocsps + dss.known_ocsps,
                known_crls=known.known_crls + dss.known_crls,
                known_certs=known.known_certs + dss.known_certs,
            ),
        )


_SHARED_BYTES = 16 * 2**20
"""DER kept by Verifier._shared before it starts over (a national CA's CRL may be megabytes)."""


# What missing revocation data looks like in an AdES result (pyHanko reports "no revocation
# information could be found" as CERTIFICATE_CHAIN_GENERAL_FAILURE): the fetch budget may be why.
_REVINFO_MISSING = {
    "TRY_LATER",
    "REVOCATION_OUT_OF_BOUNDS_NO_POE",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    "GENERIC",
}


def _unlock(reader: PdfFileReader, password: bytes | None) -> str | None:
    """Open an encrypted PDF with the empty user password or the one given; None when opened,
    else why not. Signatures of an encrypted file are as verifiable as any other (ISO 32000-2
    7.6.2: /Contents of a signature dictionary is not encrypted)."""
    from pyhanko.pdf_utils.crypt import AuthStatus, StandardSecurityHandler

    if not isinstance(reader.security_handler, StandardSecurityHandler):
        return "the PDF is encrypted for certificate holders (public-key security)"
    for attempt in (b"", password) if password else (b"",):
        if reader.decrypt(attempt).status is not AuthStatus.FAILED:
            return None
    if password:
        return "the PDF is encrypted and the given password does not open it"
    return "the PDF is encrypted with a user password: give it with --password-file"


def _raised_in_decryption(error: BaseException) -> bool:
    """Whether reading failed inside pyHanko's security handlers (an encryption scheme or
    parameters it does not support). That proves nothing about the signatures: the file is
    INDETERMINATE, like one whose password we lack, never TOTAL-FAILED."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            if _CRYPT_PACKAGE in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
                return True
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return False


_CRYPT_PACKAGE = "/pyhanko/pdf_utils/crypt/"


def _locked_report(name: str, why: str, timing: ValidationTimingInfo, mode: str) -> DocumentReport:
    """An encrypted PDF we cannot open: nothing is proven either way, so INDETERMINATE."""
    return DocumentReport(
        file=name,
        indication=Indication.INDETERMINATE,
        subindication="GENERIC",
        explanation=Text(
            f"PDF файл нууцлагдсан тул гарын үсгийг шалгаж чадсангүй ({why})",
            f"The PDF is encrypted, so its signatures could not be checked ({why})",
        ),
        validation_time=timing.validation_time,
        revocation_mode=mode,
    )


def _budget_hit(fetch: DocumentFetch | None, ind: Indication, sub: str | None) -> bool:
    """Whether an INDETERMINATE for want of revocation data coincides with this document's
    fetch budget refusing a request (the refusal may have been cached for an earlier signature)."""
    return (
        fetch is not None
        and fetch.budget.refused > 0
        and ind is Indication.INDETERMINATE
        and sub in _REVINFO_MISSING
    )


def _modification_detail(diff_result: object) -> list[str]:
    if isinstance(diff_result, Exception):
        return [f"difference analysis: {_words(diff_result)}"]
    level = getattr(diff_result, "modification_level", None)
    if isinstance(level, ModificationLevel):
        return [f"difference analysis: the later revisions change the document ({level.name})"]
    return []


def _broken_signature_timestamp(
    sig: EmbeddedPdfSignature, result: AdESBasicValidationResult[Any]
) -> str | None:
    """Why the signature timestamp, not the signature, made a validation with time fail, or None.

    pyHanko answers a timestamp token whose own signature or imprint fails with the signature's
    SIG_CRYPTO_FAILURE / HASH_FAILURE although the signature itself verified (its status is
    intact and valid): that would call a genuine signature forged.
    """
    status = result.api_status
    sub = result.ades_subindic
    if sub.status is not AdESStatus.FAILED or status is None:
        return None
    if not (status.intact and status.valid) or not _has_signature_timestamp(sig):
        return None
    if sub.standard_name not in ("SIG_CRYPTO_FAILURE", "HASH_FAILURE"):
        return None
    what = "signature" if sub.standard_name == "SIG_CRYPTO_FAILURE" else "message imprint"
    return (
        f"the signature timestamp does not validate (the timestamp token's {what} does not "
        "verify); it was ignored and the signature validated without it"
    )


def _existence_proved_only_after_expiry(
    sig: EmbeddedPdfSignature, result: AdESBasicValidationResult[Any]
) -> str | None:
    """Why a passed result must become INDETERMINATE/OUT_OF_BOUNDS_NO_POE, or None.

    ETSI EN 319 102-1 5.5.4: an expired signing certificate is acceptable only when the signature
    is proved to exist before the expiry. pyHanko 0.38's validation with time checks only the
    not-before side ("we can't process expiration here"), so a signature made with an expired
    certificate and timestamped today would pass.
    """
    poe = getattr(result, "best_signature_time", None)
    if not isinstance(poe, datetime):
        return None
    not_after = sig.signer_cert.not_valid_after
    if poe <= not_after:
        return None
    return (
        f"the earliest proof of existence ({poe:%Y-%m-%d %H:%M:%S}Z) is after the signing "
        f"certificate expired ({not_after:%Y-%m-%d})"
    )


_DIGESTS = {
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha512_224",
    "sha512_256",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
}
"""Digest algorithms pyHanko computes (weak ones are then refused by the crypto policy)."""

_SIGNATURE_MECHANISMS = {"rsassa_pkcs1v15", "rsassa_pss", "ecdsa", "dsa", "ed25519", "ed448"}

_ALGORITHM_NAMES = {
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "0.4.0.127.0.7.1.1.4.1.1": "ecdsa-plain-SHA1 (BSI TR-03111 plain-format ECDSA)",
    "0.4.0.127.0.7.1.1.4.1.2": "ecdsa-plain-SHA224 (BSI TR-03111 plain-format ECDSA)",
    "0.4.0.127.0.7.1.1.4.1.3": "ecdsa-plain-SHA256 (BSI TR-03111 plain-format ECDSA)",
    "0.4.0.127.0.7.1.1.4.1.4": "ecdsa-plain-SHA384 (BSI TR-03111 plain-format ECDSA)",
    "0.4.0.127.0.7.1.1.4.1.5": "ecdsa-plain-SHA512 (BSI TR-03111 plain-format ECDSA)",
    "0.4.0.127.0.7.1.1.4.1.6": "ecdsa-plain-RIPEMD160 (BSI TR-03111 plain-format ECDSA)",
}


_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_ECDSA_WITH = {"sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256"}
_ECDSA_WITH |= {"sha3_384", "sha3_512"}


def _read_key_algorithm_as_signature(signer_info: Any) -> None:
    """Read a SignerInfo whose signatureAlgorithm is the bare key algorithm id-ecPublicKey (iText 5
    writes it for every EC key) as ecdsa-with-<digestAlgorithm>, as Adobe Reader and poppler do.

    RFC 5652 allows the signature algorithm to name only the key type; the digest is the
    SignerInfo's. The field is not covered by the signature, so reading it this way changes
    nothing the signer vouched for; rsaEncryption is already read this way by asn1crypto.
    """
    algo = signer_info["signature_algorithm"]
    digest = signer_info["digest_algorithm"]["algorithm"].native
    if algo["algorithm"].dotted == _EC_PUBLIC_KEY and digest in _ECDSA_WITH:
        signer_info["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": f"{digest}_ecdsa"}
        )


_DIGEST_NAMES = {
    "1.3.36.3.2.1": "RIPEMD-160",
    "1.2.643.7.1.1.2.2": "GOST R 34.11-2012 (256 bit)",
    "1.2.643.7.1.1.2.3": "GOST R 34.11-2012 (512 bit)",
    "1.2.156.10197.1.401": "SM3",
    "2.16.840.1.101.3.4.2.11": "SHAKE128",
    "2.16.840.1.101.3.4.2.12": "SHAKE256",
}


def _algorithm_problem(signer_info: Any) -> str | None:
    """Why esign cannot check the algorithms a SignerInfo names, in words, or None.

    pyHanko looks digest names up as attributes of ``cryptography``'s hash module and judges an
    unknown signature mechanism as an invalid signature: neither is a verdict on the signature.
    """
    digest = signer_info["digest_algorithm"]["algorithm"]
    if digest.native not in _DIGESTS:
        oid = digest.dotted
        if oid in _DIGEST_NAMES:
            return (
                f"the signature uses the digest algorithm {_DIGEST_NAMES[oid]} ({oid}), "
                "which esign does not support"
            )
        text = f"the signature names an unknown digest algorithm {oid}"
        if oid in _ALGORITHM_NAMES:
            text += f" ({_ALGORITHM_NAMES[oid]} is a signature algorithm, not a digest)"
        return text
    algo = signer_info["signature_algorithm"]
    try:
        mechanism: str | None = algo.signature_algo
    except ValueError:
        mechanism = None
    if mechanism not in _SIGNATURE_MECHANISMS:
        oid = algo["algorithm"].dotted
        name = _ALGORITHM_NAMES.get(oid, str(algo["algorithm"].native))
        return f"the signature uses {name} ({oid}), an algorithm esign does not support"
    return None


_KEY_FOR = {
    "rsassa_pkcs1v15": "rsa",
    "rsassa_pss": "rsa",
    "ecdsa": "ec",
    "dsa": "dsa",
    "ed25519": "ed25519",
    "ed448": "ed448",
}


def _key_mismatch(sig: EmbeddedPdfSignature) -> str | None:
    """Why the signature algorithm cannot be the signer key's (an RSA algorithm with an EC key),
    or None. pyhanko-certvalidator asserts this and the AssertionError would say nothing."""
    if not _has_signer_cert(sig):
        return None
    algo = sig.signer_info["signature_algorithm"]
    key = sig.signer_cert.public_key.algorithm
    wanted = _KEY_FOR.get(algo.signature_algo)
    if wanted is None or key == wanted or (wanted == "rsa" and key == "rsassa_pss"):
        return None
    oid = algo["algorithm"].dotted
    name = _ALGORITHM_NAMES.get(oid, str(algo["algorithm"].native))
    return f"the signature algorithm {name} ({oid}) does not fit the signer's {key.upper()} key"


_HEX_STRING = re.compile(rb"<([0-9A-Fa-f]*)>")


def _byte_range_gap_problem(sig: EmbeddedPdfSignature, data: bytes) -> str | None:
    """What is wrong with the hole in the /ByteRange, or None when it holds exactly the /Contents
    hex string (ISO 32000-2 12.8.1) and the second range lies inside the file.

    pyHanko judges whole-file coverage by length alone; a literal-string /Contents, or one found
    elsewhere than in the hole, lets a signature-wrapping attacker hide a new revision in the hole
    and still look like "covers the entire file".
    """
    try:
        first, len1, start2, len2 = (int(v) for v in sig.byte_range)
    except (TypeError, ValueError):
        return "the /ByteRange is not four integers"
    if first != 0 or not 0 < len1 < start2 or len2 < 0 or start2 + len2 > len(data):
        return "the /ByteRange does not fit the file"
    hole = _HEX_STRING.fullmatch(data, len1, start2)
    if hole is None or len(hole.group(1)) % 2:
        return "the /ByteRange hole is not exactly the /Contents hex string"
    if bytes.fromhex(hole.group(1).decode("ascii")) != sig.pkcs7_content:
        return "the /ByteRange hole does not hold this signature's /Contents"
    return None


def _embedded_certs(sig: EmbeddedPdfSignature) -> list[x509.Certificate]:
    certs = sig.signed_data["certificates"]
    return [c.chosen for c in certs if isinstance(c.chosen, x509.Certificate)] if certs else []


def _self_reported_time(sig: EmbeddedPdfSignature) -> datetime | None:
    try:
        return sig.self_reported_timestamp
    except MALFORMED:
        return None


def _has_signer_cert(sig: EmbeddedPdfSignature) -> bool:
    try:
        sig.signer_cert  # noqa: B018
    except MALFORMED:
        return False
    return True


def _later_doc_timestamps(sig: EmbeddedPdfSignature) -> list[EmbeddedPdfSignature]:
    return [
        s
        for s in sig.reader.embedded_signatures
        if s.sig_object_type == "/DocTimeStamp" and s.signed_revision > sig.signed_revision
    ]


def _mod_level(
    diff_result: object, coverage: SignatureCoverageLevel | None
) -> ModificationLevel | None:
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return ModificationLevel.NONE
    if isinstance(diff_result, Exception) or diff_result is None:
        return ModificationLevel.OTHER if diff_result is not None else None
    level = getattr(diff_result, "modification_level", None)
    return level if isinstance(level, ModificationLevel) else None


def _has_signature_timestamp(sig: EmbeddedPdfSignature) -> bool:
    unsigned = sig.signer_info["unsigned_attrs"]
    if not unsigned:
        return False
    return any(attr["type"].native == "signature_time_stamp_token" for attr in unsigned)


def _level_name(level: ModificationLevel | None) -> str | None:
    return level.name if level is not None else None


def _modification_problem(
    coverage: SignatureCoverageLevel | None,
    diff_result: object,
    docmdp_ok: bool | None,
    docmdp: object,
) -> str | None:
    """Why the changes made after this signature are not acceptable, or None when they are."""
    if coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return "NOT_COVERED"
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return None
    if diff_result is None or isinstance(diff_result, Exception):
        return "MODIFIED_AFTER_SIGNING"
    level = getattr(diff_result, "modification_level", ModificationLevel.OTHER)
    if docmdp_ok is False:
        return "DOCMDP_VIOLATION" if docmdp is not None else "MODIFIED_AFTER_SIGNING"
    if level > ModificationLevel.FORM_FILLING:
        return "MODIFIED_AFTER_SIGNING"
    return None


def _pades_level(sig: EmbeddedPdfSignature, reader: PdfFileReader) -> str:
    """The PAdES baseline level of what the file carries for this signature (not a verdict)."""
    if not _has_signature_timestamp(sig):
        return "B-B"
    try:
        # not .get(): pyHanko dereferences indirect objects only on item access
        dss = reader.root["/DSS"] if "/DSS" in reader.root else None  # noqa: SIM401
    except MALFORMED:
        dss = None
    if dss is None or not ("/OCSPs" in dss or "/CRLs" in dss):
        return "B-T"
    if not _dss_for(sig, reader, dss):
        return "B-T"
    return "B-LTA" if _later_doc_timestamps(sig) else "B-LT"


def _dss_for(sig: EmbeddedPdfSignature, reader: PdfFileReader, dss: Any) -> bool:
    """Whether the DSS may carry this signature's validation data: it has a VRI entry for the
    signature, or it (or its /OCSPs, /CRLs arrays) was written after the signature's revision.
    A DSS that only predates the signature was made for earlier signatures."""
    try:
        vri = dss["/VRI"] if "/VRI" in dss else None  # noqa: SIM401
        key = "/" + hashlib.sha1(sig.pkcs7_content).hexdigest().upper()
        if isinstance(vri, generic.DictionaryObject) and key in vri:
            return True
        refs = [reader.root.raw_get("/DSS")]
        refs += [dss.raw_get(k) for k in ("/OCSPs", "/CRLs") if k in dss]
        indirect = [r.reference for r in refs if isinstance(r, generic.IndirectObject)]
        if not isinstance(refs[0], generic.IndirectObject):
            indirect.append(reader.trailer.raw_get("/Root").reference)
        return any(reader.xrefs.get_last_change(r) > sig.signed_revision for r in indirect)
    except MALFORMED:
        return False


def verify_pdf(
    source: Path | bytes,
    *,
    trust: TrustConfig | Sequence[Path] | None = None,
    at: datetime | None = None,
    online: bool = True,
) -> DocumentReport:
    """Verify one PDF (a path or its bytes). For many files, build a :class:`Verifier` once."""
    if not isinstance(trust, TrustConfig):
        trust = TrustConfig.load(trust or ())
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    verifier = Verifier(trust, VerifyOptions(at=at, online=online))
    if isinstance(source, bytes):
        return verifier.verify_bytes(source)
    return verifier.verify_file(source)
