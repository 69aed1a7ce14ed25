"""PAdES baseline signing (ETSI EN 319 142-1, levels B-B to B-LTA) on top of pyHanko.

:class:`DocumentSigner` is built once per key and options and then signs many documents: the key is
already parsed, the certificate check is done once, and the signature container size is reserved
from the known certificate sizes instead of pyHanko's per-document dry-run signature.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from asn1crypto import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.api import Fetchers
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from .errors import CertificateRefused, EsignError, ServiceError, SigningError, UsageError
from .keysource import LoadedKey
from .pdfio import open_for_update, read_input, write_atomic


class PadesLevel(enum.Enum):
    """PAdES baseline levels."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @classmethod
    def parse(cls, text: str) -> PadesLevel:
        for level in cls:
            if level.value == text.upper():
                return level
        raise UsageError(f"unknown PAdES level {text!r}: use B-B, B-T, B-LT or B-LTA")

    @property
    def needs_timestamp(self) -> bool:
        return self is not PadesLevel.B_B

    @property
    def embeds_validation_data(self) -> bool:
        return self in (PadesLevel.B_LT, PadesLevel.B_LTA)


@dataclass(frozen=True)
class SignOptions:
    """What kind of signature to make. Mirrors the options of ``esign sign``."""

    level: PadesLevel = PadesLevel.B_B
    tsa_url: str | None = None
    certify: bool = False
    field_name: str | None = None
    reason: str | None = None
    location: str | None = None
    md_algorithm: str = "sha256"
    check_certificate: bool = True
    """Refuse expired, not-yet-valid and revoked signing certificates (OCSP/CRL, soft-fail)."""
    trust_roots: tuple[x509.Certificate, ...] = ()
    """Extra trust anchors for B-LT/B-LTA path building (self-signed chain certs count too)."""
    tsa_timeout: float = 10.0
    revinfo_reuse_seconds: float = 300.0
    """B-LT/B-LTA: how long the OCSP responses and CRLs fetched for one document are embedded
    in the next ones (never past a response's nextUpdate). 0 fetches for every document."""

    def __post_init__(self) -> None:
        if self.md_algorithm not in ("sha256", "sha384", "sha512"):
            raise UsageError(f"digest {self.md_algorithm} is not allowed: use sha256 or stronger")
        if self.level.needs_timestamp and not self.tsa_url:
            raise UsageError(f"level {self.level.value} needs a timestamp service: give --tsa URL")


# Space reserved for the CMS container beyond the embedded certificates. Kept tight: every
# verifier parses the whole /Contents hex string, padding included. Too small a guess is
# corrected by one retry (see DocumentSigner.sign_bytes).
_BASE_RESERVE = 2048
_TIMESTAMP_RESERVE = 6144
_TOO_SMALL = re.compile(r"Final ByteRange payload larger than expected.*required (\d+) bytes")


