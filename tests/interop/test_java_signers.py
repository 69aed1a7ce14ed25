"""PDFs signed by the Java libraries agencies and EU DSS integrators use: iText 5 (PdfStamper +
MakeSignature, and its LtvVerification / LtvTimestamp, which write /DSS with /VRI entries) and
Apache PDFBox 2 with BouncyCastle (PDDocument.addSignature + CMSSignedDataGenerator).

The two signers in tests/interop/java/ are compiled here with javac against Debian's jars and run
once per session (one JVM for every signing job). Each file gets the verdict a careful expert
gives, asserted on what `esign verify` tells the user; every file is also a row of the interop
matrix (esign beside pdfsig and pyHanko). Where esign is still wrong the test is a strict xfail
naming the issue 8 class, so it flips to a failure the day the fix lands.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from esign import testpki
from esign.services import PkiServices
from tests.helpers import REPO, require_tool
from tests.interop.matrix import EsignResult, Matrix, esign_verify

JAVA_SRC = Path(__file__).resolve().parent / "java"
JAR_DIR = Path("/usr/share/java")
# Debian packages: libitext5-java, libpdfbox2-java (+ fontbox2, commons-logging), libbcprov-java,
# libbcpkix-java (+ bcutil)
JARS = ("itext5", "pdfbox2", "fontbox2", "commons-logging", "bcprov", "bcpkix", "bcutil")
SAMPLE = REPO / "samples" / "certificate.pdf"
CADES = "ETSI.CAdES.detached"
PKCS7 = "adbe.pkcs7.detached"


@dataclass(frozen=True)
class Case:
    """One signed file: how it was made and what a careful expert says of it."""

    signer: str
    sequence: str
    online: bool
    levels: tuple[str | None, ...]  # per signature, in order; None: a document timestamp
    xfail: str | None = None
    expected: str = "TOTAL-PASSED"
    note: str = ""


CASES: dict[str, Case] = {
    "itext-rsa-bb": Case("iText 5", "MakeSignature CAdES RSA, no TSA", True, ("B-B",)),
    "itext-rsa-bt": Case(
        "iText 5", "MakeSignature CAdES RSA + TSAClientBouncyCastle", True, ("B-T",)
    ),
    "itext-ec-bt": Case(
        "iText 5",
        "MakeSignature CAdES ECDSA P-256 + TSA (signatureAlgorithm id-ecPublicKey)",
        True,
        ("B-T",),
        note="iText 5 writes signatureAlgorithm id-ecPublicKey (read as ECDSA with the "
        "SHA-256 digest); pyHanko cannot, pdfsig can",
    ),
    "itext-rsa-lt": Case(
        "iText 5",
        "B-T -> LtvVerification (OCSP+CRL, VRI) + LtvTimestamp",
        False,
        ("B-LTA", None),
    ),
    "itext-rsa-lt2": Case(
        "iText 5",
        "B-T -> iText LTV -> iText LTV again (existing VRI entry rewritten)",
        False,
        ("B-LTA", None, None),
        note="the second LTV run rewrites /DSS: the existing VRI entry's OCSP response "
        "replaced by a fresh one (allowed)",
    ),
    "pdfbox-rsa-cades-bt": Case("PDFBox 2 + BC", f"addSignature {CADES} RSA + TSA", True, ("B-T",)),
    "pdfbox-ec-cades-bt": Case(
        "PDFBox 2 + BC", f"addSignature {CADES} ECDSA + TSA", True, ("B-T",)
    ),
    "pdfbox-rsa-pkcs7-bb": Case("PDFBox 2 + BC", f"addSignature {PKCS7} RSA", True, ("B-B",)),
    "pdfbox-ec-pkcs7-bt": Case(
        "PDFBox 2 + BC", f"addSignature {PKCS7} ECDSA + TSA", True, ("B-T",)
    ),
    "pdfbox-rsa-cades-itext-lt": Case(
        "PDFBox 2 + BC",
        f"{CADES} RSA B-T -> iText LtvVerification + LtvTimestamp",
        False,
        ("B-LTA", None),
        note="iText copies the inherited /MediaBox (same value) onto the page: invisible, "
        "allowed by esign's diff policy, not by pyHanko's default",
    ),
    "itext-rsa-bt-pdfbox-ec": Case(
        "iText 5 + PDFBox 2",
        f"iText CAdES RSA B-T -> second signer PDFBox {CADES} ECDSA B-T",
        True,
        ("B-T", "B-T"),
    ),
    "itext-rsa-lt-pdfbox-ec": Case(
        "iText 5 + PDFBox 2",
        f"iText B-T -> iText LTV + doc timestamp -> second signer PDFBox {CADES} ECDSA B-T",
        True,
        ("B-LTA", None, "B-T"),
    ),
    "itext-lt-pdfbox-seal-itext-lta": Case(
        "iText 5 + PDFBox 2",
        "iText B-T -> iText LTV + doc timestamp -> PDFBox seal (RSA) B-T -> iText LTV + "
        "archive timestamp",
        False,
        ("B-LTA", None, "B-LTA", None),
        note="sign, LTV by iText, second signer by another tool, archive timestamp: offline",
    ),
    # the neighbours of the allowed identical /MediaBox copy: a real change of the page's size
    # after signing (half the page cut away) is visible, so it must fail
    "pdfbox-rsa-cades-mediabox": Case(
        "PDFBox 2 + iText 5",
        "PDFBox CAdES B-T -> iText append update shrinking page 1's /MediaBox",
        True,
        ("B-T",),
        expected="TOTAL-FAILED",
        note="the page's /MediaBox really changed after signing: visible, must fail",
    ),
    "itext-rsa-lt-mediabox": Case(
        "iText 5",
        "iText B-T -> iText LTV + doc timestamp -> append update shrinking page 1's /MediaBox",
        False,
        ("B-LTA", None),
        expected="TOTAL-FAILED",
        note="the page's /MediaBox really changed after signing: visible, must fail",
    ),
    "pdfbox-rsa-cades-overtext": Case(
        "PDFBox 2 + iText 5",
        "PDFBox CAdES B-T -> iText append update writing new text over page 1",
        True,
        ("B-T",),
        expected="TOTAL-FAILED",
        note="incremental saving attack made with an ordinary tool: visible, must fail",
    ),
}


def _jobs(pki: testpki.TestPki, out: Path) -> list[list[str]]:
    """The signing jobs, in order (later ones extend earlier files)."""
    pw = testpki.P12_PASSWORD

    def p12(arch: str) -> str:
        return str(pki.p12(arch, "official"))

    def f(name: str) -> str:
        return str(out / f"{name}.pdf")

    rsa_tsa, ec_tsa, s = pki.tsa_url("mn-rsa"), pki.tsa_url("mn-ec"), str(SAMPLE)
    return [
        ["itext", "sign", s, f("itext-rsa-bb"), p12("mn-rsa"), pw],
        ["itext", "sign", s, f("itext-rsa-bt"), p12("mn-rsa"), pw, rsa_tsa],
        ["itext", "sign", s, f("itext-ec-bt"), p12("mn-ec"), pw, ec_tsa],
        ["itext", "ltv", f("itext-rsa-bt"), f("itext-rsa-lt"), rsa_tsa],
        ["itext", "ltv", f("itext-rsa-lt"), f("itext-rsa-lt2"), rsa_tsa],
        ["pdfbox", s, f("pdfbox-rsa-cades-bt"), p12("mn-rsa"), pw, CADES, rsa_tsa],
        ["pdfbox", s, f("pdfbox-ec-cades-bt"), p12("mn-ec"), pw, CADES, ec_tsa],
        ["pdfbox", s, f("pdfbox-rsa-pkcs7-bb"), p12("mn-rsa"), pw, PKCS7],
        ["pdfbox", s, f("pdfbox-ec-pkcs7-bt"), p12("mn-ec"), pw, PKCS7, ec_tsa],
        # iText 5 cannot LTV-extend a PDFBox ECDSA signature (its PdfPKCS7 has no name for
        # ecdsa-with-SHA256): iText's limit, so the cross-tool LTV sequence signs with RSA
        ["itext", "ltv", f("pdfbox-rsa-cades-bt"), f("pdfbox-rsa-cades-itext-lt"), rsa_tsa],
        ["pdfbox", f("itext-rsa-bt"), f("itext-rsa-bt-pdfbox-ec"), p12("mn-ec"), pw, CADES, ec_tsa],
        ["pdfbox", f("itext-rsa-lt"), f("itext-rsa-lt-pdfbox-ec"), p12("mn-ec"), pw, CADES, ec_tsa],
        [
            "pdfbox",
            f("itext-rsa-lt"),
            f("seq-seal"),
            str(pki.p12("mn-rsa", "seal")),
            pw,
            CADES,
            rsa_tsa,
        ],
        ["itext", "ltv", f("seq-seal"), f("itext-lt-pdfbox-seal-itext-lta"), rsa_tsa],
        ["itext", "mediabox", f("pdfbox-rsa-cades-bt"), f("pdfbox-rsa-cades-mediabox")],
        ["itext", "mediabox", f("itext-rsa-lt"), f("itext-rsa-lt-mediabox")],
        ["itext", "overtext", f("pdfbox-rsa-cades-bt"), f("pdfbox-rsa-cades-overtext")],
    ]


@pytest.fixture(scope="session")
def java_signed(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Compile the Java signers and run every signing job in one JVM, once per session."""
    require_tool("javac")
    missing = [j for j in JARS if not (JAR_DIR / f"{j}.jar").is_file()]
    if missing:
        pytest.fail(f"Debian jars missing: {missing} (run `make system-deps`)")
    classpath = ":".join(str(JAR_DIR / f"{j}.jar") for j in JARS)
    classes = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(p) for p in JAVA_SRC.glob("*.java"))
    subprocess.run(
        ["javac", "-nowarn", "-d", str(classes), "-cp", classpath, *sources],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = tmp_path_factory.mktemp("java-signed")
    jobs = "".join("\t".join(job) + "\n" for job in _jobs(pki, out))
    # a short-lived JVM: the C1 compiler and the serial collector start fastest
    jvm = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    proc = subprocess.run(
        [*jvm, "-cp", f"{classes}:{classpath}", "Batch"],
        input=jobs,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = {name: out / f"{name}.pdf" for name in CASES}
    assert all(p.is_file() for p in made.values()), proc.stdout + proc.stderr
    return made


@pytest.fixture(scope="session")
def java_verdicts(
    java_signed: dict[str, Path],
    pki: testpki.TestPki,
    services: PkiServices,
    nssdb: str,
    matrix: Matrix,
) -> dict[str, EsignResult]:
    """esign's verdict on every file, each also a matrix row (pdfsig and pyHanko beside it).
    The files are judged in a few threads: each judge is a child process, mostly waiting."""

    def judge(name: str) -> EsignResult:
        case = CASES[name]
        path = java_signed[name]
        r = esign_verify(path, pki, online=case.online)
        matrix.add(
            path,
            signer=case.signer,
            sequence=case.sequence + (" (--online)" if case.online else " (--offline)"),
            expected=case.expected,
            esign=r,
            pki=pki,
            nssdb=nssdb,
            note=" ".join(n for n in (case.note, case.xfail or "") if n),
        )
        return r

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CASES, pool.map(judge, CASES), strict=True))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=c.xfail)) if c.xfail else n
        for n, c in CASES.items()
    ],
)
def test_java_signer(name: str, java_verdicts: dict[str, EsignResult]) -> None:
    """A genuine file from iText or PDFBox is TOTAL-PASSED, every signature listed, at its level:
    B-B/B-T checked online (revocation fetched from the test PKI), LTV-extended files offline.
    A visible change after signing is TOTAL-FAILED, every signature still listed."""
    case = CASES[name]
    r = java_verdicts[name]
    assert len(r.signatures) == len(case.levels), r.out + r.err
    if case.expected == "TOTAL-FAILED":
        assert r.code == 1 and r.indication == "TOTAL-FAILED", r.out + r.err
        assert r.signatures[0]["indication"] == "TOTAL-FAILED", r.out
        assert r.signatures[0]["subindication"] == "FORMAT_FAILURE", r.out
        return
    assert r.code == 0 and r.indication == "TOTAL-PASSED", r.out + r.err
    for sig, level in zip(r.signatures, case.levels, strict=True):
        assert sig["indication"] == "TOTAL-PASSED", r.out
        if level is None:
            assert sig["kind"] == "document-timestamp", r.out
        else:
            assert sig["kind"] == "signature" and sig["pades_level"] == level, r.out


