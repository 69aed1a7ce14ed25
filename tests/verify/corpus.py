"""A corpus of signed and manipulated PDFs, built at test time from the test PKI (nothing in git).

Every :class:`Case` names the verdict our verifier must give. The attacks follow the PDF-Insecurity
research: Mladenov, Mainka, Meyer zu Selhausen, Grothe, Schwenk, "1 Trillion Dollar Refund: How To
Spoof PDF Signatures" (CCS 2019: incremental saving, universal signature forgery, signature
wrapping) and Mainka, Mladenov, Rohlmann, Schwenk, "Shadow Attacks: Hiding and Replacing Content in
Signed PDFs" (NDSS 2021); certification attacks from Rohlmann et al., "Breaking the Specification:
PDF Certification" (IEEE S&P 2021).

A shadow attack prepares its content *before* signing (an unsigned incremental update the signer
does not notice) and switches it on after signing with an update small enough to look harmless.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from asn1crypto import cms, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.ades.api import CAdESSignedAttrSpec
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.certfiles import load_cert_paths
from esign.keysource import LoadedKey, load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from verify.report import Indication

PASSED = Indication.TOTAL_PASSED
FAILED = Indication.TOTAL_FAILED
INDETERMINATE = Indication.INDETERMINATE

# The expired signer's certificate is valid 2024-01-01..2025-01-01: a moment inside it.
PAST = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class Forge:
    """What the corpus builders need: the test PKI, its running services and the sample PDF."""

    def __init__(
        self, pki: testpki.TestPki, services: PkiServices, sample: bytes, work: Path
    ) -> None:
        self.pki = pki
        self.services = services
        self.sample = sample
        self.work = work
        self._keys: dict[tuple[str, str], LoadedKey] = {}

    def key(self, label: str = "seal", arch: str = "mn-rsa") -> LoadedKey:
        if (arch, label) not in self._keys:
            p12 = str(self.pki.p12(arch, label))
            self._keys[(arch, label)] = load_key(p12, password=testpki.P12_PASSWORD.encode())
        return self._keys[(arch, label)]

    def options(
        self, level: PadesLevel = PadesLevel.B_B, arch: str = "mn-rsa", **kw: object
    ) -> SignOptions:
        tsa = self.pki.tsa_url(arch) if level.needs_timestamp else None
        return SignOptions(level=level, tsa_url=tsa, **kw)  # type: ignore[arg-type]

    def sign(
        self,
        data: bytes,
        label: str = "seal",
        level: PadesLevel = PadesLevel.B_B,
        arch: str = "mn-rsa",
        **kw: object,
    ) -> bytes:
        return DocumentSigner(self.key(label, arch), self.options(level, arch, **kw)).sign_bytes(
            data
        )

    def trust_roots(self) -> tuple[x509.Certificate, ...]:
        return load_cert_paths([self.pki.trust_dir])

    @contextmanager
    def services_frozen_at(self, moment: datetime) -> Iterator[None]:
        """Run the OCSP/CRL/TSA services as they were at ``moment`` (same URLs, so the session
        services step aside meanwhile)."""
        self.services.stop()
        past = PkiServices(self.pki, at_time=moment).start()
        try:
            yield
        finally:
            past.stop()
            self.services.start()


# --- PDF surgery -------------------------------------------------------------------------------


def update(data: bytes, edit: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    """Append one incremental update made by ``edit``."""
    w = IncrementalPdfFileWriter(BytesIO(data))
    edit(w)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _page(w: IncrementalPdfFileWriter) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    ref = w.root["/Pages"]["/Kids"].raw_get(0)
    return ref, ref.get_object()


_HELVETICA = {
    "/Type": pdf_name("/Font"),
    "/Subtype": pdf_name("/Type1"),
    "/BaseFont": pdf_name("/Helvetica-Bold"),
    "/Encoding": pdf_name("/WinAnsiEncoding"),
}


def _overlay(
    w: IncrementalPdfFileWriter, text: str, size: tuple[int, int]
) -> generic.IndirectObject:
    """A form XObject: a white box hiding what lies under it, with ``text`` in red on top."""
    wd, ht = size
    ops = f"q 1 1 1 rg 0 0 {wd} {ht} re f Q q 0.8 0 0 rg BT /EsH 14 Tf 6 {ht // 2 - 5} Td "
    ops += f"({text}) Tj ET Q"
    stream = generic.StreamObject(
        {
            "/Type": pdf_name("/XObject"),
            "/Subtype": pdf_name("/Form"),
            "/BBox": generic.ArrayObject(generic.NumberObject(v) for v in (0, 0, wd, ht)),
            "/Resources": generic.DictionaryObject(
                {"/Font": generic.DictionaryObject({"/EsH": generic.DictionaryObject(_HELVETICA)})}
            ),
        },
        stream_data=ops.encode("latin-1"),
    )
    return w.add_object(stream)


def _annotation(
    w: IncrementalPdfFileWriter,
    text: str,
    box: tuple[int, int, int, int],
    *,
    hidden: bool = False,
    subtype: str = "/FreeText",
) -> generic.IndirectObject:
    """An annotation showing ``text`` over ``box``; ``hidden`` sets the Hidden flag (bit 2)."""
    x, y, wd, ht = box
    page_ref, _ = _page(w)
    annot = generic.DictionaryObject(
        {
            "/Type": pdf_name("/Annot"),
            "/Subtype": pdf_name(subtype),
            "/Rect": generic.ArrayObject(generic.NumberObject(v) for v in (x, y, x + wd, y + ht)),
            "/Contents": pdf_string(text),
            "/DA": pdf_string("/Helv 14 Tf 0.8 0 0 rg"),
            "/F": generic.NumberObject(2 if hidden else 4),
            "/P": page_ref,
            "/AP": generic.DictionaryObject({"/N": _overlay(w, text, (wd, ht))}),
        }
    )
    return w.add_object(annot)


def _add_annotation(w: IncrementalPdfFileWriter, annot: generic.IndirectObject) -> None:
    page_ref, page = _page(w)
    annots = page.get("/Annots")
    arr = generic.ArrayObject(
        [annots.raw_get(i) for i in range(len(annots))] if annots is not None else []
    )
    arr.append(annot)
    page["/Annots"] = arr
    w.mark_update(page_ref)


def _draw_over_page(w: IncrementalPdfFileWriter, xobj: generic.IndirectObject) -> None:
    """Make the page also draw ``xobj`` (placed over the recipient name line)."""
    page_ref, page = _page(w)
    resources = generic.DictionaryObject(dict(page["/Resources"]))
    resources["/XObject"] = generic.DictionaryObject({"/EsOverlay": xobj})
    page["/Resources"] = resources
    extra = w.add_object(generic.StreamObject(stream_data=b"q 1 0 0 1 90 705 cm /EsOverlay Do Q"))
    page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), extra])
    w.mark_update(page_ref)


def _sig(data: bytes, index: int = 0) -> tuple[list[int], int]:
    """The /ByteRange of signature ``index`` and the object number of its signature dictionary."""
    sig = PdfFileReader(BytesIO(data)).embedded_signatures[index]
    return [int(v) for v in sig.byte_range], sig.sig_field.raw_get("/V").reference.idnum


def flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def content_stream_offset(data: bytes) -> int:
    """An offset in the middle of the page's content stream (object 4 of the fpdf2 sample)."""
    m = re.search(rb"\n4 0 obj\s*<<.*?>>\s*stream\r?\n", data, re.S)
    assert m is not None
    return m.end() + 200


