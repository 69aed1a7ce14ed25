"""LibreOffice "hybrid" PDFs: the trailer's /AdditionalStreams names the embedded ODF source.

Once other tools have updated such a file, that reference can name an object no xref section
defines. A reference to an undefined object is legal and reads as null (ISO 32000-2 7.3.10), and
a later update may define an object under that number (pyHanko's LTV update numbers its /DSS
from the trailer's /Size). pyHanko's difference analysis trips on both: a KeyError while it
looks for orphaned objects, and "unexplained xrefs" because the signed revision's trailer "used"
the number. Viewers never show what /AdditionalStreams names, so neither changes a signed page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader, RawPdfPath
from pyhanko.sign.diff_analysis import (
    ModificationLevel,
    QualifiedWhitelistRule,
    ReferenceUpdate,
)
from pyhanko.sign.diff_analysis.rules_api import Context

__all__ = ["AdditionalStreamsRule", "dangling_reads_as_null"]

_KEY = "/AdditionalStreams"


def dangling_reads_as_null(reader: PdfFileReader) -> None:
    """Make pyHanko's dependency scan treat a reference that no revision defines as null.

    ``XRefCache.get_introducing_revision`` raises KeyError for such a reference; its only caller
    (``HistoricalResolver.collect_dependencies``) asks whether the object is new in a revision. An
    object no revision defines is new in none (-1), so the scan neither counts nor follows it,
    exactly as for the null it reads as. A per-reader override: nothing global is patched.
    """
    xrefs = reader.xrefs
    introducing = xrefs.get_introducing_revision

    def get_introducing_revision(ref: generic.Reference) -> int:
        try:
            return int(introducing(ref))
        except KeyError:
            return -1

    xrefs.get_introducing_revision = get_introducing_revision  # type: ignore[method-assign]


def _dangling(old: HistoricalResolver, ref: generic.Reference) -> bool:
    return old.reader.xrefs.get_historical_ref(ref, old.revision) is None


class AdditionalStreamsRule(QualifiedWhitelistRule):
    """An update may define the object that the signed revision's trailer /AdditionalStreams
    named but did not define: that slot read as null when signed and nothing renders it.

    Only the trailer's use of the number is cleared. If anything else in the signed revision
    referred to the same undefined number (a page's /Contents, say), that use still needs its own
    justification, so a dangling reference planted in signed content cannot be filled in later.
    """

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        try:
            streams: Any = old.trailer_view.raw_get(_KEY)
        except KeyError:
            return
        if isinstance(streams, generic.IndirectObject):
            return  # an indirect array: not what LibreOffice writes; leave it to the other rules
        if not isinstance(streams, generic.ArrayObject):
            return
        defined = set(new.explicit_refs_in_revision())
        for ix, item in enumerate(streams):
            if not isinstance(item, generic.IndirectObject):
                continue
            ref = item.reference
            if ref in defined and _dangling(old, ref):
                where = Context.from_absolute(old, RawPdfPath(_KEY, ix))
                yield ModificationLevel.LTA_UPDATES, ReferenceUpdate(ref, context_checked=where)
