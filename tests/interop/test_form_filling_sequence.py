"""The issue 8 sequence that ends in permitted form filling: a form certified with DocMDP P=2,
LTV-extended, document-timestamped, signed by a second signer (esign's own `sign` command, a
different tool from the certifier), its empty text field filled as a viewer does (new /V, new
appearance), then archive-timestamped. A careful expert says TOTAL-PASSED: form filling and
signing are what P=2 allows. Its neighbour fills the same field under P=1 (no changes): forbidden
and proven, so TOTAL-FAILED. Both files are rows of the interop matrix.

The Java signers in tests/interop/java/ cannot certify (no DocMDP), so pyHanko certifies; the
field is filled with pyHanko's form tools, not by hand.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.form_tools import populate_static_text_field
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.validation import add_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from esign import testpki
from esign.certfiles import load_cert_paths
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from tests.interop.matrix import Matrix, esign_verify

SAMPLE = REPO / "samples" / "certificate.pdf"
TEXT_FIELD = "DocNumber"
SECOND = "Signer2"


def _write(w: IncrementalPdfFileWriter, path: Path) -> Path:
    with path.open("wb") as f:
        w.write(f)
    return path


def _blank_form(path: Path) -> Path:
    """The sample with an empty signature field for the second signer and an empty text field."""
    w = IncrementalPdfFileWriter(BytesIO(SAMPLE.read_bytes()))
    fields.append_signature_field(w, fields.SigFieldSpec(SECOND, on_page=0, box=(60, 40, 260, 90)))
    page_ref = w.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    text = w.add_object(
        generic.DictionaryObject(
            {
                "/FT": pdf_name("/Tx"),
                "/T": pdf_string(TEXT_FIELD),
                "/Type": pdf_name("/Annot"),
                "/Subtype": pdf_name("/Widget"),
                "/Rect": generic.ArrayObject(generic.NumberObject(v) for v in (400, 40, 560, 60)),
                "/F": generic.NumberObject(4),
                "/P": page_ref,
                "/DA": pdf_string("/Helv 10 Tf 0 g"),
            }
        )
    )
    w.root["/AcroForm"]["/Fields"].append(text)
    page["/Annots"].append(text)
    w.update_container(w.root["/AcroForm"])
    w.mark_update(page_ref)
    return _write(w, path)


class Steps:
    """Each step of the sequence, one incremental update each, with the test PKI (online)."""

    def __init__(self, pki: testpki.TestPki) -> None:
        self.pki = pki
        self.tsa = timestamps.HTTPTimeStamper(pki.tsa_url("mn-rsa"))
        self.signer = signers.SimpleSigner.load_pkcs12(
            str(pki.p12("mn-rsa", "official")), passphrase=testpki.P12_PASSWORD.encode()
        )

    def vc(self) -> ValidationContext:
        return ValidationContext(
            trust_roots=list(load_cert_paths(sorted(self.pki.trust_dir.glob("*.pem")))),
            other_certs=list(load_cert_paths(sorted(self.pki.intermediates_dir.glob("*.pem")))),
            allow_fetching=True,
            fetcher_backend=RequestsFetcherBackend(),
        )

    def certify(self, src: Path, dst: Path, perm: fields.MDPPerm) -> Path:
        meta = signers.PdfSignatureMetadata(
            field_name="Certification",
            certify=True,
            docmdp_permissions=perm,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        with dst.open("wb") as out:
            signers.PdfSigner(meta, signer=self.signer, timestamper=self.tsa).sign_pdf(
                IncrementalPdfFileWriter(BytesIO(src.read_bytes())), output=out
            )
        return dst

    def ltv(self, src: Path, dst: Path) -> Path:
        """/DSS + /VRI for the certification signature (chain, OCSP, CRL of signer and TSA)."""
        reader = PdfFileReader(BytesIO(src.read_bytes()))
        with dst.open("wb") as out:
            add_validation_info(reader.embedded_signatures[0], self.vc(), output=out)
        return dst

    def doc_timestamp(self, src: Path, dst: Path) -> Path:
        with dst.open("wb") as out:
            signers.PdfTimeStamper(self.tsa).timestamp_pdf(
                IncrementalPdfFileWriter(BytesIO(src.read_bytes())),
                "sha256",
                validation_context=self.vc(),
                output=out,
            )
        return dst

    def second_signer(self, src: Path, dst: Path) -> Path:
        """esign's own `sign` command signs the prepared field at B-LT."""
        r = run_esign(
            "sign",
            str(src),
            "-o",
            str(dst),
            "--key",
            str(self.pki.p12("mn-ec", "official")),
            "--passfile",
            str(self.pki.password_file),
            "--level",
            "B-LT",
            "--tsa",
            self.pki.tsa_url("mn-ec"),
            "--field",
            SECOND,
            "--trust",
            str(self.pki.trust_dir),
        )
        assert r.code == 0 and dst.is_file(), r.out + r.err
        return dst

    def fill(self, src: Path, dst: Path, value: str = "MN-2026-0042") -> Path:
        """What a viewer does: the field's /V and a new appearance (pyHanko's form tools)."""
        w = IncrementalPdfFileWriter(BytesIO(src.read_bytes()))
        populate_static_text_field(w, TEXT_FIELD, TextBoxStyle(font_size=10), value)
        return _write(w, dst)

    def archive_timestamp(self, src: Path, dst: Path) -> Path:
        """Validation data for the last timestamp, then a new document timestamp over it all."""
        reader = PdfFileReader(BytesIO(src.read_bytes()))
        with dst.open("wb") as out:
            signers.PdfTimeStamper(self.tsa).update_archival_timestamp_chain(
                reader, self.vc(), in_place=False, output=out
            )
        return dst