def _blank(data: bytes, pattern: bytes) -> bytes:
    """Overwrite the first match of ``pattern`` with spaces (the file keeps its length and
    every xref offset)."""
    m = re.search(pattern, data, re.S)
    assert m is not None, pattern
    return data[: m.start()] + b" " * (m.end() - m.start()) + data[m.end() :]


def _replace_contents(data: bytes, new_hex: bytes) -> bytes:
    """Put ``new_hex`` (padded with zeros) in the /Contents gap of the first signature."""
    (_, b, c, _), _ = _sig(data)
    room = c - b - 2
    assert len(new_hex) <= room
    return data[: b + 1] + new_hex + b"0" * (room - len(new_hex)) + data[c - 1 :]


def _literal(raw: bytes) -> bytes:
    out = bytearray(b"(")
    for byte in raw:
        ch = bytes([byte])
        if ch in b"()\\":
            out += b"\\" + ch
        elif ch == b"\r":
            out += b"\\r"
        elif ch == b"\n":
            out += b"\\n"
        else:
            out += ch
    return bytes(out + b")")


# --- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    indication: Indication
    subindication: str | None
    """Asserted when given; None where pyHanko's exact reason is not a stable contract."""
    manipulated: bool
    """Changed by someone other than the signers: must never be TOTAL-PASSED."""
    build: Callable[[Forge], bytes]
    what: str