def test_itext_ltv_makes_the_signature_b_lt_offline(
    java_signed: dict[str, Path], pki: testpki.TestPki
) -> None:
    """iText's /DSS and /VRI carry what offline validation needs: the signature itself is
    TOTAL-PASSED at B-LTA with no network, where the same file before LTV cannot be confirmed."""
    before = esign_verify(java_signed["itext-rsa-bt"], pki, online=False)
    assert before.code == 2 and before.indication == "INDETERMINATE", before.out + before.err
    after = esign_verify(java_signed["itext-rsa-lt"], pki, online=False)
    first = after.signatures[0]
    assert first["field_name"] == "Signature1", after.out
    assert first["indication"] == "TOTAL-PASSED" and first["pades_level"] == "B-LTA", after.out
    assert after.signatures[1]["kind"] == "document-timestamp", after.out


@pytest.mark.parametrize("name", ["itext-rsa-bt", "pdfbox-ec-cades-bt"])
def test_java_signed_file_tampered_fails(
    name: str, java_signed: dict[str, Path], pki: testpki.TestPki, tmp_path: Path
) -> None:
    """The judge can fail: one flipped byte inside what iText or PDFBox signed is TOTAL-FAILED."""
    data = bytearray(java_signed[name].read_bytes())
    at = data.find(b"stream", len(data) // 10) + 20  # inside the sample's first content stream
    data[at] ^= 0x01
    tampered = tmp_path / f"{name}-tampered.pdf"
    tampered.write_bytes(bytes(data))
    r = esign_verify(tampered, pki, online=False)
    assert r.code == 1 and r.indication == "TOTAL-FAILED", r.out + r.err
    assert r.subindication == "HASH_FAILURE", r.out
