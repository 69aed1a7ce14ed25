"""Sanity limits on reading an untrusted PDF: what a file declares must fit the data it holds.

pyHanko bounds stream decoding itself (:mod:`pyhanko.pdf_utils.decode_limits`), and we pass it a
per-document budget. It has no bound on the cross-reference data a file declares: in non-strict
mode ``parse_xref_stream`` yields a default entry for every declared index once the stream's data
runs out, so a 260-byte file declaring ``/Index [0 2147483647]`` makes the reader build two
billion entries (memory grows without end). We cannot read untrusted files in strict mode (many
genuine files have small defects pyHanko tolerates), so we wrap the two xref section parsers:
before pyHanko yields anything, the declared entry count is checked against the decoded data, and
the number of revisions and entries read for one document is counted. Nothing is parsed here.

The wrap is installed once, process-wide (:func:`install`); it only raises where the reader
would otherwise build entries from no data, so other pyHanko users (signing) gain the same guard.
"""

from __future__ import annotations

import itertools
import resource
import signal
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils import xref as _xref
from pyhanko.pdf_utils.decode_limits import (
    DEFAULT_PURPOSE_LIMITS,
    DecodeLimits,
    DecodePurpose,
    DocumentDecodeBudget,
    StreamDecodeLimits,
)
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from esign.errors import InputError

from .explain import explain
from .report import DocumentReport, Indication, Text

MiB = 2**20
GiB = 2**30