def _valid(level: PadesLevel) -> Callable[[Forge], bytes]:
    return lambda f: f.sign(f.sample, level=level)


def _lta_extended(f: Forge) -> bytes:
    signed = f.sign(f.sample, level=PadesLevel.B_LTA)
    vc = ValidationContext(
        trust_roots=list(f.trust_roots()),
        other_certs=list(load_cert_paths([f.pki.intermediates_dir])),
        allow_fetching=True,
    )
    stamper = signers.PdfTimeStamper(RequestsHTTPTimeStamper(f.pki.tsa_url("mn-rsa")))
    out = BytesIO()
    stamper.update_archival_timestamp_chain(
        PdfFileReader(BytesIO(signed)), vc, in_place=False, output=out
    )
    return out.getvalue()


def _two_signatures(f: Forge) -> bytes:
    first = f.sign(f.sample, label="seal", field_name="Seal")
    return f.sign(first, label="official", field_name="Official")


def _byte_flipped(f: Forge) -> bytes:
    signed = f.sign(f.sample)
    return flip_byte(signed, content_stream_offset(signed))


def _incremental_content(f: Forge) -> bytes:
    signed = f.sign(f.sample)
    return update(signed, lambda w: _draw_over_page(w, _overlay(w, "ANNULLED", (420, 30))))


def _incremental_annotation(f: Forge) -> bytes:
    signed = f.sign(f.sample)
    return update(
        signed,
        lambda w: _add_annotation(w, _annotation(w, "Name: Someone Else", (90, 705, 420, 30))),
    )


def _usf_no_byterange(f: Forge) -> bytes:
    return _blank(f.sign(f.sample), rb"/ByteRange\s*\[[^\]]*\]")


def _usf_contents_zeros(f: Forge) -> bytes:
    return _replace_contents(f.sign(f.sample), b"")


def _usf_contents_empty(f: Forge) -> bytes:
    signed = f.sign(f.sample)
    (_, b, c, _), _ = _sig(signed)
    return signed[:b] + b"<>" + b" " * (c - b - 2) + signed[c:]


def _usf_no_signer_cert(f: Forge) -> bytes:
    signed = f.sign(f.sample)
    sig = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    info = cms.ContentInfo.load(sig.pkcs7_content)
    sd = info["content"]
    stripped = cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": sd["version"],
                    "digest_algorithms": sd["digest_algorithms"],
                    "encap_content_info": sd["encap_content_info"],
                    "signer_infos": sd["signer_infos"],
                }
            ),
        }
    )
    return _replace_contents(signed, stripped.dump().hex().encode())


