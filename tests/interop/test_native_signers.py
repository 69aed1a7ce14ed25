"""PDFs signed by native tools other than esign, with the test PKI, verified by `esign verify`.

MuPDF (`mutool sign`), poppler (`pdfsig -add-signature` with an NSS database holding the test
signer's key), node-signpdf (@signpdf, npm), qpdf-encrypted inputs signed by pyHanko, and
LibreOffice hybrid PDFs. Each file carries the verdict a careful expert gives; the test asserts
esign's exit code and verdict and adds a row (with pdfsig's and pyHanko's judgement) to the
interop matrix.
"""

from __future__ import annotations

import re
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation.dss import DocumentSecurityStore

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO, require_tool, run_esign
from tests.interop import hybrid
from tests.interop.matrix import EsignResult, Matrix, esign_verify

SAMPLE = REPO / "samples" / "certificate.pdf"
PASSWORD = testpki.P12_PASSWORD
ARCH = "mn-rsa"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native")


@pytest.fixture(scope="module")
def p12(pki: testpki.TestPki) -> Path:
    return pki.p12(ARCH, "official")


def _pyhanko_sign(
    data: bytes, p12: Path, *, password: str | None = None, field: str = "Sig1"
) -> bytes:
    """pyHanko's own signer (B-B), opening an encrypted input with its password first."""
    signer = signers.SimpleSigner.load_pkcs12(p12, passphrase=PASSWORD.encode())
    assert signer is not None
    w = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    if password is not None:
        w.encrypt(password)
    out = BytesIO()
    signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name=field), signer=signer, output=out)
    return out.getvalue()


def _add_dss(data: bytes, p12: Path) -> bytes:
    """An LTV update by pyHanko: a /DSS with the signer's certificates, as an incremental update."""
    signer = signers.SimpleSigner.load_pkcs12(p12, passphrase=PASSWORD.encode())
    assert signer is not None
    contents = PdfFileReader(BytesIO(data), strict=False).embedded_signatures[-1].pkcs7_content
    out = BytesIO(data)
    DocumentSecurityStore.add_dss(out, contents, certs=list(signer.cert_registry), strict=False)
    return out.getvalue()


def _row(
    matrix: Matrix,
    path: Path,
    pki: testpki.TestPki,
    nssdb: str,
    *,
    signer: str,
    sequence: str,
    expected: str,
    note: str = "",
    password: str | None = None,
    extra: tuple[str, ...] = (),
) -> EsignResult:
    r = esign_verify(path, pki, extra=extra)
    matrix.add(
        path,
        signer=signer,
        sequence=sequence,
        expected=expected,
        esign=r,
        pki=pki,
        nssdb=nssdb,
        password=password,
        note=note,
    )
    return r


def _passed(r: EsignResult) -> None:
    assert r.code == 0 and r.indication == "TOTAL-PASSED", r.out + r.err
    assert r.signatures and all(s["indication"] == "TOTAL-PASSED" for s in r.signatures)


def test_pyhanko_baseline(
    pki: testpki.TestPki, services: PkiServices, nssdb: str, matrix: Matrix, work: Path
) -> None:
    """The reference row: pyHanko (through esign's signer) at B-T, verified online."""
    out = work / "pyhanko-B-T.pdf"
    with load_key(str(pki.p12(ARCH, "official")), password=PASSWORD.encode()) as key:
        opts = SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url(ARCH))
        DocumentSigner(key, opts).sign_file(SAMPLE, out)
    r = _row(
        matrix, out, pki, nssdb, signer="pyHanko", sequence="sign B-T", expected="TOTAL-PASSED"
    )
    _passed(r)


