"""The difference-analysis policy the verifier judges later revisions by: pyHanko's standard rules,
widened only where the standards allow a change that pyHanko's defaults call suspicious.

Each widening keeps what a signed page shows fixed:
- LTV updates may add certificates, OCSP responses and CRLs to an existing /DSS /VRI entry, or
  supersede its revocation data by newer data for the same certificates, and the /VRI dictionary
  may carry /Type /VRI (Adobe, iText and multi-signer LTV do this). Nothing is dropped without a
  newer replacement, and a revoked status stays revoked (pyHanko itself already lets /DSS arrays
  lose items; the VRI is only an index into them).
- an object may be freed (e.g. "65535 f") when the signed revision had no live object with that
  number, or when nothing refers to it any more (and no later revision does); an object stream is
  never freed;
- an object rewritten with the same content after dereferencing (a page whose /Resources became an
  identical new object) is no change;
- form filling may set a list box's selected indices (/I, ISO 32000-2 12.7.5.4) with its value;
- a page that gains a signature widget may also gain an inheritable attribute (/MediaBox ...) set
  to the value it inherited.

Built on pyHanko 0.38 internals where no public hook exists (_validate_dss_substructure, the
module-level compare_dicts of form_field_rules): tests/verify/test_allowed_changes.py fails if an
upgrade moves them. The analysis runs with verify/_fastdiff.py's equivalents of two reader
internals (the path map of the signed revision); tests/verify/test_fastdiff.py pins those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from asn1crypto import crl, ocsp
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader, RawPdfPath
from pyhanko.sign.diff_analysis import (
    CatalogModificationRule,
    DiffResult,
    DocInfoRule,
    FormUpdatingRule,
    GenericFieldModificationRule,
    MetadataUpdateRule,
    ModificationLevel,
    ObjectStreamRule,
    QualifiedWhitelistRule,
    ReferenceUpdate,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
    SuspiciousModification,
    WhitelistRule,
    XrefStreamRule,
)
from pyhanko.sign.diff_analysis.commons import assert_not_stream, compare_key_refs
from pyhanko.sign.diff_analysis.commons import compare_dicts as _pyhanko_compare_dicts
from pyhanko.sign.diff_analysis.constants import VALUE_UPDATE_KEYS
from pyhanko.sign.diff_analysis.form_rules_api import FieldComparisonContext, FormUpdate
from pyhanko.sign.diff_analysis.rules import form_field_rules
from pyhanko.sign.diff_analysis.rules.form_field_rules import _validate_dss_substructure
from pyhanko.sign.diff_analysis.rules_api import Context
from pyhanko.sign.fields import FieldMDPSpec, MDPPerm

from . import _fastdiff
from .hybrid import AdditionalStreamsRule

__all__ = ["ESIGN_DIFF_POLICY", "AdditiveDSSRule", "HarmlessFreeRule", "IdenticalCopyRule"]

_VRI_KEY = re.compile(r"/[A-Za-z0-9]{40}")  # pyHanko: [A-Z0-9]; some writers use lower-case hex
_DSS_STREAM_KEYS = frozenset({"/Certs", "/CRLs", "/OCSPs"})
_DSS_KEYS = frozenset({"/Type", "/VRI"}) | _DSS_STREAM_KEYS
_VRI_STREAM_KEYS = frozenset({"/Cert", "/CRL", "/OCSP"})
_VRI_ENTRY_KEYS = frozenset({"/Type", "/TU", "/TS"}) | _VRI_STREAM_KEYS

# An identical-copy comparison gives up (judges "different") past this many objects: a copy of a
# page's resources is small; a huge graph is not worth the time and is not trusted blindly.
_COMPARE_BUDGET = 20_000


def _deref(value: generic.PdfObject) -> generic.PdfObject:
    return value.get_object() if isinstance(value, generic.IndirectObject) else value


def _stream_payloads(entry: generic.DictionaryObject, key: str) -> set[bytes]:
    """The decoded contents of the DER streams listed under ``key`` (none if absent).

    Remembered on the entry object itself: pyHanko diffs each signed revision against every later
    one, so one revision's VRI entries are read once per signature (a third of a 25-signature
    file's verification, bench/many_signatures.py). A historical revision's objects never change
    once read, and the memo dies with the document's reader.
    """
    memo: dict[str, frozenset[bytes]] = entry.__dict__.setdefault("_esign_payloads", {})
    known = memo.get(key)
    if known is None:
        known = memo[key] = frozenset(_read_payloads(entry, key))
    return set(known)


def _read_payloads(entry: generic.DictionaryObject, key: str) -> set[bytes]:
    try:
        arr = _deref(entry.raw_get(key))
    except KeyError:
        return set()
    if not isinstance(arr, generic.ArrayObject):
        raise SuspiciousModification(f"VRI {key} is not an array")
    out = set()
    for item in arr:
        stream = _deref(item)
        if not isinstance(stream, generic.StreamObject):
            raise SuspiciousModification(f"VRI {key} holds something other than a stream")
        out.add(stream.data)
    return out


class AdditiveDSSRule(WhitelistRule):
    """pyHanko's DSSCompareRule, except that an existing VRI entry may gain data (never lose it)
    and the /VRI dictionary may carry /Type /VRI."""

    def apply(self, old: HistoricalResolver, new: HistoricalResolver) -> Iterable[ReferenceUpdate]:
        dss_context = Context.from_absolute(old, RawPdfPath("/Root", "/DSS"))
        old_dss, new_dss = yield from misc.map_with_return(
            compare_key_refs("/DSS", old, old.root, new.root),
            ReferenceUpdate.curry_ref(context_checked=dss_context),
        )
        if new_dss is None:
            return
        if old_dss is None:
            old_dss = generic.DictionaryObject()
        if not isinstance(old_dss, generic.DictionaryObject):
            raise misc.PdfReadError("/DSS is not a dictionary")
        if not isinstance(new_dss, generic.DictionaryObject):
            raise SuspiciousModification("/DSS is not a dictionary")
        unexpected = set(new_dss.keys()) - _DSS_KEYS
        if unexpected:
            raise SuspiciousModification(f"Unexpected keys in DSS: {unexpected}.")
        yield from _validate_dss_substructure(
            old, new, old_dss, new_dss, _DSS_STREAM_KEYS, is_vri=False, context=dss_context
        )
        old_vri, new_vri = yield from misc.map_with_return(
            compare_key_refs("/VRI", old, old_dss, new_dss),
            ReferenceUpdate.curry_ref(
                context_checked=Context.from_absolute(old, RawPdfPath("/Root", "/DSS", "/VRI"))
            ),
        )
        if new_vri is None:
            return
        if not isinstance(new_vri, generic.DictionaryObject):
            raise SuspiciousModification("/VRI is not a dictionary")
        if old_vri is None:
            old_vri = generic.DictionaryObject()
        elif not isinstance(old_vri, generic.DictionaryObject):
            raise misc.PdfReadError("/VRI is not a dictionary")
        yield from _check_vri(old, new, old_vri, new_vri)


def _check_vri(
    old: HistoricalResolver,
    new: HistoricalResolver,
    old_vri: generic.DictionaryObject,
    new_vri: generic.DictionaryObject,
) -> Iterator[ReferenceUpdate]:
    for key in list(old_vri):
        if key not in new_vri:
            raise SuspiciousModification(f"VRI key {key} was deleted.")
    for key in list(new_vri):
        new_raw = new_vri.raw_get(key)
        if key == "/Type":
            if new_raw != "/VRI":
                raise SuspiciousModification("/Type of the /VRI dictionary is not /VRI")
            continue
        if not _VRI_KEY.fullmatch(key):
            raise SuspiciousModification(f"VRI key {key} is not formatted correctly.")
        context = Context.from_absolute(old, RawPdfPath("/Root", "/DSS", "/VRI", key))
        old_raw = old_vri.raw_get(key) if key in old_vri else None
        if isinstance(new_raw, generic.IndirectObject):
            ref = new_raw.reference
            same = isinstance(old_raw, generic.IndirectObject) and old_raw.reference == ref
            if same:
                # the entry's object itself may have been rewritten in this revision
                yield ReferenceUpdate(ref, context_checked=context)
            elif old.is_ref_unassignable(ref):
                yield ReferenceUpdate(ref)
            # else: an object that existed when signed, shared (as pyHanko allows); approving it is
            # left to no one, so if this revision rewrote it, that rewrite stays unexplained
        old_entry = _deref(old_raw) if old_raw is not None else generic.DictionaryObject()
        new_entry = _deref(new_raw)
        assert_not_stream(new_entry)
        if not isinstance(new_entry, generic.DictionaryObject) or not isinstance(
            old_entry, generic.DictionaryObject
        ):
            raise SuspiciousModification("VRI entries should be dictionaries")
        unexpected = set(new_entry.keys()) - _VRI_ENTRY_KEYS
        if unexpected:
            raise SuspiciousModification(f"Unexpected keys in VRI dictionary: {unexpected}.")
        _check_additive(key, old_entry, new_entry)
        yield from _validate_dss_substructure(
            old, new, old_entry, new_entry, _VRI_STREAM_KEYS, is_vri=True, context=context
        )
        try:
            ts_ref = new_entry.get_value_as_reference("/TS", optional=True)
        except misc.IndirectObjectExpected:
            ts_ref = None
        if ts_ref is not None and old.is_ref_unassignable(ts_ref):
            yield ReferenceUpdate(ts_ref)


def _check_additive(
    key: str, old_entry: generic.DictionaryObject, new_entry: generic.DictionaryObject
) -> None:
    """What a VRI entry held before must still be there, or be superseded by newer data of the
    same kind: a later OCSP response for the same certificates (a revoked status stays revoked), a
    later CRL of the same issuer still listing what the old one revoked. Certificates and the /TS
    timestamp are never dropped. (iText's LtvVerification rewrites entries this way.)"""
    for sub in _VRI_STREAM_KEYS:
        new_items = _stream_payloads(new_entry, sub)
        lost = _stream_payloads(old_entry, sub) - new_items
        if sub == "/OCSP":
            lost = {d for d in lost if not _ocsp_superseded(d, new_items)}
        elif sub == "/CRL":
            lost = {d for d in lost if not _crl_superseded(d, new_items)}
        if lost:
            raise SuspiciousModification(f"VRI key {key} was modified: {sub} entries removed.")
    if "/TS" in old_entry:
        old_ts = _deref(old_entry.raw_get("/TS"))
        new_ts = _deref(new_entry.raw_get("/TS")) if "/TS" in new_entry else None
        if not (
            isinstance(old_ts, generic.StreamObject)
            and isinstance(new_ts, generic.StreamObject)
            and old_ts.data == new_ts.data
        ):
            raise SuspiciousModification(f"VRI key {key} was modified: /TS replaced.")


_OcspStatus = dict[tuple[str, bytes, bytes, int], str]


def _ocsp_statuses(der: bytes) -> tuple[datetime, _OcspStatus] | None:
    """When an OCSP response was produced and the status it gives per certificate id."""
    try:
        resp = ocsp.OCSPResponse.load(der)
        tbs = resp["response_bytes"]["response"].parsed["tbs_response_data"]
        statuses: _OcspStatus = {}
        for single in tbs["responses"]:
            cid = single["cert_id"]
            ident = (
                cid["hash_algorithm"]["algorithm"].native,
                cid["issuer_name_hash"].native,
                cid["issuer_key_hash"].native,
                cid["serial_number"].native,
            )
            statuses[ident] = single["cert_status"].name
        return tbs["produced_at"].native, statuses
    except (ValueError, TypeError, KeyError):
        return None


def _ocsp_superseded(old_der: bytes, new_ders: set[bytes]) -> bool:
    old = _ocsp_statuses(old_der)
    if old is None or not old[1]:
        return False
    parsed = [p for p in (_ocsp_statuses(d) for d in new_ders) if p is not None]
    for ident, status in old[1].items():
        if not any(
            at >= old[0] and ident in st and (status != "revoked" or st[ident] == "revoked")
            for at, st in parsed
        ):
            return False
    return True


def _crl_facts(der: bytes) -> tuple[bytes, datetime, set[int]] | None:
    try:
        tbs = crl.CertificateList.load(der)["tbs_cert_list"]
        revoked = {r["user_certificate"].native for r in tbs["revoked_certificates"]}
        return tbs["issuer"].dump(), tbs["this_update"].native, revoked
    except (ValueError, TypeError, KeyError):
        return None


def _crl_superseded(old_der: bytes, new_ders: set[bytes]) -> bool:
    old = _crl_facts(old_der)
    if old is None:
        return False
    for facts in (_crl_facts(d) for d in new_ders):
        if facts is not None and facts[0] == old[0] and facts[1] >= old[1] and old[2] <= facts[2]:
            return True
    return False


def _live_in(old: HistoricalResolver, idnum: int) -> bool:
    """Whether the revision ``old`` has an in-use object with number ``idnum``."""
    xrefs = old.reader.xrefs
    for rev in range(old.revision, -1, -1):
        data = xrefs.get_xref_data(rev)
        sections = [data] + ([data.hybrid.xref_data] if data.hybrid is not None else [])
        for section in sections:
            if idnum in section.standard_xrefs or idnum in section.xrefs_in_objstm:
                return True
            if idnum in section.freed:
                return False
    return False


def _object_streams(rev: HistoricalResolver) -> set[int]:
    """Numbers of the object streams any revision up to ``rev`` stores objects in."""
    xrefs = rev.reader.xrefs
    found: set[int] = set()
    for r in range(rev.revision + 1):
        data = xrefs.get_xref_data(r)
        sections = [data] + ([data.hybrid.xref_data] if data.hybrid is not None else [])
        for section in sections:
            found.update(loc.obj_stream_id for loc in section.xrefs_in_objstm.values())
    return found


class HarmlessFreeRule(QualifiedWhitelistRule):
    """Free entries (Acrobat writes "65535 f") that cannot change what the document shows: the
    number was not in use when signed, or nothing in the new revision refers to it any more (what
    referred to it changed, and that change is judged by the other rules). Any other freeing fails,
    as with pyHanko's default: viewers read a freed number as null."""

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        freed = new.refs_freed_in_revision()
        # numbers freed since signing, here or in an earlier update, that were in use when signed
        # and are still free: nothing in this revision may refer to them
        xrefs = new.reader.xrefs
        since = {
            ref.idnum
            for rev in range(old.revision + 1, new.revision + 1)
            for ref in xrefs.refs_freed_in_revision(rev)
        }
        gone = {n for n in since if _live_in(old, n) and not _live_in(new, n)}
        if not freed and not gone:
            return
        streams = _object_streams(new)
        for ref in freed:
            if ref.idnum in streams:
                # objects stored in it stay listed in the xref: viewers could no longer load them
                raise SuspiciousModification(f"Object stream {ref.idnum} was freed.")
        if gone:
            reachable = {r.idnum for r in new.collect_dependencies(new.trailer_view)}
            used = sorted(gone & reachable)
            if used:
                raise SuspiciousModification(
                    f"Object {used[0]}, in use when signed and freed since, is referred to."
                )
        for ref in freed:
            yield ModificationLevel.LTA_UPDATES, ReferenceUpdate(ref)


def _read(rev: HistoricalResolver | None, ref: generic.IndirectObject) -> generic.PdfObject:
    """``ref`` read in revision ``rev`` (or by the reference's own resolver)."""
    value: generic.PdfObject = rev(ref.reference) if rev is not None else ref.get_object()
    return value


class _Budget:
    def __init__(self, n: int) -> None:
        self.left = n


def _same(
    a: generic.PdfObject,
    b: generic.PdfObject,
    old: HistoricalResolver | None,
    new: HistoricalResolver | None,
    seen: set[tuple[tuple[int, int], tuple[int, int]]],
    fresh: set[generic.Reference],
    budget: _Budget,
) -> bool:
    """Whether ``a`` (read in ``old``) and ``b`` (read in ``new``) are the same content once
    indirect references are followed. A reference kept as is counts as the same: a rewrite of
    that object is its own change, judged on its own."""
    budget.left -= 1
    if budget.left < 0:
        return False
    if isinstance(a, generic.IndirectObject) and isinstance(b, generic.IndirectObject):
        ka, kb = (a.idnum, a.generation), (b.idnum, b.generation)
        if ka == kb:
            return True
        if (ka, kb) in seen:
            return True
        seen.add((ka, kb))
        if old is not None and old.is_ref_unassignable(b.reference):
            fresh.add(b.reference)
        return _same(_read(old, a), _read(new, b), old, new, seen, fresh, budget)
    if isinstance(a, generic.IndirectObject):
        return _same(_read(old, a), b, old, new, seen, fresh, budget)
    if isinstance(b, generic.IndirectObject):
        if old is not None and old.is_ref_unassignable(b.reference):
            fresh.add(b.reference)
        return _same(a, _read(new, b), old, new, seen, fresh, budget)
    if isinstance(a, generic.DictionaryObject):
        if not isinstance(b, generic.DictionaryObject) or set(a.keys()) != set(b.keys()):
            return False
        if isinstance(a, generic.StreamObject) != isinstance(b, generic.StreamObject):
            return False
        if (
            isinstance(a, generic.StreamObject)
            and isinstance(b, generic.StreamObject)
            and a.encoded_data != b.encoded_data
        ):
            return False
        return all(_same(a.raw_get(k), b.raw_get(k), old, new, seen, fresh, budget) for k in a)
    if isinstance(a, generic.ArrayObject):
        return (
            isinstance(b, generic.ArrayObject)
            and len(a) == len(b)
            and all(_same(x, y, old, new, seen, fresh, budget) for x, y in zip(a, b, strict=True))
        )
    strings = (generic.TextStringObject, generic.ByteStringObject)
    if isinstance(a, strings):
        return isinstance(b, strings) and a.original_bytes == b.original_bytes
    return type(a) is type(b) and a == b


class IdenticalCopyRule(QualifiedWhitelistRule):
    """An object rewritten with the same content once references are followed (e.g. a page whose
    /Resources were replaced by an identical new object): approved with the new copies it uses."""

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        xrefs = old.reader.xrefs
        budget = _Budget(_COMPARE_BUDGET)
        for ref in new.explicit_refs_in_revision():
            if old.is_ref_unassignable(ref) or xrefs.get_historical_ref(ref, old.revision) is None:
                continue
            fresh: set[generic.Reference] = set()
            try:
                same = _same(old(ref), new(ref), old, new, set(), fresh, budget)
            except (misc.PdfError, RecursionError, KeyError, ValueError, TypeError):
                same = False  # unreadable: not proven identical
            if not same:
                continue
            yield ModificationLevel.LTA_UPDATES, ReferenceUpdate(ref)
            for copy in fresh:
                yield ModificationLevel.LTA_UPDATES, ReferenceUpdate(copy)


# Page attributes a page inherits from its /Pages ancestors (ISO 32000-2 7.7.3.4).
_INHERITABLE = frozenset({"/Resources", "/MediaBox", "/CropBox", "/Rotate"})


def _inherited(page: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    node: generic.PdfObject = page
    for _ in range(64):
        if not isinstance(node, generic.DictionaryObject) or "/Parent" not in node:
            return None
        node = node["/Parent"]
        if isinstance(node, generic.DictionaryObject) and key in node:
            value: generic.PdfObject = node.raw_get(key)
            return value
    return None


def _materialising_compare_dicts(
    old_dict: generic.PdfObject | None,
    new_dict: generic.PdfObject | None,
    ignored: frozenset[str] = frozenset(),
    raise_exc: bool = True,
) -> bool:
    """pyHanko's compare_dicts, except that a page may gain an inheritable attribute whose value
    is the one it inherited (iText copies /MediaBox onto the page when it adds a widget)."""
    if (
        isinstance(old_dict, generic.DictionaryObject)
        and isinstance(new_dict, generic.DictionaryObject)
        and old_dict.get("/Type") == "/Page"
    ):
        same = set()
        for key in (set(new_dict.keys()) - set(old_dict.keys())) & _INHERITABLE:
            try:
                inherited = _inherited(old_dict, key)
                value = new_dict.raw_get(key)
                if inherited is not None and _same(
                    inherited, value, None, None, set(), set(), _Budget(_COMPARE_BUDGET)
                ):
                    same.add(key)
            except (misc.PdfError, RecursionError, KeyError, ValueError, TypeError):
                pass  # unreadable: not proven identical, pyHanko's comparison decides
        ignored = ignored | same
    return _pyhanko_compare_dicts(old_dict, new_dict, ignored, raise_exc)


class MaterialisingSigFieldCreationRule(SigFieldCreationRule):
    """pyHanko's SigFieldCreationRule (new signature fields and their widgets on a page's /Annots),
    where the page may also have gained an inherited attribute with its inherited value."""

    def apply(
        self, context: FieldComparisonContext
    ) -> Iterator[tuple[ModificationLevel, FormUpdate]]:
        # form_field_rules looks compare_dicts up as a module global when the page is compared;
        # swapped only while this rule runs (the analysis is synchronous), restored after.
        saved = getattr(form_field_rules, "compare_dicts")  # noqa: B009
        setattr(form_field_rules, "compare_dicts", _materialising_compare_dicts)  # noqa: B010
        try:
            yield from super().apply(context)
        finally:
            setattr(form_field_rules, "compare_dicts", saved)  # noqa: B010


class _EsignDiffPolicy(StandardDiffPolicy):
    """pyHanko's StandardDiffPolicy, run with faster equivalents of the two reader internals it
    spends most of its time in (verify/_fastdiff.py)."""

    def review_file(
        self,
        reader: PdfFileReader,
        base_revision: int | HistoricalResolver,
        field_mdp_spec: FieldMDPSpec | None = None,
        doc_mdp: MDPPerm | None = None,
    ) -> DiffResult | SuspiciousModification:
        _fastdiff.install(reader)
        return super().review_file(reader, base_revision, field_mdp_spec, doc_mdp)


_LTA = ModificationLevel.LTA_UPDATES

ESIGN_DIFF_POLICY = _EsignDiffPolicy(
    global_rules=[
        CatalogModificationRule(),
        DocInfoRule().as_qualified(_LTA),
        XrefStreamRule().as_qualified(_LTA),
        ObjectStreamRule().as_qualified(_LTA),
        AdditiveDSSRule().as_qualified(_LTA),
        MetadataUpdateRule().as_qualified(_LTA),
        HarmlessFreeRule(),
        IdenticalCopyRule(),
        # LibreOffice hybrid files: an update may define what /AdditionalStreams named (Q)
        AdditionalStreamsRule(),
    ],
    form_rule=FormUpdatingRule(
        field_rules=[
            MaterialisingSigFieldCreationRule(),  # type: ignore[no-untyped-call]
            SigFieldModificationRule(),
            GenericFieldModificationRule(value_update_keys=VALUE_UPDATE_KEYS | {"/I"}),
        ],
    ),
    # freeing is judged by HarmlessFreeRule instead of being refused outright
    reject_object_freeing=False,
)
"""pyHanko's DEFAULT_DIFF_POLICY with the widenings above (same rules, same order otherwise)."""