def _wrap_relocated(f: Forge, literal: bool) -> bytes:
    """Signature wrapping: keep both signed parts byte for byte, but move the second one behind
    attacker objects, with a new xref section placed where the signed ``startxref`` now points.

    Signed part 1 ends inside the signature dictionary, just before /Contents; the gap is not
    signed, so the attacker finishes that dictionary with a new /ByteRange. The reader then sees a
    revision with a replaced page while the digest still matches. With ``literal``, /Contents
    becomes a literal string padded so that 2 * len(Contents) + 2 equals the gap: by length, the
    byte range then looks as if it covered the whole file.
    """
    signed = f.sign(f.sample)
    (_, b, c, d), _ = _sig(signed)
    m = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", signed)
    assert m is not None
    startxref = int(m.group(1))
    reader = PdfFileReader(BytesIO(signed))
    size = int(reader.trailer_view.raw_get("/Size"))
    page_ref = reader.root["/Pages"]["/Kids"].raw_get(0)
    der = reader.embedded_signatures[0].pkcs7_content.rstrip(b"\0")
    if literal:
        n = startxref - b - 1024  # decoded length; the literal string spans about n bytes
        contents = _literal(der + b"\0" * (n - len(der)))
        gap_len = 2 * n + 2
    else:
        contents = b"<" + der.hex().encode() + b">"
    # Fixed-width numbers: lengths do not depend on the values.
    tail = b"\n/ByteRange [0 %010d %%010d %010d] /Type /Sig /Filter /Adobe.PPKLite " % (b, d)
    tail += b"/SubFilter /ETSI.CAdES.detached >>\nendobj\n"
    head_len = b + len(contents) + len(tail % 0)
    assert head_len + 4 <= startxref, "no room before the stale startxref"
    filler = b"%" + b"x" * (startxref - head_len - 2) + b"\n"
    evil = b"q 1 1 1 rg 0 0 595 842 re f Q BT /F1 28 Tf 60 400 Td (FORGED) Tj ET"
    xref_len = len(b"xref\n%d 1\n%010d 00000 n \n%d 1\n%010d 00000 n \n" % (0, 0, 0, 0))
    xref_len += len(b"%d" % page_ref.idnum) + len(b"%d" % size) - 2

    def section(c2: int) -> bytes:
        prev = startxref - c + c2  # the signing revision's xref, now inside the moved part
        trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %010d >>\n" % (
            size + 1, reader.root_ref.idnum, prev
        )  # fmt: skip
        page_at = startxref + xref_len + len(trailer)
        page = (
            b"%d 0 obj\n<< /Type /Page /Parent %d 0 R /Resources %d 0 R /Contents %d 0 R >>\n"
            b"endobj\n"
            % (
                page_ref.idnum,
                reader.root.raw_get("/Pages").idnum,
                page_ref.get_object().raw_get("/Resources").idnum,
                size,
            )
        )
        content = b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
            size, len(evil), evil
        )  # fmt: skip
        xref = b"xref\n%d 1\n%010d 00000 n \n%d 1\n%010d 00000 n \n" % (
            page_ref.idnum, page_at, size, page_at + len(page)
        )  # fmt: skip
        assert len(xref) == xref_len
        return xref + trailer + page + content

    body = section(0)
    c2 = startxref + len(body)
    if literal:
        assert b + gap_len >= c2, "literal /Contents too short to hide the objects"
        c2 = b + gap_len
    body = section(c2)
    pad = b"\n" * (c2 - startxref - len(body))
    out = signed[:b] + contents + tail % c2 + filler + body + pad
    assert len(out) == c2
    return out + signed[c : c + d]


def _hidden_annotation(f: Forge) -> bytes:
    """Shadow hide: a hidden annotation prepared before signing is made visible after."""
    holder: dict[str, generic.IndirectObject] = {}

    def prepare(w: IncrementalPdfFileWriter) -> None:
        holder["annot"] = _annotation(w, "Name: Someone Else", (90, 705, 420, 30), hidden=True)
        _add_annotation(w, holder["annot"])

    signed = f.sign(update(f.sample, prepare))

    def reveal(w: IncrementalPdfFileWriter) -> None:
        annots = _page(w)[1]["/Annots"]
        annot_ref = next(
            annots.raw_get(i)
            for i in range(len(annots))
            if annots[i].get("/Subtype") == "/FreeText"
        )
        annot_ref.get_object()["/F"] = generic.NumberObject(4)
        w.mark_update(annot_ref)

    return update(signed, reveal)