def test_mutool_sign(
    pki: testpki.TestPki, services: PkiServices, nssdb: str, matrix: Matrix, work: Path, p12: Path
) -> None:
    """MuPDF 1.21 signs an existing empty field with a PKCS#12 file; it hashes with SHA-1 and
    has no option for another digest, so the expert verdict is a weak-algorithm INDETERMINATE."""
    require_tool("mutool")
    w = IncrementalPdfFileWriter(BytesIO(SAMPLE.read_bytes()))
    fields.append_signature_field(w, fields.SigFieldSpec("MuPDF1", box=(50, 50, 250, 100)))
    field_pdf = work / "mutool-field.pdf"
    with field_pdf.open("wb") as f:
        w.write(f)
    form = PdfFileReader(BytesIO(field_pdf.read_bytes())).root["/AcroForm"]
    number = form["/Fields"].raw_get(0).reference.idnum
    out = work / "mutool.pdf"
    subprocess.run(
        [
            "mutool",
            "sign",
            "-s",
            str(p12),
            "-P",
            PASSWORD,
            "-o",
            str(out),
            *(str(field_pdf), str(number)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="MuPDF (mutool sign 1.21)",
        sequence="empty field (pyHanko) -> mutool sign",
        expected="INDETERMINATE CRYPTO_CONSTRAINTS_FAILURE",
        note="mutool 1.21 signs with SHA-1 (no digest option): weak algorithm, not a forgery",
    )
    assert r.code == 2, r.out + r.err
    assert (r.indication, r.subindication) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")
    assert len(r.signatures) == 1 and r.signatures[0]["field_name"] == "MuPDF1"


@pytest.fixture(scope="module")
def signer_nssdb(p12: Path, work: Path) -> tuple[str, str]:
    """An NSS database holding the test signer's key (pk12util), for `pdfsig -add-signature`."""
    d = work / "nss-signer"
    d.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{d}", "--empty-password"], check=True)
    subprocess.run(
        ["pk12util", "-i", str(p12), "-d", f"sql:{d}", "-W", PASSWORD, "-K", ""],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{d}"], check=True, capture_output=True, text=True
    ).stdout
    nick = next(m.group(1).strip() for m in re.finditer(r"^(.+?)\s+u,u,u\s*$", listing, re.M))
    return f"sql:{d}", nick


def test_pdfsig_add_signature(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    signer_nssdb: tuple[str, str],
) -> None:
    """poppler's pdfsig signs through NSS (adbe.pkcs7.detached, SHA-256); online: TOTAL-PASSED."""
    db, nick = signer_nssdb
    out = work / "pdfsig.pdf"
    subprocess.run(
        [
            *("pdfsig", "-nssdir", db, "-add-signature", "-nick", nick),
            *("-new-signature-field-name", "Poppler1", "-reason", "interop", str(SAMPLE), str(out)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="poppler (pdfsig -add-signature 22.12, NSS)",
        sequence="sign (B-B)",
        expected="TOTAL-PASSED",
        note="online revocation check",
    )
    _passed(r)
    # an LTV update by another tool (pyHanko's /DSS) keeps it valid
    ltv = work / "pdfsig-pyhanko-dss.pdf"
    ltv.write_bytes(_add_dss(out.read_bytes(), pki.p12(ARCH, "official")))
    r = _row(
        matrix,
        ltv,
        pki,
        nssdb,
        signer="poppler (pdfsig -add-signature 22.12, NSS)",
        sequence="sign -> pyHanko /DSS update",
        expected="TOTAL-PASSED",
    )
    _passed(r)


def test_signpdf_node(
    pki: testpki.TestPki, services: PkiServices, nssdb: str, matrix: Matrix, work: Path, p12: Path
) -> None:
    """node-signpdf (@signpdf/signpdf 3 + signer-p12 + placeholder-plain): TOTAL-PASSED online."""
    require_tool("node")
    if not (REPO / "tools" / "node_modules" / "@signpdf" / "signpdf").is_dir():
        pytest.fail("@signpdf is not installed (run `npm ci --prefix tools`)")
    out = work / "signpdf.pdf"
    script = Path(__file__).with_name("signpdf_sign.js")
    subprocess.run(
        ["node", str(script), str(SAMPLE), str(out), str(p12), PASSWORD],
        check=True,
        capture_output=True,
        timeout=60,
    )
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="node-signpdf (@signpdf 3.3)",
        sequence="placeholder-plain -> sign",
        expected="TOTAL-PASSED",
    )
    _passed(r)


def _encrypt(src: Path, dest: Path, user: str) -> None:
    require_tool("qpdf")
    subprocess.run(
        [
            "qpdf",
            "--encrypt",
            user,
            "owner-secret",
            "256",
            "--print=none",
            "--",
            str(src),
            str(dest),
        ],
        check=True,
        timeout=60,
    )


def test_qpdf_encrypted_empty_user_password(
    pki: testpki.TestPki, services: PkiServices, nssdb: str, matrix: Matrix, work: Path, p12: Path
) -> None:
    """An AES-256 encrypted input (empty user password, printing forbidden) signed by pyHanko:
    opened like any reader opens it, and verified."""
    enc = work / "qpdf-empty.pdf"
    _encrypt(SAMPLE, enc, "")
    out = work / "qpdf-empty-signed.pdf"
    out.write_bytes(_pyhanko_sign(enc.read_bytes(), p12, password=""))
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="qpdf 11 (AES-256) + pyHanko",
        sequence="encrypt (user pw empty, --print=none) -> sign",
        expected="TOTAL-PASSED",
        password="",
    )
    _passed(r)


def test_encryption_scheme_esign_cannot_open_is_indeterminate(
    pki: testpki.TestPki, services: PkiServices, work: Path, p12: Path
) -> None:
    """A signed PDF under a security handler pyHanko does not know (/Filter renamed, same
    length): nothing is proven either way, so INDETERMINATE with the reason, never TOTAL-FAILED."""
    enc = work / "unknown-handler-in.pdf"
    _encrypt(SAMPLE, enc, "")
    signed = _pyhanko_sign(enc.read_bytes(), p12, password="")
    assert signed.count(b"/Standard") == 1
    odd = work / "unknown-handler.pdf"
    odd.write_bytes(signed.replace(b"/Standard", b"/Nonesuch"))
    r = run_esign("verify", str(odd), "--trust", str(pki.trust_dir), "--offline", "--lang", "en")
    assert r.code == 2, r.out + r.err
    assert "INDETERMINATE" in r.out and "TOTAL-FAILED" not in r.out
    assert "cannot decrypt it" in r.out and "/Nonesuch" in r.out


def test_qpdf_encrypted_user_password(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    p12: Path,
    tmp_path: Path,
) -> None:
    """A user password: without it the verdict is INDETERMINATE with a one-line reason (nothing is
    proven either way); with --password-file the signature is verified."""
    enc = work / "qpdf-user.pdf"
    _encrypt(SAMPLE, enc, "Нууц-42")
    out = work / "qpdf-user-signed.pdf"
    out.write_bytes(_pyhanko_sign(enc.read_bytes(), p12, password="Нууц-42"))
    locked = esign_verify(out, pki)
    assert locked.code == 2 and locked.indication == "INDETERMINATE", locked.out + locked.err
    assert "--password-file" in locked.out and "encrypted" in locked.out
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("guess\n", encoding="utf-8")
    r = esign_verify(out, pki, extra=("--password-file", str(wrong)))
    assert r.code == 2 and r.indication == "INDETERMINATE", r.out + r.err
    assert "does not open" in r.out
    missing = esign_verify(out, pki, extra=("--password-file", str(tmp_path / "none.txt")))
    assert missing.code >= 3 and "cannot read password file" in missing.err, missing.err
    assert missing.err.count("\n") == 1 and "Traceback" not in missing.err, missing.err
    right = tmp_path / "pw.txt"
    right.write_text("Нууц-42\n", encoding="utf-8")
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="qpdf 11 (AES-256) + pyHanko",
        sequence="encrypt (user pw) -> sign; verify --password-file",
        expected="TOTAL-PASSED",
        password="Нууц-42",
        extra=("--password-file", str(right)),
        note="without the password: INDETERMINATE, exit 2, 'give it with --password-file'",
    )
    _passed(r)


@pytest.fixture(scope="module")
def lo_hybrid(work: Path) -> bytes:
    require_tool("libreoffice")
    text = "Гэрчилгээ / Certificate\nRegister No. УБ99112233\n"
    return hybrid.libreoffice_hybrid(text, work / "lo").read_bytes()


def test_libreoffice_hybrid(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    p12: Path,
    lo_hybrid: bytes,
) -> None:
    """LibreOffice's hybrid export (ODF embedded, trailer /AdditionalStreams) signed by pyHanko,
    then LTV-extended: both TOTAL-PASSED."""
    signed = work / "lo-hybrid-signed.pdf"
    signed.write_bytes(_pyhanko_sign(lo_hybrid, p12))
    r = _row(
        matrix,
        signed,
        pki,
        nssdb,
        signer="LibreOffice 7.4 (hybrid) + pyHanko",
        sequence="export IsAddStream -> sign",
        expected="TOTAL-PASSED",
    )
    _passed(r)
    ltv = work / "lo-hybrid-signed-dss.pdf"
    ltv.write_bytes(_add_dss(signed.read_bytes(), p12))
    r = _row(
        matrix,
        ltv,
        pki,
        nssdb,
        signer="LibreOffice 7.4 (hybrid) + pyHanko",
        sequence="export -> sign -> /DSS update",
        expected="TOTAL-PASSED",
    )
    _passed(r)


def _dangling_then_signed(lo_hybrid: bytes, p12: Path) -> tuple[bytes, bytes]:
    """Two signed hybrids whose trailer names an undefined object: in ``stays`` no later update
    defines it; in ``reused`` the number is the first one the next update allocates."""
    stays = _pyhanko_sign(hybrid.with_dangling_stream(lo_hybrid, 10_000), p12)
    free = hybrid.size(stays)
    reused = _pyhanko_sign(hybrid.with_dangling_stream(lo_hybrid, free + 1), p12)
    return stays, reused


@pytest.mark.parametrize("shape", ["stays-dangling", "reused-by-dss"])
def test_libreoffice_hybrid_dangling(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    p12: Path,
    lo_hybrid: bytes,
    shape: str,
) -> None:
    """Issue 8 class 2: a dangling /AdditionalStreams reference reads as null (no internal error
    shown as a malformed signature), and an LTV update whose /DSS reuses that number is allowed."""
    stays, reused = _dangling_then_signed(lo_hybrid, p12)
    data = _add_dss(stays if shape == "stays-dangling" else reused, p12)
    reader = PdfFileReader(BytesIO(data), strict=False)
    dangling = reader.trailer["/AdditionalStreams"].raw_get(1).reference
    new = reader.xrefs.explicit_refs_in_revision(reader.xrefs.total_revisions - 1)
    assert (dangling in new) is (shape == "reused-by-dss"), "the file does not have its shape"
    out = work / f"lo-hybrid-{shape}.pdf"
    out.write_bytes(data)
    r = _row(
        matrix,
        out,
        pki,
        nssdb,
        signer="LibreOffice 7.4 (hybrid) + pyHanko",
        sequence=f"export -> dangling /AdditionalStreams -> sign -> /DSS ({shape})",
        expected="TOTAL-PASSED",
        note="dangling reference set by a pyHanko update (synthetic)",
    )
    assert "Reference(" not in r.out, r.out
    _passed(r)


def test_dangling_reference_in_signed_page_stays_forbidden(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    p12: Path,
) -> None:
    """The hybrid allowance is for the trailer's /AdditionalStreams only: a dangling reference
    planted in a signed page's /Contents, filled in after signing, still changes what the page
    shows and must never pass."""
    w = IncrementalPdfFileWriter(BytesIO(SAMPLE.read_bytes()), strict=False)
    page_ref = w.root["/Pages"]["/Kids"].raw_get(0).reference
    page = w.get_object(page_ref)
    contents = page.raw_get("/Contents")
    planted = hybrid.size(SAMPLE.read_bytes()) + 30
    slot = generic.IndirectObject(planted, 0, w)
    old = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    page["/Contents"] = generic.ArrayObject([*old, slot])
    w.update_container(page)
    out_buf = BytesIO()
    w.write(out_buf)
    signed = _pyhanko_sign(out_buf.getvalue(), p12)
    w = IncrementalPdfFileWriter(BytesIO(signed), strict=False)
    stream = generic.StreamObject(stream_data=b"BT /F1 40 Tf 100 400 Td (FORGED) Tj ET")
    assert planted > hybrid.size(signed), "the planted number was taken by the signature"
    filler = w.add_object(generic.NullObject())  # orphans, harmless, up to the planted number
    while filler.idnum < planted - 1:
        filler = w.add_object(generic.NullObject())
    assert w.add_object(stream).idnum == planted
    attacked = work / "dangling-page-contents-filled.pdf"
    with attacked.open("wb") as f:
        w.write(f)
    r = _row(
        matrix,
        attacked,
        pki,
        nssdb,
        signer="attack (pyHanko writer)",
        sequence="dangling ref in page /Contents -> sign -> define it",
        expected="TOTAL-FAILED",
        note="must never pass: the page shows new text",
    )
    assert r.indication != "TOTAL-PASSED" and r.code != 0, r.out
    assert r.indication == "TOTAL-FAILED", r.out + r.err


def _ltv_and_doc_timestamp(data: bytes, pki: testpki.TestPki) -> bytes:
    """pyHanko as "another tool": a /DSS with the signer chain's OCSP responses and CRLs fetched
    from the test PKI, then an RFC 3161 document timestamp (PAdES B-LTA)."""
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    from esign.certfiles import load_cert_paths

    roots = list(load_cert_paths(sorted(pki.trust_dir.glob("*.pem"))))
    others = list(load_cert_paths(sorted(pki.intermediates_dir.glob("*.pem"))))

    def context() -> ValidationContext:
        fetchers = RequestsFetcherBackend()  # synchronous: no aiohttp session left open
        return ValidationContext(
            trust_roots=roots, other_certs=others, allow_fetching=True, fetcher_backend=fetchers
        )

    reader = PdfFileReader(BytesIO(data), strict=False)
    out = BytesIO(data)
    for sig in reader.embedded_signatures:
        DocumentSecurityStore.add_dss(
            out, sig.pkcs7_content, validation_context=context(), strict=False
        )
    stamper = signers.PdfTimeStamper(RequestsHTTPTimeStamper(pki.tsa_url(ARCH)))
    w = IncrementalPdfFileWriter(BytesIO(out.getvalue()), strict=False)
    final = BytesIO()
    stamper.timestamp_pdf(w, "sha256", validation_context=context(), output=final)
    return final.getvalue()


def test_pdfsig_then_ltv_timestamp_then_second_pdfsig_signer(
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
    work: Path,
    signer_nssdb: tuple[str, str],
) -> None:
    """A sequence across tools: poppler signs; pyHanko adds LTV data and a document timestamp
    (offline: TOTAL-PASSED at B-LTA from the embedded data alone); poppler signs again."""
    db, nick = signer_nssdb
    first = work / "seq-pdfsig.pdf"
    second = work / "seq-pdfsig-ltv-ts-pdfsig.pdf"

    def pdfsig_sign(src: Path, dest: Path, field: str) -> None:
        subprocess.run(
            [
                *("pdfsig", "-nssdir", db, "-add-signature", "-nick", nick),
                *("-new-signature-field-name", field, str(src), str(dest)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    pdfsig_sign(SAMPLE, first, "Poppler1")
    ltv = work / "seq-pdfsig-ltv-ts.pdf"
    ltv.write_bytes(_ltv_and_doc_timestamp(first.read_bytes(), pki))
    r = esign_verify(ltv, pki, online=False)
    matrix.add(
        ltv,
        signer="poppler (pdfsig 22.12) + pyHanko LTV",
        sequence="pdfsig sign -> pyHanko /DSS (OCSP, CRL) -> document timestamp; offline",
        expected="TOTAL-PASSED",
        esign=r,
        pki=pki,
        nssdb=nssdb,
    )
    _passed(r)
    assert any(s["kind"] == "document-timestamp" for s in r.signatures), r.out
    pdfsig_sign(ltv, second, "Poppler2")
    r = _row(
        matrix,
        second,
        pki,
        nssdb,
        signer="poppler (pdfsig 22.12) + pyHanko LTV",
        sequence="... -> second pdfsig signer; online",
        expected="TOTAL-PASSED",
    )
    _passed(r)
    assert len([s for s in r.signatures if s["kind"] == "signature"]) == 2, r.out
