"""LibreOffice "hybrid" PDFs: the trailer's /AdditionalStreams names the embedded ODF source.

Once other tools have updated such a file, that reference can name an object no xref section
defines. A reference to an undefined object is legal and reads as null (ISO 32000-2 7.3.10), and
a later update may define an object under that number (pyHanko's LTV update numbers its /DSS
from the trailer's /Size). pyHanko's difference analysis trips on both: a KeyError while it
looks for orphaned objects, and "unexplained xrefs" because the signed revision's trailer "used"
the number. Viewers never show what /AdditionalStreams names, so neither changes a signed page.

The same reading of undefined numbers, made precise for the difference analysis: filling in a
number the signed revision referred to anywhere else is refused (it changes what a page shows);
a number it neither defined nor referred to is as fresh as one past its /Size (writers such as
poppler reuse the numbers pyHanko's writer skips).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader, RawPdfPath
from pyhanko.sign.diff_analysis import (
    ModificationLevel,
    QualifiedWhitelistRule,
    ReferenceUpdate,
    SuspiciousModification,
)
from pyhanko.sign.diff_analysis.rules_api import Context

__all__ = [
    "AdditionalStreamsRule",
    "DanglingReferenceRule",
    "dangling_reads_as_null",
    "unused_numbers_are_fresh",
]

_KEY = "/AdditionalStreams"


def dangling_reads_as_null(reader: PdfFileReader) -> None:
    """Make pyHanko's dependency scan treat a reference that no revision defines as null.

    ``XRefCache.get_introducing_revision`` raises KeyError for such a reference; its only caller
    (``HistoricalResolver.collect_dependencies``) asks whether the object is new in a revision. An
    object no revision defines is new in none (-1), so the scan neither counts nor follows it,
    exactly as for the null it reads as. A per-reader override: nothing global is patched.

    The answer is remembered per reader: pyHanko scans every xref section for it, and the
    difference analysis of each signature asks again about the same objects of the same later
    revisions (a third of a 25-signature file's verification, bench/many_signatures.py). The
    sections never change once read, and the memo holds one int per object of this document.
    """
    xrefs = reader.xrefs
    introducing = xrefs.get_introducing_revision
    known: dict[generic.Reference, int] = {}

    def get_introducing_revision(ref: generic.Reference) -> int:
        try:
            return known[ref]
        except KeyError:
            pass
        try:
            revision = int(introducing(ref))
        except KeyError:
            revision = -1
        known[ref] = revision
        return revision

    xrefs.get_introducing_revision = get_introducing_revision  # type: ignore[method-assign]


def unused_numbers_are_fresh(reader: PdfFileReader) -> None:
    """Let pyHanko's difference analysis take an object for new when its number was never defined
    and never referred to in the older revision, as it does for numbers past that revision's /Size.

    pyHanko decides newness by /Size alone (``HistoricalResolver.is_ref_unassignable``), yet the
    numbers below /Size that no revision defined are free (ISO 32000-2 7.5.4), and writers reuse
    them: poppler's second signature takes the numbers pyHanko's updates skipped, so its new field
    read as "clobbering" an object that never existed. A number some object of the older revision
    referred to (in any generation) is not fresh: that is DanglingReferenceRule's business.
    Per reader, through its cache of historical views; nothing global is patched.
    """
    views = reader.get_historical_resolver

    def get_historical_resolver(revision: int) -> HistoricalResolver:
        view = views(revision)
        if getattr(view, "_esign_fresh", False):
            return view
        by_size = view.is_ref_unassignable
        referred: set[int] | None = None

        def is_ref_unassignable(ref: generic.Reference) -> bool:
            nonlocal referred
            if by_size(ref):
                return True
            if _ever_defined(view, ref.idnum):
                return False
            if referred is None:
                view._load_reverse_xref_cache()
                cache = view._indirect_object_access_cache or {}
                referred = {r.idnum for r in cache}
            return ref.idnum not in referred

        view.is_ref_unassignable = is_ref_unassignable  # type: ignore[method-assign]
        view._esign_fresh = True  # type: ignore[attr-defined]
        return view

    reader.get_historical_resolver = get_historical_resolver  # type: ignore[method-assign]


def _ever_defined(view: HistoricalResolver, idnum: int) -> bool:
    """Whether any xref section up to ``view``'s revision has an entry (in use or freed) for
    ``idnum``."""
    xrefs = view.reader.xrefs
    for rev in range(view.revision + 1):
        data = xrefs.get_xref_data(rev)
        sections = [data] + ([data.hybrid.xref_data] if data.hybrid is not None else [])
        for section in sections:
            if (
                idnum in section.standard_xrefs
                or idnum in section.xrefs_in_objstm
                or idnum in section.freed
            ):
                return True
    return False


def _dangling(old: HistoricalResolver, ref: generic.Reference) -> bool:
    return old.reader.xrefs.get_historical_ref(ref, old.revision) is None


def _in_additional_streams(path: RawPdfPath) -> bool:
    nodes = tuple(path)
    return len(nodes) == 2 and nodes[0] == _KEY and isinstance(nodes[1], int)


class DanglingReferenceRule(QualifiedWhitelistRule):
    """Objects an update defines under a number the signed revision referred to but did not define
    (a reference that read as null when signed).

    Referred to only by the trailer's /AdditionalStreams (LibreOffice hybrid files), that is
    harmless: nothing renders it, and the definition is approved at the LTA level. Referred to
    anywhere else (a page's /Contents, an annotation, a form field), filling it in changes what the
    signed document shows without touching a signed object: refused. pyHanko's orphan scan would
    otherwise take such an object for an unreferenced one and wave it through.
    """

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        for ref in new.explicit_refs_in_revision():
            if not _dangling(old, ref):
                continue
            old._load_reverse_xref_cache()  # built already by pyHanko's policy: no cost
            usages = old._get_usages_of_ref(ref)
            if not usages:
                continue  # a fresh number nothing signed referred to: pyHanko's usual rules
            shown = [p for p in usages if not _in_additional_streams(p)]
            if shown:
                raise SuspiciousModification(
                    f"Object {ref.idnum}, referred to by the signed revision at {shown[0]} but "
                    "undefined (null) when signed, was defined after signing."
                )
            for path in usages:
                where = Context.from_absolute(old, path)
                yield ModificationLevel.LTA_UPDATES, ReferenceUpdate(ref, context_checked=where)


AdditionalStreamsRule = DanglingReferenceRule
"""The name this rule was announced under."""