def _hidden_overlay(f: Forge) -> bytes:
    """Shadow hide: an overlay XObject prepared (unused) before signing is drawn after."""
    holder: dict[str, generic.IndirectObject] = {}

    def prepare(w: IncrementalPdfFileWriter) -> None:
        holder["xobj"] = _overlay(w, "Name: Someone Else", (420, 30))
        w.root["/EsignShadow"] = holder["xobj"]  # kept reachable, as the paper's variants do
        w.update_root()

    signed = f.sign(update(f.sample, prepare))

    def reveal(w: IncrementalPdfFileWriter) -> None:
        _draw_over_page(w, w.root.raw_get("/EsignShadow"))

    return update(signed, reveal)


def _replace_content(f: Forge) -> bytes:
    """Shadow replace: redefine the page content stream object that existed at signing time."""
    signed = f.sign(f.sample)

    def replace(w: IncrementalPdfFileWriter) -> None:
        _, page = _page(w)
        ref = page.raw_get("/Contents")
        old = ref.get_object()
        new = generic.StreamObject(stream_data=old.data + b"\nq 1 1 1 rg 90 700 420 40 re f Q\n")
        w.objects[(ref.generation, ref.idnum)] = new

    return update(signed, replace)


def _fill_dangling(f: Forge) -> bytes:
    """Shadow replace through a dangling reference: before signing, the page's /Contents also
    names an object no xref defines (it reads as null, so the signer sees nothing); after signing,
    an update defines that object with new text. No signed object changes."""
    planted = int(PdfFileReader(BytesIO(f.sample)).trailer["/Size"]) + 60

    def plant(w: IncrementalPdfFileWriter) -> None:
        ref, page = _page(w)
        contents = page.raw_get("/Contents")
        old = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
        page["/Contents"] = generic.ArrayObject([*old, generic.IndirectObject(planted, 0, w)])
        w.mark_update(ref)

    signed = f.sign(update(f.sample, plant))
    assert int(PdfFileReader(BytesIO(signed)).trailer["/Size"]) < planted

    def fill(w: IncrementalPdfFileWriter) -> None:
        while w.add_object(generic.NullObject()).idnum < planted - 1:
            pass  # unreferenced fillers up to the planted number
        text = b"q 1 1 1 rg 90 700 420 40 re f Q BT /F1 18 Tf 95 712 Td (Someone Else) Tj ET"
        assert w.add_object(generic.StreamObject(stream_data=text)).idnum == planted

    return update(signed, fill)


def _replace_font(f: Forge) -> bytes:
    """Shadow replace: a second font prepared before signing replaces the used one after."""

    def prepare(w: IncrementalPdfFileWriter) -> None:
        other = w.add_object(generic.DictionaryObject(_HELVETICA))
        w.root["/EsignShadowFont"] = other
        w.update_root()

    signed = f.sign(update(f.sample, prepare))

    def replace(w: IncrementalPdfFileWriter) -> None:
        _, page = _page(w)
        res_ref = page.raw_get("/Resources")
        res = res_ref.get_object()
        fonts = res["/Font"]
        fonts["/F1"] = w.root.raw_get("/EsignShadowFont")
        w.mark_update(res_ref)

    return update(signed, replace)