@pytest.fixture(scope="module")
def sequences(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The genuine P=2 sequence and its P=1 neighbour, each step kept as its own file."""
    d = tmp_path_factory.mktemp("form-filling")
    s = Steps(pki)
    blank = _blank_form(d / "blank.pdf")

    p2 = s.certify(blank, d / "p2-1-certified.pdf", fields.MDPPerm.FILL_FORMS)
    p2 = s.ltv(p2, d / "p2-2-ltv.pdf")
    p2 = s.doc_timestamp(p2, d / "p2-3-doc-ts.pdf")
    p2 = s.second_signer(p2, d / "p2-4-second-signer.pdf")
    p2 = s.fill(p2, d / "p2-5-filled.pdf")
    p2 = s.archive_timestamp(p2, d / "pyhanko-certify-p2-esign-fill-lta.pdf")

    # the neighbour: the same steps but the second signature (P=1 forbids signing as well, which
    # would hide what this row is about: the fill)
    p1 = s.certify(blank, d / "p1-1-certified.pdf", fields.MDPPerm.NO_CHANGES)
    p1 = s.ltv(p1, d / "p1-2-ltv.pdf")
    p1 = s.doc_timestamp(p1, d / "p1-3-doc-ts.pdf")
    p1 = s.fill(p1, d / "p1-4-filled.pdf")
    p1 = s.archive_timestamp(p1, d / "pyhanko-certify-p1-fill-lta.pdf")
    return {"P=2": p2, "P=1": p1}


SEQUENCE = (
    "pyHanko certify DocMDP {p} B-T -> pyHanko LTV (/DSS /VRI) -> doc timestamp{second} -> "
    "text field filled (/V + new appearance, pyHanko form tools) -> archive timestamp (--offline)"
)


def test_form_filled_under_p2_after_sequence_passes(
    sequences: dict[str, Path], pki: testpki.TestPki, nssdb: str, matrix: Matrix
) -> None:
    """Permitted form filling after certification, LTV, timestamps and a second signer: every
    signature and timestamp TOTAL-PASSED offline, from the file's own LTV data."""
    path = sequences["P=2"]
    r = esign_verify(path, pki, online=False)
    matrix.add(
        path,
        signer="pyHanko + esign",
        sequence=SEQUENCE.format(p="P=2", second=" -> second signer esign sign B-LT (ECDSA)"),
        expected="TOTAL-PASSED",
        esign=r,
        pki=pki,
        nssdb=nssdb,
        note="form filling is what DocMDP P=2 allows; pyHanko's ILLEGAL_MODIFICATIONS on Signer2 "
        "is class 1: its own archive-timestamp update re-writes the first timestamp's VRI entry "
        "as a new object with identical content (/Type /VRI), which its DSSCompareRule refuses",
    )
    assert r.code == 0 and r.indication == "TOTAL-PASSED", r.out + r.err
    kinds = [str(sig["kind"]) for sig in r.signatures]
    assert len(kinds) == 4 and kinds.count("document-timestamp") == 2, r.out
    assert all(sig["indication"] == "TOTAL-PASSED" for sig in r.signatures), r.out
    assert kinds[0] == "certification" and r.signatures[2]["field_name"] == SECOND, r.out
    filled = PdfFileReader(BytesIO(path.read_bytes())).root["/AcroForm"]["/Fields"]
    values = {str(f.get_object()["/T"]): f.get_object().get("/V") for f in filled}
    assert values[TEXT_FIELD] == "MN-2026-0042", values  # the fill really is in the file
    text = run_esign(
        "verify", str(path), "--trust", str(pki.trust_dir), "--offline"
    )  # what the user reads
    assert text.code == 0 and "TOTAL-PASSED" in text.out, text.out + text.err


def test_form_filled_under_p1_fails(
    sequences: dict[str, Path], pki: testpki.TestPki, nssdb: str, matrix: Matrix
) -> None:
    """The same fill where the certifier allowed no changes: proven forbidden, TOTAL-FAILED."""
    path = sequences["P=1"]
    r = esign_verify(path, pki, online=False)
    matrix.add(
        path,
        signer="pyHanko + esign",
        sequence=SEQUENCE.format(p="P=1", second=""),
        expected="TOTAL-FAILED",
        esign=r,
        pki=pki,
        nssdb=nssdb,
        note="neighbour: DocMDP P=1 forbids the fill",
    )
    assert r.code == 1 and r.indication == "TOTAL-FAILED", r.out + r.err
    first = r.signatures[0]
    assert first["kind"] == "certification" and first["indication"] == "TOTAL-FAILED", r.out
    assert "FORM_FILLING" in json.dumps(first), r.out  # the fill is what is refused
    assert all(sig["indication"] == "TOTAL-PASSED" for sig in r.signatures[1:]), r.out
