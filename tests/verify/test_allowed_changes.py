"""Changes made after signing that the standards allow (issue 8, classes 1 and 5), each beside a
neighbour that is not allowed.

Every file is signed with the test PKI and changed with pyHanko's incremental writer (or, for free
entries, a hand-appended xref section, as Acrobat writes them). Allowed: LTV data added to an
existing /DSS /VRI entry, /Type /VRI, free entries that cannot change the document, a page's
/Resources replaced by an identical copy, form filling under DocMDP P=2 and P=3, a list box's /I.
Each must be TOTAL-PASSED; each neighbour, which removes or changes something a signed page or its
validation data relied on, must not.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from esign import testpki
from esign.pades import PadesLevel
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from tests.verify.corpus import Forge, _page, _with_text_field, update
from verify import TrustConfig, Verifier, VerifyOptions, _fastdiff
from verify.diffpolicy import _EsignDiffPolicy
from verify.hybrid import dangling_reads_as_null, unused_numbers_are_fresh
from verify.report import DocumentReport, Indication

PASSED = Indication.TOTAL_PASSED


@pytest.fixture(autouse=True)
def _fast_analysis_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every difference analysis these tests run is also run with pyHanko's own walk and copy
    (verify/_fastdiff.py switched off, on a fresh reader): the outcomes must be the same."""
    real = _EsignDiffPolicy.review_file

    def checked(
        self: _EsignDiffPolicy,
        reader: PdfFileReader,
        base_revision: Any,
        field_mdp_spec: Any = None,
        doc_mdp: Any = None,
    ) -> Any:
        base = base_revision if isinstance(base_revision, int) else base_revision.revision
        data = reader.stream.getvalue()
        with monkeypatch.context() as m:
            m.setattr(_fastdiff, "install", lambda reader: None)
            plain = PdfFileReader(BytesIO(data), strict=False)
            dangling_reads_as_null(plain)
            unused_numbers_are_fresh(plain)
            expected = _outcome(lambda: real(self, plain, base, field_mdp_spec, doc_mdp))
        result = real(self, reader, base_revision, field_mdp_spec, doc_mdp)
        assert _outcome(lambda: result) == expected
        return result

    monkeypatch.setattr(_EsignDiffPolicy, "review_file", checked)


def _outcome(run: Callable[[], Any]) -> object:
    try:
        result = run()
    except Exception as e:
        return ("raised", type(e).__name__, str(e))
    if isinstance(result, Exception):
        return ("suspicious", str(result))
    return ("ok", result.modification_level, sorted(result.changed_form_fields))