def _hide_and_replace(f: Forge) -> bytes:
    """Shadow hide-and-replace: an alternative page tree prepared before signing becomes the
    document's page tree after."""

    def prepare(w: IncrementalPdfFileWriter) -> None:
        evil = w.add_object(
            generic.StreamObject(stream_data=b"BT /EsH 28 Tf 60 400 Td (FORGED DOCUMENT) Tj ET")
        )
        pages_ref = w.add_object(generic.DictionaryObject({"/Type": pdf_name("/Pages")}))
        page = w.add_object(
            generic.DictionaryObject(
                {
                    "/Type": pdf_name("/Page"),
                    "/Parent": pages_ref,
                    "/MediaBox": generic.ArrayObject(
                        generic.NumberObject(v) for v in (0, 0, 595, 842)
                    ),
                    "/Resources": generic.DictionaryObject(
                        {
                            "/Font": generic.DictionaryObject(
                                {"/EsH": generic.DictionaryObject(_HELVETICA)}
                            )
                        }
                    ),
                    "/Contents": evil,
                }
            )
        )
        pages = pages_ref.get_object()
        pages["/Kids"] = generic.ArrayObject([page])
        pages["/Count"] = generic.NumberObject(1)
        w.root["/EsignShadowPages"] = pages_ref
        w.update_root()

    signed = f.sign(update(f.sample, prepare))

    def swap(w: IncrementalPdfFileWriter) -> None:
        w.root["/Pages"] = w.root.raw_get("/EsignShadowPages")
        w.update_root()

    return update(signed, swap)


def _with_text_field(data: bytes) -> bytes:
    def add(w: IncrementalPdfFileWriter) -> None:
        page_ref, _ = _page(w)
        field = w.add_object(
            generic.DictionaryObject(
                {
                    "/FT": pdf_name("/Tx"),
                    "/T": pdf_string("DocNumber"),
                    "/V": pdf_string("A-0001"),
                    "/Type": pdf_name("/Annot"),
                    "/Subtype": pdf_name("/Widget"),
                    "/Rect": generic.ArrayObject(
                        generic.NumberObject(v) for v in (400, 40, 560, 60)
                    ),
                    "/F": generic.NumberObject(4),
                    "/P": page_ref,
                    "/DA": pdf_string("/Helv 10 Tf 0 g"),
                }
            )
        )
        w.root["/AcroForm"] = generic.DictionaryObject(
            {
                "/Fields": generic.ArrayObject([field]),
                "/DA": pdf_string("/Helv 10 Tf 0 g"),
                "/DR": generic.DictionaryObject(
                    {
                        "/Font": generic.DictionaryObject(
                            {"/Helv": generic.DictionaryObject(_HELVETICA)}
                        )
                    }
                ),
            }
        )
        w.update_root()
        _add_annotation(w, field)

    return update(data, add)


def _certified_then_annotated(f: Forge) -> bytes:
    signed = f.sign(f.sample, certify=True)
    return update(
        signed,
        lambda w: _add_annotation(w, _annotation(w, "Name: Someone Else", (90, 705, 420, 30))),
    )


def _certified_then_filled(f: Forge) -> bytes:
    signed = f.sign(_with_text_field(f.sample), certify=True)

    def fill(w: IncrementalPdfFileWriter) -> None:
        fields_arr = w.root["/AcroForm"]["/Fields"]
        field_ref = next(
            fields_arr.raw_get(i)
            for i in range(len(fields_arr))
            if fields_arr[i].get("/FT") == "/Tx"
        )
        field_ref.get_object()["/V"] = pdf_string("B-9999")
        w.mark_update(field_ref)

    return update(signed, fill)