class DocumentSigner:
    """Signs PDFs with one key and one set of options; reuse it for every document of a batch."""

    def __init__(self, key: LoadedKey, options: SignOptions) -> None:
        self.key = key
        self.options = options
        self._checked = False
        self._fetchers: tuple[float, Fetchers] | None = None
        cert_bytes = sum(len(c.dump()) for c in [key.signing_cert, *key.chain])
        self._reserve = _BASE_RESERVE + cert_bytes
        self._timestamper = None
        if options.level.needs_timestamp:
            assert options.tsa_url is not None
            self._timestamper = RequestsHTTPTimeStamper(
                options.tsa_url, timeout=options.tsa_timeout
            )
            self._reserve += _TIMESTAMP_RESERVE

    def _validation_context(self, fetch: bool, batch: bool = False) -> ValidationContext:
        chain = self.key.chain
        roots = [c for c in chain if c.self_signed == "maybe" or c.self_signed == "yes"]
        roots += list(self.options.trust_roots)
        return ValidationContext(
            trust_roots=roots or None,
            other_certs=chain,
            allow_fetching=fetch,
            revocation_mode="hard-fail"
            if self.options.level.embeds_validation_data
            else "soft-fail",
            fetcher_backend=None if batch else self._backend(),
            fetchers=self._batch_fetchers() if batch else None,
        )

    def _backend(self) -> RequestsFetcherBackend:
        return RequestsFetcherBackend(per_request_timeout=self.options.tsa_timeout)

    def _batch_fetchers(self) -> Fetchers:
        """Fetchers whose caches outlive one document, renewed after ``revinfo_reuse_seconds``
        or a minute before a cached OCSP response's nextUpdate.

        Why: a batch of a month's statements would otherwise fetch a new OCSP response and CRL per
        document, all saying the same thing; sharing them loads the agency's responder once per
        window instead of once per citizen, and lets a verifier of the batch check each response
        once (verify/pathcache.py keys by content, so only identical bytes are shared).
        """
        now = time.monotonic()
        if self._fetchers is not None:
            started, fetchers = self._fetchers
            soon = datetime.now(UTC) + timedelta(seconds=60)
            expiring = any(
                (r.get("next_update") or soon) < soon
                for response in fetchers.ocsp_fetcher.fetched_responses()
                for r in response.basic_ocsp_response["tbs_response_data"]["responses"].native
            )
            if now - started < self.options.revinfo_reuse_seconds and not expiring:
                return fetchers
        fetchers = self._backend().get_fetchers()
        self._fetchers = (now, fetchers)
        return fetchers

    def check_certificate(self, moment: datetime | None = None) -> None:
        """Refuse an expired, not-yet-valid or revoked signing certificate (done once)."""
        if self._checked or not self.options.check_certificate:
            return
        refusal = certificate_refusal(
            self.key.signing_cert,
            self.key.chain,
            lambda: self._validation_context(fetch=True),
            moment or datetime.now(UTC),
        )
        if refusal is not None:
            raise refusal
        self._checked = True

    def _pdf_signer(self, field_name: str) -> signers.PdfSigner:
        opts = self.options
        meta = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=opts.md_algorithm,
            reason=opts.reason,
            location=opts.location,
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=opts.certify,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES
            if opts.certify
            else fields.MDPPerm.FILL_FORMS,
            embed_validation_info=opts.level.embeds_validation_data,
            use_pades_lta=opts.level is PadesLevel.B_LTA,
            validation_context=(
                self._validation_context(fetch=True, batch=True)
                if opts.level.embeds_validation_data
                else None
            ),
        )
        return signers.PdfSigner(meta, self.key.signer, timestamper=self._timestamper)

    def sign_bytes(self, data: bytes, name: str = "input") -> bytes:
        """Sign a PDF held in memory; returns the signed PDF."""
        self.check_certificate()
        writer = open_for_update(data, name)
        try:
            return self._sign_writer(writer, name)
        except PyHankoSigningError as e:
            grown = _TOO_SMALL.search(str(e))
            if grown is None:
                raise _signing_error(e, self.options) from e
            # The container outgrew the reservation (e.g. a TSA embedding a long chain).
            self._reserve = int(grown.group(1)) // 2 + _BASE_RESERVE
            return self._sign_writer(open_for_update(data, name), name)

    def _sign_writer(self, writer: IncrementalPdfFileWriter, name: str) -> bytes:
        out = BytesIO()
        try:
            field_name = self.options.field_name or _free_field_name(writer)
            self._pdf_signer(field_name).sign_pdf(
                writer, bytes_reserved=2 * self._reserve, output=out
            )
        except TimestampRequestError as e:
            raise ServiceError(f"timestamp service {self.options.tsa_url} failed: {e}") from e
        except EsignError:
            raise
        except PyHankoSigningError as e:
            if _TOO_SMALL.search(str(e)):
                raise
            raise _signing_error(e, self.options) from e
        except (PdfError, ValueError) as e:
            raise SigningError(f"cannot sign {name}: {e}") from e
        return out.getvalue()

    def sign_file(self, src: Path, dst: Path) -> None:
        """Sign ``src`` into ``dst``; ``dst`` appears only if signing succeeded."""
        data = read_input(src)
        signed = self.sign_bytes(data, str(src))
        write_atomic(dst, signed)


def certificate_refusal(
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    context: Callable[[], ValidationContext] | None,
    now: datetime,
) -> CertificateRefused | None:
    """Why ``cert`` must not sign at ``now`` (expired, not yet valid, revoked), or None.

    Dates are checked first, offline; then, unless ``context`` is None (dates only), the path is
    validated with a fresh context from ``context`` (fetching OCSP/CRL as that context allows).
    A chain without a known anchor, or revocation data that cannot be had in soft-fail mode, is
    not a refusal: the status cannot be checked here, which the caller's policy decides about.
    """
    validity = cert["tbs_certificate"]["validity"]
    not_before = validity["not_before"].native
    not_after = validity["not_after"].native
    who = cert.subject.human_friendly
    if now > not_after:
        return CertificateRefused(f"signing certificate expired on {not_after:%Y-%m-%d}: {who}")
    if now < not_before:
        return CertificateRefused(
            f"signing certificate is not valid before {not_before:%Y-%m-%d}: {who}"
        )
    if context is None:
        return None
    validator = CertificateValidator(cert, intermediate_certs=chain, validation_context=context())
    try:
        asyncio.run(validator.async_validate_usage(set()))
    except RevokedError:
        return CertificateRefused(f"signing certificate is revoked: {who}")
    except PathBuildingError:
        pass  # no anchor known for this chain: the revocation status cannot be checked here
    except PathValidationError as e:
        if "revoked" in str(e).lower():
            return CertificateRefused(f"signing certificate is revoked: {who}")
    except ValidationError:
        pass
    return None


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    taken = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev)}
    n = len(taken) + 1
    while f"Signature{n}" in taken:
        n += 1
    return f"Signature{n}"


def _signing_error(e: Exception, options: SignOptions) -> EsignError:
    text = " ".join(str(e).split())
    cause = e.__cause__ or e.__context__
    low = text.lower() + " " + str(cause).lower()
    if isinstance(cause, (TimestampRequestError, OSError)) or (
        "timestamp" in low and ("connect" in low or "request" in low)
    ):
        return ServiceError(f"timestamp service {options.tsa_url} failed: {text}")
    if "revoked" in low:
        return CertificateRefused(f"signing certificate is revoked: {text}")
    if "fetch" in low or "ocsp" in low or "crl" in low or "revocation" in low:
        return ServiceError(f"could not gather revocation data for {options.level.value}: {text}")
    return SigningError(f"signing failed: {text}")


def sign_pdf(
    src: Path,
    dst: Path,
    key: LoadedKey,
    options: SignOptions | None = None,
) -> None:
    """Sign one file. For many files, build a :class:`DocumentSigner` once and reuse it."""
    DocumentSigner(key, options or SignOptions()).sign_file(src, dst)