@pytest.fixture(scope="module")
def forge(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Forge:
    sample = (REPO / "samples" / "certificate.pdf").read_bytes()
    return Forge(pki, services, sample, tmp_path_factory.mktemp("allowed"))


@pytest.fixture(scope="module")
def verifier(pki: testpki.TestPki) -> Verifier:
    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    return Verifier(trust, VerifyOptions(online=True))


@pytest.fixture(scope="module")
def signed_lt(forge: Forge) -> bytes:
    """B-LTA: the document timestamp covers the VRI entry, so later updates are judged against it
    (changes to LTV data that no signature or timestamp covers are not judged at all)."""
    signed = forge.sign(forge.sample, level=PadesLevel.B_LTA, field_name="Seal")
    reader = PdfFileReader(BytesIO(signed))
    seal, stamp = reader.embedded_signatures
    covered = reader.get_historical_resolver(stamp.signed_revision).root["/DSS"]["/VRI"]
    assert "/" + hashlib.sha1(seal.pkcs7_content).hexdigest().upper() in covered
    return signed


@pytest.fixture(scope="module")
def signed_bb(forge: Forge) -> bytes:
    return forge.sign(forge.sample)


def _show(report: DocumentReport) -> str:
    lines = [f"{report.indication.value} {report.subindication}"]
    for s in report.signatures:
        lines.append(f"  {s.field_name}: {s.indication.value} {s.subindication} {s.details}")
    return "\n".join(lines)


def assert_passed(verifier: Verifier, data: bytes) -> DocumentReport:
    report = verifier.verify_bytes(data)
    assert report.indication is PASSED, _show(report)
    assert report.signatures and all(s.indication is PASSED for s in report.signatures)
    return report


def assert_not_passed(verifier: Verifier, data: bytes) -> DocumentReport:
    report = verifier.verify_bytes(data)
    assert report.indication is not PASSED, _show(report)
    return report


# --- class 1: LTV updates to an existing VRI entry ------------------------------------------------


def _vri(w: IncrementalPdfFileWriter) -> tuple[generic.DictionaryObject, list[str]]:
    dss = w.root["/DSS"]
    w.mark_update(w.root.raw_get("/DSS"))
    vri = dss["/VRI"]
    if isinstance(dss.raw_get("/VRI"), generic.IndirectObject):
        w.mark_update(dss.raw_get("/VRI"))
    return vri, [k for k in vri if k != "/Type"]


def _add_cert_to_dss(w: IncrementalPdfFileWriter, der: bytes) -> generic.IndirectObject:
    ref = w.add_object(generic.StreamObject(stream_data=der))
    dss = w.root["/DSS"]
    certs = dss["/Certs"]
    dss["/Certs"] = generic.ArrayObject([*(certs.raw_get(i) for i in range(len(certs))), ref])
    return ref


def _first_signature_key(w: IncrementalPdfFileWriter) -> str:
    """The VRI key of the document's first signature: SHA-1 of its /Contents, upper-case hex."""
    sig = w.prev.embedded_signatures[0]
    return "/" + hashlib.sha1(sig.pkcs7_content).hexdigest().upper()


def _extend_vri(
    forge: Forge, in_place: bool = False, type_vri: bool = False
) -> Callable[[IncrementalPdfFileWriter], None]:
    """Add a certificate to the first signature's VRI entry (new object, or rewritten)."""

    def edit(w: IncrementalPdfFileWriter) -> None:
        vri, keys = _vri(w)
        key = _first_signature_key(w)
        assert key in keys
        entry_ref = vri.raw_get(key)
        entry = entry_ref.get_object()
        cert = _add_cert_to_dss(w, forge.key("official").signing_cert.dump())
        old = entry["/Cert"]
        grown = generic.ArrayObject([*(old.raw_get(i) for i in range(len(old))), cert])
        if in_place:
            entry["/Cert"] = grown
            w.mark_update(entry_ref)
        else:
            copy = generic.DictionaryObject({k: entry.raw_get(k) for k in entry})
            copy["/Cert"] = grown
            vri[key] = w.add_object(copy)
        if type_vri:
            vri["/Type"] = pdf_name("/VRI")

    return edit


def _replace_vri(forge: Forge) -> Callable[[IncrementalPdfFileWriter], None]:
    """Not allowed: the VRI entry's revocation data is dropped and its certificates replaced."""

    def edit(w: IncrementalPdfFileWriter) -> None:
        vri, _ = _vri(w)
        cert = _add_cert_to_dss(w, forge.key("official").signing_cert.dump())
        vri[_first_signature_key(w)] = w.add_object(
            generic.DictionaryObject(
                {"/Type": pdf_name("/VRI"), "/Cert": generic.ArrayObject([cert])}
            )
        )

    return edit


def test_vri_entry_extended(verifier: Verifier, forge: Forge, signed_lt: bytes) -> None:
    assert b"/VRI" in signed_lt
    assert_passed(verifier, update(signed_lt, _extend_vri(forge)))


def test_vri_entry_extended_in_place_with_type_vri(
    verifier: Verifier, forge: Forge, signed_lt: bytes
) -> None:
    assert_passed(verifier, update(signed_lt, _extend_vri(forge, in_place=True, type_vri=True)))


def test_vri_entry_replaced_fails(verifier: Verifier, forge: Forge, signed_lt: bytes) -> None:
    report = assert_not_passed(verifier, update(signed_lt, _replace_vri(forge)))
    assert report.indication is Indication.TOTAL_FAILED


def test_vri_junk_key_fails(verifier: Verifier, signed_lt: bytes) -> None:
    def edit(w: IncrementalPdfFileWriter) -> None:
        vri, _ = _vri(w)
        vri["/NotAHash"] = generic.DictionaryObject()

    assert_not_passed(verifier, update(signed_lt, edit))


def test_two_signers_second_ltv_extends_first_vri(verifier: Verifier, forge: Forge) -> None:
    """Seal signs with LTV data; Official countersigns at B-LT; Official's LTV update then adds its
    chain to Seal's VRI entry and types the VRI dictionary /Type /VRI."""
    first = forge.sign(forge.sample, level=PadesLevel.B_LT, field_name="Seal")
    second = forge.sign(first, label="official", level=PadesLevel.B_LT, field_name="Official")
    official = PdfFileReader(BytesIO(second)).embedded_signatures[1]
    covered = official.reader.get_historical_resolver(official.signed_revision)
    seal = official.reader.embedded_signatures[0]
    seal_key = "/" + hashlib.sha1(seal.pkcs7_content).hexdigest().upper()
    assert seal_key in covered.root["/DSS"]["/VRI"]  # Official signed over Seal's entry
    final = update(second, _extend_vri(forge, type_vri=True))
    report = assert_passed(verifier, final)
    assert [s.field_name for s in report.signatures] == ["Seal", "Official"]


def _fresh_ocsp(forge: Forge, label: str) -> bytes:
    """A new OCSP response for ``label``'s certificate from the test PKI's responder."""
    key = forge.key(label)
    issuer = next(c for c in key.chain if c.subject == key.signing_cert.issuer)
    fetcher = RequestsFetcherBackend().get_fetchers().ocsp_fetcher
    resp = asyncio.run(fetcher.fetch(key.signing_cert, AuthorityWithCert(issuer)))
    der: bytes = resp.dump()
    return der


def _supersede_ocsp(der: bytes) -> Callable[[IncrementalPdfFileWriter], None]:
    """Replace the OCSP responses of the (first) VRI entry by ``der``, as iText's second LTV run
    does (new objects for everything)."""

    def edit(w: IncrementalPdfFileWriter) -> None:
        vri, _ = _vri(w)
        key = _first_signature_key(w)
        entry = vri[key]
        ocsp_ref = w.add_object(generic.StreamObject(stream_data=der))
        dss = w.root["/DSS"]
        dss["/OCSPs"] = generic.ArrayObject([ocsp_ref])
        copy = generic.DictionaryObject({k: entry.raw_get(k) for k in entry})
        copy["/OCSP"] = generic.ArrayObject([ocsp_ref])
        vri[key] = w.add_object(copy)

    return edit


def test_vri_ocsp_superseded_by_newer(verifier: Verifier, forge: Forge, signed_lt: bytes) -> None:
    time.sleep(1.1)  # a response produced later than the embedded one
    assert_passed(verifier, update(signed_lt, _supersede_ocsp(_fresh_ocsp(forge, "seal"))))


def test_vri_ocsp_replaced_by_other_certificate_fails(
    verifier: Verifier, forge: Forge, signed_lt: bytes
) -> None:
    """Not allowed: the new response is about another certificate; the old one is gone."""
    report = assert_not_passed(
        verifier, update(signed_lt, _supersede_ocsp(_fresh_ocsp(forge, "official")))
    )
    assert report.indication is Indication.TOTAL_FAILED


# --- class 5: free entries ---------------------------------------------------------------------


def append_free(data: bytes, entries: list[tuple[int, int]], size: int | None = None) -> bytes:
    """Append an update whose xref section only frees ``(number, next generation)`` entries."""
    reader = PdfFileReader(BytesIO(data))
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    old_size = int(reader.trailer["/Size"])
    root = reader.trailer.raw_get("/Root")
    ids = reader.trailer.raw_get("/ID")
    sections = b"".join(b"%d 1\n%010d %05d f \n" % (n, 0, g) for n, g in sorted(entries))
    start = len(data)
    id_part = b""
    if ids is not None:
        id_part = b"/ID [<%s> <%s>] " % (
            ids[0].original_bytes.hex().encode(),
            ids[1].original_bytes.hex().encode(),
        )
    trailer = b"trailer\n<< /Size %d /Root %d %d R /Prev %d %s>>\n" % (
        size or old_size,
        root.idnum,
        root.generation,
        prev,
        id_part,
    )
    return data + b"xref\n" + sections + trailer + b"startxref\n%d\n%%%%EOF\n" % start


def _add_orphan(w: IncrementalPdfFileWriter) -> None:
    """An object nothing refers to (writers leave such objects behind)."""
    w.add_object(generic.DictionaryObject())


def _size(data: bytes) -> int:
    return int(PdfFileReader(BytesIO(data)).trailer["/Size"])


def test_free_object_zero_65535(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    signed = signed_bb
    assert_passed(verifier, append_free(signed, [(0, 65535)]))


def test_free_unused_numbers_65535_65534(
    signed_bb: bytes, verifier: Verifier, forge: Forge
) -> None:
    signed = signed_bb
    n = _size(signed)
    assert_passed(verifier, append_free(signed, [(0, 65535), (n, 65535), (n + 1, 65534)], n + 2))


def test_free_object_added_after_signing(
    verifier: Verifier, forge: Forge, signed_lt: bytes
) -> None:
    """An LTV update adds an object nothing uses; a later update frees it (65535)."""
    grown = update(signed_lt, _add_orphan)
    orphan = _size(grown) - 1
    assert _size(grown) > _size(signed_lt)
    assert_passed(verifier, append_free(grown, [(0, 65535), (orphan, 65535)]))


def test_free_page_content_fails(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    """Not allowed: freeing the page's content stream (viewers read it as null: a blank page)."""
    signed = signed_bb
    content = PdfFileReader(BytesIO(signed)).root["/Pages"]["/Kids"][0].raw_get("/Contents")
    for gen in (65535, 1):
        report = assert_not_passed(verifier, append_free(signed, [(content.idnum, gen)]))
        assert report.indication is Indication.TOTAL_FAILED


def _text_field_ref(w: IncrementalPdfFileWriter) -> generic.IndirectObject:
    arr = w.root["/AcroForm"]["/Fields"]
    ref: generic.IndirectObject = next(
        arr.raw_get(i) for i in range(len(arr)) if arr[i].get("/FT") == "/Tx"
    )
    return ref


def _text_field_ref_in(reader: PdfFileReader) -> generic.DictionaryObject:
    arr = reader.root["/AcroForm"]["/Fields"]
    field: generic.DictionaryObject = next(
        arr[i] for i in range(len(arr)) if arr[i].get("/FT") == "/Tx"
    )
    return field


def _appearance_number(data: bytes) -> int:
    w = IncrementalPdfFileWriter(BytesIO(data))
    ap: generic.IndirectObject = _text_field_ref(w).get_object()["/AP"].raw_get("/N")
    return int(ap.idnum)


def test_free_replaced_appearance_after_filling(
    verifier: Verifier, forge: Forge, certified_form: bytes
) -> None:
    """Acrobat-style: the filled field gets a new appearance and the old one is freed (65535)."""
    old_ap = _appearance_number(certified_form)
    filled = update(certified_form, _fill_text("B-9999"))
    assert _appearance_number(filled) != old_ap
    assert_passed(verifier, append_free(filled, [(0, 65535), (old_ap, 65535)]))


def test_free_appearance_still_in_use_fails(
    verifier: Verifier, forge: Forge, certified_form: bytes
) -> None:
    """Not allowed: the freed appearance is still the field's (viewers would show nothing)."""
    old_ap = _appearance_number(certified_form)
    report = assert_not_passed(verifier, append_free(certified_form, [(old_ap, 65535)]))
    assert report.indication is Indication.TOTAL_FAILED


def test_freed_appearance_referred_to_again_fails(
    verifier: Verifier, forge: Forge, certified_form: bytes
) -> None:
    """Not allowed: after the freeing update, a later one points the field back at the freed
    appearance (the field then reads as it did when signed, but viewers find no appearance)."""
    old_ap = _appearance_number(certified_form)
    filled = update(certified_form, _fill_text("B-9999"))
    freed = append_free(filled, [(old_ap, 65535)])

    def restore(w: IncrementalPdfFileWriter) -> None:
        signed_field = PdfFileReader(BytesIO(certified_form))
        ref = _text_field_ref(w)
        field = ref.get_object()
        before = _text_field_ref_in(signed_field)
        for key in ("/V", "/AP"):
            field[key] = before.raw_get(key)
        w.mark_update(ref)

    report = assert_not_passed(verifier, update(freed, restore))
    assert report.indication is Indication.TOTAL_FAILED


def test_free_object_stream_fails(verifier: Verifier, forge: Forge, tmp_path: Path) -> None:
    """Not allowed: freeing an object stream nothing refers to by reference, but whose objects
    (the page among them) the xref still places in it: viewers could no longer load them."""
    packed = tmp_path / "objstm.pdf"
    src = REPO / "samples" / "certificate.pdf"
    subprocess.run(["qpdf", "--object-streams=generate", str(src), str(packed)], check=True)
    signed = forge.sign(packed.read_bytes())
    streams = PdfFileReader(BytesIO(signed)).xrefs.object_streams_used_in(0)
    assert streams
    for stream in streams:
        report = assert_not_passed(verifier, append_free(signed, [(stream.idnum, 65535)]))
        assert report.indication is Indication.TOTAL_FAILED


# --- class 5: /Resources replaced by an identical copy -------------------------------------------


def _copy_resources(change_font: bool) -> Callable[[IncrementalPdfFileWriter], None]:
    def edit(w: IncrementalPdfFileWriter) -> None:
        page_ref, page = _page(w)
        res = page["/Resources"]
        copy = generic.DictionaryObject({k: res.raw_get(k) for k in res})
        fonts = res["/Font"]
        font_copy = generic.DictionaryObject()
        for name in fonts:
            font = fonts[name]
            new_font = generic.DictionaryObject({k: font.raw_get(k) for k in font})
            if change_font:
                new_font["/BaseFont"] = pdf_name("/Courier")
                new_font.pop("/FontDescriptor", None)
                new_font["/Subtype"] = pdf_name("/Type1")
            font_copy[name] = w.add_object(new_font)
        copy["/Font"] = font_copy
        page["/Resources"] = w.add_object(copy)
        w.mark_update(page_ref)

    return edit


def test_resources_identical_copy(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    signed = signed_bb
    assert_passed(verifier, update(signed, _copy_resources(change_font=False)))


def test_resources_changed_copy_fails(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    signed = signed_bb
    report = assert_not_passed(verifier, update(signed, _copy_resources(change_font=True)))
    assert report.indication is Indication.TOTAL_FAILED


# --- class 5: an inherited page attribute made explicit beside a new signature widget -----------


def _countersign_materialising(forge: Forge, media_box: list[float]) -> bytes:
    """A second signer whose writer also copies /MediaBox onto the page (iText does this when it
    adds a widget to /Annots)."""
    first = forge.sign(forge.sample, field_name="Seal")
    w = IncrementalPdfFileWriter(BytesIO(first))
    page_ref, page = _page(w)
    assert "/MediaBox" not in page and "/MediaBox" in w.root["/Pages"]
    page["/MediaBox"] = generic.ArrayObject(generic.FloatObject(v) for v in media_box)
    w.mark_update(page_ref)
    out = BytesIO()
    meta = signers.PdfSignatureMetadata(field_name="Official")
    signers.PdfSigner(meta, signer=forge.key("official").signer).sign_pdf(w, output=out)
    return out.getvalue()


def test_page_gains_its_inherited_media_box(verifier: Verifier, forge: Forge) -> None:
    inherited = [float(v) for v in PdfFileReader(BytesIO(forge.sample)).root["/Pages"]["/MediaBox"]]
    assert_passed(verifier, _countersign_materialising(forge, inherited))


def test_page_gains_a_different_media_box_fails(verifier: Verifier, forge: Forge) -> None:
    report = assert_not_passed(verifier, _countersign_materialising(forge, [0, 0, 300, 400]))
    assert report.signatures[0].indication is Indication.TOTAL_FAILED


# --- class 5: form filling --------------------------------------------------------------------


def _certify(forge: Forge, data: bytes, perm: fields.MDPPerm) -> bytes:
    key = forge.key()
    meta = signers.PdfSignatureMetadata(
        field_name="Certification", certify=True, docmdp_permissions=perm
    )
    out = BytesIO()
    signers.PdfSigner(meta, signer=key.signer).sign_pdf(
        IncrementalPdfFileWriter(BytesIO(data)), output=out
    )
    return out.getvalue()


def _fill_text(value: str) -> Callable[[IncrementalPdfFileWriter], None]:
    def fill(w: IncrementalPdfFileWriter) -> None:
        ref = _text_field_ref(w)
        field = ref.get_object()
        field["/V"] = pdf_string(value)
        # a viewer also writes the field's new appearance
        look = generic.StreamObject(
            {
                "/Type": pdf_name("/XObject"),
                "/Subtype": pdf_name("/Form"),
                "/BBox": generic.ArrayObject(generic.NumberObject(v) for v in (0, 0, 160, 20)),
            },
            stream_data=f"/Tx BMC BT /Helv 10 Tf 0 g 2 6 Td ({value}) Tj ET EMC".encode(),
        )
        field["/AP"] = generic.DictionaryObject({"/N": w.add_object(look)})
        w.mark_update(ref)

    return fill


@pytest.fixture(scope="module")
def certified_form(forge: Forge) -> bytes:
    """Certified with DocMDP P=2; the text field has an appearance stream when signed."""
    return _certify(
        forge,
        update(_with_text_field(forge.sample), _fill_text("A-0001")),
        fields.MDPPerm.FILL_FORMS,
    )


@pytest.mark.parametrize("perm", [fields.MDPPerm.FILL_FORMS, fields.MDPPerm.ANNOTATE])
def test_form_filled_under_docmdp(verifier: Verifier, forge: Forge, perm: fields.MDPPerm) -> None:
    signed = _certify(forge, _with_text_field(forge.sample), perm)
    report = assert_passed(verifier, update(signed, _fill_text("B-9999")))
    assert report.signatures[0].kind == "certification"


def test_form_field_moved_under_docmdp_fails(verifier: Verifier, forge: Forge) -> None:
    signed = _certify(forge, _with_text_field(forge.sample), fields.MDPPerm.FILL_FORMS)

    def move(w: IncrementalPdfFileWriter) -> None:
        arr = w.root["/AcroForm"]["/Fields"]
        ref = next(arr.raw_get(i) for i in range(len(arr)) if arr[i].get("/FT") == "/Tx")
        ref.get_object()["/Rect"] = generic.ArrayObject(
            generic.NumberObject(v) for v in (90, 705, 510, 735)
        )
        w.mark_update(ref)

    assert_not_passed(verifier, update(signed, move))


def _with_list_box(data: bytes) -> bytes:
    def add(w: IncrementalPdfFileWriter) -> None:
        page_ref, page = _page(w)
        opts = generic.ArrayObject(pdf_string(s) for s in ("Ulaanbaatar", "Darkhan", "Erdenet"))
        field = w.add_object(
            generic.DictionaryObject(
                {
                    "/FT": pdf_name("/Ch"),
                    "/T": pdf_string("City"),
                    "/Opt": opts,
                    "/V": pdf_string("Ulaanbaatar"),
                    "/I": generic.ArrayObject([generic.NumberObject(0)]),
                    "/Type": pdf_name("/Annot"),
                    "/Subtype": pdf_name("/Widget"),
                    "/Rect": generic.ArrayObject(
                        generic.NumberObject(v) for v in (400, 40, 560, 90)
                    ),
                    "/F": generic.NumberObject(4),
                    "/P": page_ref,
                    "/DA": pdf_string("/Helv 10 Tf 0 g"),
                }
            )
        )
        w.root["/AcroForm"] = generic.DictionaryObject(
            {"/Fields": generic.ArrayObject([field]), "/DA": pdf_string("/Helv 10 Tf 0 g")}
        )
        w.update_root()
        page["/Annots"] = generic.ArrayObject([field])
        w.mark_update(page_ref)

    return update(data, add)


def _choose(index: int, change_options: bool = False) -> Callable[[IncrementalPdfFileWriter], None]:
    def fill(w: IncrementalPdfFileWriter) -> None:
        ref = w.root["/AcroForm"]["/Fields"].raw_get(0)
        field = ref.get_object()
        field["/V"] = pdf_string(str(field["/Opt"][index]))
        field["/I"] = generic.ArrayObject([generic.NumberObject(index)])
        if change_options:
            field["/Opt"] = generic.ArrayObject(pdf_string(s) for s in ("Darkhan", "Erdenet"))
        w.mark_update(ref)

    return fill


def test_list_box_selection(verifier: Verifier, forge: Forge) -> None:
    signed = forge.sign(_with_list_box(forge.sample))
    assert_passed(verifier, update(signed, _choose(2)))


def test_list_box_options_changed_fails(verifier: Verifier, forge: Forge) -> None:
    signed = forge.sign(_with_list_box(forge.sample))
    assert_not_passed(verifier, update(signed, _choose(1, change_options=True)))


# --- class 5: the byte range ends after "%%EOF\r\n" ----------------------------------------------


def _resign_range(forge: Forge, data: bytes, len2: int) -> bytes:
    """Give the (only) signature of ``data`` the second range length ``len2`` and sign again, as
    a signer that counts the end-of-line after %%EOF into its byte range does."""
    m = re.search(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)\s+\d+\s*\]", data)
    assert m is not None
    len1, start2 = int(m.group(1)), int(m.group(2))
    text = b"/ByteRange [0 %d %d %d]" % (len1, start2, len2)
    assert len(text) <= len(m.group(0))
    out = bytearray(data[: m.start()] + text.ljust(len(m.group(0))) + data[m.end() :])
    digest = hashlib.sha256(bytes(out[:len1]) + bytes(out[start2 : start2 + len2])).digest()
    cms = asyncio.run(forge.key().signer.async_sign(digest, "sha256")).dump().hex().encode()
    room = start2 - len1 - 2
    assert len(cms) <= room
    out[len1 + 1 : start2 - 1] = cms.ljust(room, b"0")
    return bytes(out)


def _eof_crlf(signed: bytes, forge: Forge) -> bytes:
    assert signed.endswith(b"%%EOF\n")
    crlf = signed[:-1] + b"\r\n"
    start2, len2 = (
        int(v) for v in re.findall(rb"/ByteRange\s*\[\s*0\s+\d+\s+(\d+)\s+(\d+)", signed)[0]
    )
    assert start2 + len2 == len(signed)
    return _resign_range(forge, crlf, len2 + 1)


def test_byte_range_after_eof_crlf(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    data = _eof_crlf(signed_bb, forge)
    assert data.endswith(b"%%EOF\r\n")
    report = assert_passed(verifier, data)
    assert report.signatures[0].coverage == "ENTIRE_FILE"
    # and with an update after it (the signed revision is then judged by its end of file)
    later = update(data, _add_orphan)
    report = assert_passed(verifier, later)
    assert report.signatures[0].coverage == "ENTIRE_REVISION"


def test_byte_range_ending_at_eof_marker(
    signed_bb: bytes, verifier: Verifier, forge: Forge
) -> None:
    """The range stops right after "%%EOF"; the end-of-line after it lies outside (whitespace)."""
    signed = signed_bb
    len2 = int(re.findall(rb"/ByteRange\s*\[\s*0\s+\d+\s+\d+\s+(\d+)", signed)[0])
    data = _resign_range(forge, signed[:-1] + b"\r\n", len2 - 1)
    report = assert_passed(verifier, data)
    assert report.signatures[0].coverage == "ENTIRE_REVISION"


def test_byte_range_short_of_eof_fails(signed_bb: bytes, verifier: Verifier, forge: Forge) -> None:
    """Not allowed: a range that stops before %%EOF does not cover its revision."""
    signed = signed_bb
    len2 = int(re.findall(rb"/ByteRange\s*\[\s*0\s+\d+\s+\d+\s+(\d+)", signed)[0])
    short = _resign_range(forge, signed, len2 - len(b"%%EOF\n"))
    later = update(short, _add_orphan)
    for data in (short, later):
        report = assert_not_passed(verifier, data)
        assert report.indication is Indication.TOTAL_FAILED


# --- the CLI on one allowed case -------------------------------------------------------------


def test_cli_passes_extended_vri(
    pki: testpki.TestPki, forge: Forge, signed_lt: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "vri-extended.pdf"
    path.write_bytes(update(signed_lt, _extend_vri(forge, type_vri=True)))
    trust = tmp_path / "trust.toml"
    trust.write_text(
        f'anchors = ["{pki.trust_dir}"]\nintermediates = ["{pki.intermediates_dir}"]\n',
        encoding="utf-8",
    )
    r = run_esign("verify", str(path), "--trust", str(trust), "--offline", "--lang", "en")
    assert r.code == 0, r.out + r.err
    assert "TOTAL-PASSED" in r.out