def _untrusted_ca(f: Forge) -> bytes:
    """A small CA of our own (pyca/cryptography) that no trust anchor vouches for."""
    d = f.work / "rogue"
    d.mkdir(exist_ok=True)
    now = datetime.now(UTC)

    def name(cn: str) -> cx509.Name:
        return cx509.Name(
            [
                cx509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
                cx509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        cx509.CertificateBuilder()
        .subject_name(name("Rogue Root CA"))
        .issuer_name(name("Rogue Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            cx509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        cx509.CertificateBuilder()
        .subject_name(name("Хуурамч тамга"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            cx509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (d / "leaf.key.pem").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (d / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    with load_key(str(d / "leaf.key.pem"), cert=d / "leaf.pem", chain=[d / "ca.pem"]) as key:
        return DocumentSigner(key, SignOptions(check_certificate=False)).sign_bytes(f.sample)


def _revoked(level: PadesLevel) -> Callable[[Forge], bytes]:
    return lambda f: f.sign(f.sample, label="revoked", level=level, check_certificate=False)


def _revoked_content_timestamp(f: Forge) -> bytes:
    """A content timestamp (a signed attribute) proves the signature was made after revocation."""
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        cades_signed_attr_spec=CAdESSignedAttrSpec(timestamp_content=True),
    )
    tsa = RequestsHTTPTimeStamper(f.pki.tsa_url("mn-rsa"))
    out = BytesIO()
    signers.PdfSigner(meta, f.key("revoked").signer, timestamper=tsa).sign_pdf(
        IncrementalPdfFileWriter(BytesIO(f.sample)), output=out
    )
    return out.getvalue()


def _expired_no_timestamp(f: Forge) -> bytes:
    return f.sign(f.sample, label="expired", check_certificate=False)


def _expired_timestamped(level: PadesLevel) -> Callable[[Forge], bytes]:
    """Signed on 2024-06-01 (TSA, OCSP and CRL all frozen at that moment), validated now."""

    def build(f: Forge) -> bytes:
        key = f.key("expired")
        tsa = RequestsHTTPTimeStamper(f.pki.tsa_url("mn-rsa"))
        with f.services_frozen_at(PAST):
            vc = ValidationContext(
                trust_roots=list(f.trust_roots()),
                other_certs=key.chain,
                allow_fetching=True,
                moment=PAST,
            )
            meta = signers.PdfSignatureMetadata(
                field_name="Signature1",
                md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES,
                embed_validation_info=True,
                use_pades_lta=level is PadesLevel.B_LTA,
                validation_context=vc,
            )
            pdf_signer = signers.PdfSigner(meta, key.signer, timestamper=tsa)
            out = BytesIO()
            pdf_signer.sign_pdf(IncrementalPdfFileWriter(BytesIO(f.sample)), output=out)
            return out.getvalue()

    return build


def _sha1(f: Forge) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1", md_algorithm="sha1", subfilter=fields.SigSeedSubFilter.PADES
    )
    out = BytesIO()
    signers.PdfSigner(meta, f.key("seal").signer).sign_pdf(
        IncrementalPdfFileWriter(BytesIO(f.sample)), output=out
    )
    return out.getvalue()


CASES: list[Case] = [
    *(
        Case(f"valid-{lvl.value}", PASSED, None, False, _valid(lvl), f"valid at {lvl.value}")
        for lvl in PadesLevel
    ),
    Case("valid-B-LTA-extended", PASSED, None, False, _lta_extended,
         "B-LTA later extended with DSS data and another document timestamp"),
    Case("valid-two-signatures", PASSED, None, False, _two_signatures,
         "seal, then an official signs the signed file in a new field"),
    Case("byte-flipped", FAILED, "HASH_FAILURE", True, _byte_flipped,
         "one bit of the page content stream flipped inside the signed byte range"),
    Case("isa-page-content", FAILED, "FORMAT_FAILURE", True, _incremental_content,
         "incremental saving attack: new page content appended after signing"),
    Case("isa-annotation", FAILED, "FORMAT_FAILURE", True, _incremental_annotation,
         "incremental saving attack: FreeText annotation covering the name"),
    Case("usf-no-byterange", FAILED, "FORMAT_FAILURE", True, _usf_no_byterange,
         "universal signature forgery: /ByteRange removed"),
    Case("usf-contents-zeros", FAILED, "FORMAT_FAILURE", True, _usf_contents_zeros,
         "universal signature forgery: /Contents all zeros"),
    Case("usf-contents-empty", FAILED, "FORMAT_FAILURE", True, _usf_contents_empty,
         "universal signature forgery: /Contents <>"),
    Case("usf-no-signer-cert", INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND", True,
         _usf_no_signer_cert, "universal signature forgery: certificates removed from the CMS"),
    Case("swa-relocated", FAILED, "FORMAT_FAILURE", True, lambda f: _wrap_relocated(f, False),
         "signature wrapping: second signed part moved behind a new xref and page"),
    Case("swa-literal-contents", FAILED, "FORMAT_FAILURE", True,
         lambda f: _wrap_relocated(f, True),
         "signature wrapping with a padded literal /Contents so the byte range looks complete"),
    Case("shadow-hide-annotation", FAILED, "FORMAT_FAILURE", True, _hidden_annotation,
         "shadow hide: hidden annotation prepared before signing, shown after"),
    Case("shadow-hide-overlay", FAILED, "FORMAT_FAILURE", True, _hidden_overlay,
         "shadow hide: overlay XObject prepared before signing, drawn after"),
    Case("shadow-replace-content", FAILED, "FORMAT_FAILURE", True, _replace_content,
         "shadow replace: the signed content stream object redefined"),
    Case("shadow-fill-dangling", FAILED, "FORMAT_FAILURE", True, _fill_dangling,
         "shadow replace: page /Contents names an undefined object at signing, defined after"),
    Case("shadow-replace-font", FAILED, "FORMAT_FAILURE", True, _replace_font,
         "shadow replace: font resource swapped for one prepared before signing"),
    Case("shadow-hide-and-replace", FAILED, "FORMAT_FAILURE", True, _hide_and_replace,
         "shadow hide-and-replace: page tree prepared before signing swapped in"),
    Case("certified-annotated", FAILED, "FORMAT_FAILURE", True, _certified_then_annotated,
         "DocMDP NO_CHANGES certification, then an annotation added"),
    Case("certified-form-filled", FAILED, "FORMAT_FAILURE", True, _certified_then_filled,
         "DocMDP NO_CHANGES certification, then a form field value changed"),
    Case("untrusted-root", INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", False, _untrusted_ca,
         "signed under a CA no trust anchor vouches for"),
    # ETSI EN 319 102-1 5.5: a signature timestamp after the revocation only proves the signature
    # existed then, not that it was made after the revocation: INDETERMINATE/REVOKED_NO_POE.
    Case("revoked-B-B", INDETERMINATE, "REVOKED_NO_POE", False, _revoked(PadesLevel.B_B),
         "revoked signer (since 2025-06-01), signed now, no timestamp"),
    Case("revoked-B-T", INDETERMINATE, "REVOKED_NO_POE", False, _revoked(PadesLevel.B_T),
         "revoked signer, signed now, signature timestamp after the revocation"),
    Case("revoked-content-timestamp", FAILED, "REVOKED", False, _revoked_content_timestamp,
         "revoked signer, content timestamp proving signing after the revocation"),
    Case("expired-B-B", INDETERMINATE, "OUT_OF_BOUNDS_NO_POE", False, _expired_no_timestamp,
         "expired signer (2024-01-01..2025-01-01), no timestamp"),
    Case("expired-B-T-after-expiry", INDETERMINATE, "OUT_OF_BOUNDS_NO_POE", False,
         lambda f: f.sign(f.sample, label="expired", level=PadesLevel.B_T, check_certificate=False),
         "expired signer, signature timestamp of today (after the expiry)"),
    Case("expired-timestamped-B-LT", PASSED, None, False, _expired_timestamped(PadesLevel.B_LT),
         "expired signer, signed and timestamped on 2024-06-01 with revocation data of then"),
    Case("expired-timestamped-B-LTA", PASSED, None, False,
         _expired_timestamped(PadesLevel.B_LTA),
         "as above, with a document timestamp of 2024-06-01"),
    Case("sha1-digest", INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE", False, _sha1,
         "SHA-1 message digest and sha1WithRSA signature"),
]  # fmt: skip


def build_corpus(
    pki: testpki.TestPki, services: PkiServices, sample: bytes, out: Path
) -> dict[str, Path]:
    """Build every case into ``out``; returns name -> file."""
    forge = Forge(pki, services, sample, out)
    files: dict[str, Path] = {}
    for case in CASES:
        path = out / f"{case.name}.pdf"
        path.write_bytes(case.build(forge))
        files[case.name] = path
    return files