class LimitExceeded(InputError):
    """A reading limit was hit: the file declares or needs more than any genuine document.

    The message names the limit; verification turns it into TOTAL-FAILED/FORMAT_FAILURE.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message if message.startswith("limit:") else f"limit: {message}")


@dataclass(frozen=True)
class ReadingLimits:
    """Bounds for reading one document; generous for genuine files, fatal for bombs."""

    max_revisions: int = 300
    """Cross-reference sections (incremental updates) in one file."""
    max_xref_entries: int = 1_000_000
    """Cross-reference entries over all sections, and the largest trailer /Size."""
    max_signatures: int = 50
    """Filled signature fields (signatures and document timestamps) in one document."""
    max_decoded_bytes: int = 128 * MiB
    """Bytes produced by stream decoders for one document (pyHanko's document budget)."""
    xref_shortfall: int = 16
    """Rows a cross-reference stream may lack against its /Index before we refuse it. pyHanko
    fills missing rows with defaults; a genuine writer's off-by-a-few slip stays readable."""

    def decode_limits(self) -> DecodeLimits:
        """pyHanko's own decoding limits, capped by ``max_decoded_bytes``."""
        cap = self.max_decoded_bytes
        per_stream = StreamDecodeLimits(max_output_size=min(256 * MiB, cap))
        purpose: Mapping[DecodePurpose, StreamDecodeLimits] = dict(DEFAULT_PURPOSE_LIMITS)
        return DecodeLimits(
            per_stream=per_stream,
            per_purpose=purpose,
            document_budget=DocumentDecodeBudget(base_allowance=cap, max_ratio=0),
        )


class _Budget:
    """What one document has used so far while its cross-references are read."""

    def __init__(self, limits: ReadingLimits) -> None:
        self.limits = limits
        self.sections = 0
        self.entries = 0

    def section(self) -> None:
        self.sections += 1
        if self.sections > self.limits.max_revisions:
            raise LimitExceeded(
                f"the file has more than {self.limits.max_revisions} revisions "
                "(cross-reference sections)"
            )

    def add(self, entries: int) -> None:
        self.entries += entries
        if self.entries > self.limits.max_xref_entries:
            raise LimitExceeded(
                f"the cross-references declare more than {self.limits.max_xref_entries} entries"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("esign_reading_budget", default=None)


def _budget() -> _Budget:
    """The document being read, or a fresh budget for a caller outside :func:`open_pdf`."""
    return _BUDGET.get() or _Budget(ReadingLimits())


@contextmanager
def _reading(limits: ReadingLimits) -> Iterator[_Budget]:
    budget = _Budget(limits)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


_ORIGINAL_STREAM = _xref.parse_xref_stream
_ORIGINAL_TABLE = _xref.parse_xref_table


def _ints(value: object) -> list[int] | None:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return None
    return [int(v) for v in value]


def _checked_xref_stream(
    xref_stream: generic.StreamObject, strict: bool = True
) -> Iterator[_xref.XRefEntry]:
    """pyHanko's ``parse_xref_stream``, refused when /Index declares more rows than the data holds.

    Decodes the stream first (pyHanko caches the result, so it is decoded once) with the same
    purpose and the same expected size pyHanko would use.
    """
    budget = _budget()
    budget.section()
    index = _ints(xref_stream.get("/Index", [0, xref_stream.get("/Size")]))
    widths = _ints(xref_stream.get("/W"))
    if index is None or widths is None or len(index) % 2 or any(w < 0 for w in widths):
        return _ORIGINAL_STREAM(xref_stream, strict)  # pyHanko's own complaint
    declared = sum(max(0, size) for size in index[1::2])
    row = sum(widths)
    data = xref_stream.read_data(DecodePurpose.XREF_STREAM, expected_size=declared * (row + 1))
    present = len(data) // row if row else 0
    if declared > present + budget.limits.xref_shortfall:
        raise LimitExceeded(
            f"cross-reference stream declares {declared} entries but holds data for {present}"
        )
    budget.add(declared)
    return _ORIGINAL_STREAM(xref_stream, strict)


def _checked_xref_table(stream: Any, strict: bool) -> Iterator[_xref.XRefEntry]:
    """pyHanko's ``parse_xref_table``, counted: its rows are data, so only the totals matter."""
    budget = _budget()
    budget.section()
    for n, entry in enumerate(_ORIGINAL_TABLE(stream, strict), start=1):
        if n % 1024 == 0:
            budget.add(1024)
        yield entry


def install() -> None:
    """Route pyHanko's cross-reference parsing through the checks above (idempotent).

    ``XRefBuilder`` looks both parsers up as module globals of ``pyhanko.pdf_utils.xref`` at call
    time; pyHanko offers no other hook into cross-reference reading.
    """
    _xref.parse_xref_stream = _checked_xref_stream  # type: ignore[assignment]
    _xref.parse_xref_table = _checked_xref_table


@contextmanager
def structure_checks() -> Iterator[None]:
    """pyHanko checks parts of a file's structure with bare ``assert`` (the catalogue and a
    signature value are dictionaries, an xref stream has /Type /XRef); while it reads, such an
    AssertionError is a malformed file, reported as pyHanko's ``PdfReadError``."""
    try:
        yield
    except AssertionError as e:
        frames = traceback.extract_tb(e.__traceback__)
        where = frames[-1].name if frames else "?"
        raise PdfReadError(f"malformed PDF structure (pyHanko's check in {where})") from e


def open_pdf(data: bytes, limits: ReadingLimits) -> PdfFileReader:
    """A non-strict pyHanko reader over ``data`` that respects ``limits``.

    Raises :class:`LimitExceeded`, or pyHanko's errors for a malformed file.
    """
    install()
    with _reading(limits), structure_checks():
        try:
            reader = PdfFileReader(
                BytesIO(data), strict=False, decode_limits=limits.decode_limits()
            )
            reader.root  # noqa: B018 (pyHanko asserts the catalogue is a dictionary, lazily)
        except PdfDecodeLimitError as e:
            raise decode_limit(e, limits) from e
    size = reader.trailer.raw_get("/Size")
    if isinstance(size, int) and size > limits.max_xref_entries:
        raise LimitExceeded(
            f"the trailer declares {size} objects, more than {limits.max_xref_entries}"
        )
    return reader


def decode_limit(error: PdfDecodeLimitError, limits: ReadingLimits) -> LimitExceeded:
    """pyHanko's decode-limit error, named as our limit."""
    return LimitExceeded(
        f"decoded stream data exceeds the limit ({error}; document budget "
        f"{limits.max_decoded_bytes // MiB} MiB)"
    )


def signature_fields(
    reader: PdfFileReader, limits: ReadingLimits
) -> list[tuple[str, generic.DictionaryObject]]:
    """The document's filled signature fields (name, field), refused when there are too many or
    fields share one value.

    Counts the filled signature fields before pyHanko builds a signature object for each: 200
    fields pointing at one signature value would otherwise mean 200 validations (and fetches).
    Fields sharing one value are malformed (pyHanko's ``PdfReadError``), not a limit.
    """
    cap = limits.max_signatures
    with structure_checks():
        fields = list(itertools.islice(enumerate_sig_fields(reader, filled_status=True), cap + 1))
    if len(fields) > cap:
        raise LimitExceeded(f"the document has more than {cap} signature fields")
    seen: dict[tuple[int, int], str] = {}
    found: list[tuple[str, generic.DictionaryObject]] = []
    for name, _value, field in fields:
        field = field.get_object()
        if not isinstance(field, generic.DictionaryObject):
            raise PdfReadError(f"signature field {name} is not a dictionary")
        ref = field.raw_get("/V")
        if isinstance(ref, generic.IndirectObject):
            key = (ref.idnum, ref.generation)
            if key in seen:
                raise PdfReadError(
                    f"signature fields {seen[key]} and {name} share one signature value"
                )
            seen[key] = str(name)
        found.append((str(name), field))
    return found


def embedded_signatures(reader: PdfFileReader, limits: ReadingLimits) -> list[EmbeddedPdfSignature]:
    """pyHanko's signature objects for the fields :func:`signature_fields` admits (pyHanko skips
    SubFilters it does not know and raises on the first unreadable CMS)."""
    signature_fields(reader, limits)
    with structure_checks():
        return list(reader.embedded_signatures)


class CpuTimeExceeded(BaseException):
    """Raised in the main thread by :func:`cpu_time_limit` when the process has used its CPU time.

    A ``BaseException`` like ``KeyboardInterrupt``: pyHanko's ``except Exception`` clauses must not
    turn it into a verdict on a signature; the caller turns it into one verdict on the file.
    """


@contextmanager
def cpu_time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CpuTimeExceeded` once this process has spent ``seconds`` more CPU time
    (``ITIMER_PROF``; network waits do not count). Main thread only; for one-shot processes such
    as ``esign verify FILE`` (a service uses :mod:`verify.isolate`, which can kill)."""

    def expired(signum: int, frame: object) -> None:
        raise CpuTimeExceeded(f"CPU time limit {seconds:g} s exceeded")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def cap_address_space(limit: int) -> int:
    """Lower this process's address-space limit (RLIMIT_AS) to at most ``limit``; returns the cap
    in force. A runaway allocation then raises ``MemoryError`` instead of exhausting the host."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        return limit
    return soft


def memory_limit() -> str:
    """The memory limit a ``MemoryError`` hit, named: this process's address-space limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return "memory exhausted"
    return f"memory limit {size_text(soft)} exceeded"


def size_text(n: int) -> str:
    """``1 GiB``, ``300 MiB``: a limit as a person reads it."""
    return f"{n // GiB} GiB" if n % GiB == 0 else f"{n / MiB:.0f} MiB"


def limit_report(
    name: str, detail: str, at: datetime | None = None, online: bool = True
) -> DocumentReport:
    """TOTAL-FAILED/FORMAT_FAILURE for a file that hit a resource limit, naming the limit."""
    text = explain("FORMAT_FAILURE", Indication.TOTAL_FAILED)
    return DocumentReport(
        file=name,
        indication=Indication.TOTAL_FAILED,
        subindication="FORMAT_FAILURE",
        explanation=Text(f"{text.mn} ({detail})", f"{text.en} ({detail})"),
        validation_time=at or datetime.now(UTC),
        revocation_mode="online" if online else "offline",
    )


__all__ = [
    "CpuTimeExceeded",
    "LimitExceeded",
    "ReadingLimits",
    "cap_address_space",
    "cpu_time_limit",
    "decode_limit",
    "embedded_signatures",
    "install",
    "limit_report",
    "memory_limit",
    "open_pdf",
    "signature_fields",
    "size_text",
    "structure_checks",
]
