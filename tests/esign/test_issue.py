"""`esign issue` for one document, judged by independent tools: poppler (fonts, text, signature),
`esign verify`, and two QR decoders (zxing-cpp and ZBar) reading clean and photocopied renderings.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageEnhance, ImageFilter

from esign import testpki
from esign.issue import document_id
from esign.services import PkiServices
from esign.template import load_template
from tests.helpers import REPO, pdfsig, require_tool, run_esign

TEMPLATES = ("residence", "criminal-record", "social-insurance")
BASE_URL = "http://127.0.0.1:9/"
ISSUED_LINE = re.compile(r"^issued (\S+) as (.+) \(id ([A-Z2-7]{5}-[A-Z2-7]{5})\)$", re.M)
QR_LINE = re.compile(r"^QR: (\S+)$", re.M)


@dataclass(frozen=True)
class IssuedDoc:
    template: str
    pdf: Path
    number: str
    doc_id: str
    url: str
    data: dict[str, object]


def key_args(pki: testpki.TestPki, template: str = "residence") -> list[str]:
    """The template's own agency seal: another agency's key is refused (issue 10, point 3)."""
    return [
        "--key",
        str(pki.agency_seal_p12(load_template(template).issuer_code)),
        "--passfile",
        str(pki.password_file),
        "--tsa",
        pki.tsa_url("mn-ec"),
        "--base-url",
        BASE_URL,
    ]


def write_trust(pki: testpki.TestPki, folder: Path) -> Path:
    path = folder / "trust.toml"
    path.write_text(
        f'anchors = ["{pki.trust_dir.resolve()}"]\n'
        f'intermediates = ["{pki.intermediates_dir.resolve()}"]\n'
        f'seal_certificates = ["{pki.seals_dir.resolve()}"]\n',
        encoding="utf-8",
    )
    return path


def photocopy(pdf: Path, out: Path, seed: int = 1) -> Path:
    """A poor office photocopy of the first page: 300 dpi gray, blurred, noisy, slightly turned,
    washed out, saved as a low-quality JPEG."""
    stem = out.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", str(pdf), str(stem)],
        check=True,
        capture_output=True,
    )
    with Image.open(stem.with_suffix(".png")) as page:
        img = page.convert("L")
    img = img.filter(ImageFilter.GaussianBlur(radius=1.2))
    noise = Image.frombytes("L", img.size, random.Random(seed).randbytes(img.width * img.height))
    img = Image.blend(img, noise, 0.12)
    img = img.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    img = ImageEnhance.Contrast(img).enhance(0.6)
    img.save(out, "JPEG", quality=60)
    return out


def render_png(pdf: Path, out: Path, dpi: int = 150) -> Path:
    stem = out.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(stem)],
        check=True,
        capture_output=True,
    )
    return stem.with_suffix(".png")


def zxing_texts(image: Path) -> list[str]:
    with Image.open(image) as img:
        return [r.text for r in zxingcpp.read_barcodes(img) if r.valid]


def zbar_texts(image: Path) -> list[str]:
    proc = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"zbarimg found no QR code in {image}: {proc.stderr}"
    return [line for line in proc.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def issued(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, IssuedDoc]:
    out = tmp_path_factory.mktemp("issue")
    registry = f"sqlite:{out / 'reg.sqlite3'}"
    docs: dict[str, IssuedDoc] = {}
    for name in TEMPLATES:
        data_file = REPO / "samples" / "data" / f"{name}.json"
        pdf = out / f"{name}.pdf"
        r = run_esign(
            "issue",
            "--template",
            name,
            "--data",
            str(data_file),
            "-o",
            str(pdf),
            *key_args(pki, name),
            "--registry",
            registry,
            cwd=out,
        )
        assert r.code == 0, r.out + r.err
        issued_line, qr_line = ISSUED_LINE.search(r.out), QR_LINE.search(r.out)
        assert issued_line and qr_line, r.out
        docs[name] = IssuedDoc(
            template=name,
            pdf=pdf,
            number=issued_line.group(1),
            doc_id=issued_line.group(3),
            url=qr_line.group(1),
            data=json.loads(data_file.read_text(encoding="utf-8")),
        )
    return docs


@pytest.mark.parametrize("name", TEMPLATES)
def test_issue_prints_number_id_and_qr_url(name: str, issued: dict[str, IssuedDoc]) -> None:
    doc = issued[name]
    assert doc.pdf.is_file() and doc.pdf.read_bytes().startswith(b"%PDF-")
    assert doc.number == doc.data["number"]
    template = load_template(name)
    assert doc.doc_id == document_id(template.issuer_code, doc.number)
    assert doc.url.startswith("HTTP://127.0.0.1:9/V/")
    # QR alphanumeric mode: upper case, digits and a few symbols only.
    assert re.fullmatch(r"[0-9A-Z $%*+\-./:]+", doc.url), doc.url


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_font_is_embedded_and_subset(name: str, issued: dict[str, IssuedDoc]) -> None:
    require_tool("pdffonts")
    proc = subprocess.run(["pdffonts", str(issued[name].pdf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()[2:]
    assert rows, proc.stdout
    for row in rows:
        # name type... encoding emb sub uni object-id gen: read the flags from the right.
        emb, sub, uni = row.split()[-5:-2]
        assert (emb, sub) == ("yes", "yes"), row
        assert uni == "yes", row
        assert re.match(r"^[A-Z]{6}\+", row), f"subset fonts carry a XXXXXX+ tag: {row}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_text_extracts_as_mongolian_cyrillic(name: str, issued: dict[str, IssuedDoc]) -> None:
    require_tool("pdftotext")
    doc = issued[name]
    proc = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(doc.pdf), "-"], capture_output=True, check=True
    )
    text = proc.stdout.decode("utf-8")
    assert doc.number in text
    assert "МОНГОЛ УЛС" in text
    assert set("ӨөҮү") & set(text), "Mongolian letters Ө/ө or Ү/ү must survive extraction"
    subject = doc.data["subject"]
    assert isinstance(subject, dict)
    assert subject["name"] in " ".join(text.split())
    assert subject["register_number"] in text
    assert doc.doc_id in text, "the short code printed under the QR"


@pytest.mark.parametrize("name", TEMPLATES)
def test_pdf_is_certified_and_verifies(
    name: str, pki: testpki.TestPki, issued: dict[str, IssuedDoc], tmp_path: Path
) -> None:
    require_tool("pdfsig")
    doc = issued[name]
    sig = pdfsig(doc.pdf)
    assert sig.valid_signatures == 1, sig.text
    # B-LT: the validation data follow the signature in one more revision (the DSS), so poppler
    # says "Not total document signed"; esign's DocMDP analysis below judges that revision.
    trust = write_trust(pki, tmp_path)
    r = run_esign("verify", str(doc.pdf), "--trust", str(trust), "--json")
    assert r.code == 0, r.out + r.err
    report = json.loads(r.out)
    assert report["indication"] == "TOTAL-PASSED", report
    assert report["revocation_mode"] == "online"
    (signature,) = report["signatures"]
    assert signature["kind"] == "certification"
    assert signature["docmdp"] == "NO_CHANGES"
    assert signature["pades_level"] == "B-LT", "issued at B-LT by default (issue 10, point 8)"
    assert signature["timestamp_time"] is not None
    # signed by the template's own agency (its seal key signs the PDF too)
    assert signature["signer"]["organisation"].startswith(load_template(name).issuer_mn)
    r = run_esign("verify", str(doc.pdf), "--trust", str(trust), "--lang", "en")
    assert r.code == 0 and "VALID (TOTAL-PASSED)" in r.out, r.out + r.err


@pytest.mark.parametrize("name", TEMPLATES)
def test_issued_pdf_proves_itself_offline(
    name: str, pki: testpki.TestPki, issued: dict[str, IssuedDoc], nssdb: str, tmp_path: Path
) -> None:
    """A bank with the file alone (no network) gets TOTAL-PASSED: the OCSP answers are inside;
    poppler, with NSS trusting the test roots, finds the signature valid."""
    require_tool("pdfsig")
    doc = issued[name]
    sig = pdfsig(doc.pdf, nssdb)
    assert sig.valid_signatures == 1, sig.text
    trust = write_trust(pki, tmp_path)
    r = run_esign("verify", str(doc.pdf), "--trust", str(trust), "--offline", "--json")
    assert r.code == 0, r.out + r.err
    report = json.loads(r.out)
    assert report["indication"] == "TOTAL-PASSED", report
    assert report["revocation_mode"] == "offline"
    r = run_esign("verify", str(doc.pdf), "--trust", str(trust), "--offline")
    assert r.code == 0 and "TOTAL-PASSED" in r.out, r.out + r.err


@pytest.mark.parametrize("name", TEMPLATES)
def test_qr_reads_at_150_dpi_with_zxing_and_zbar(
    name: str, issued: dict[str, IssuedDoc], tmp_path: Path
) -> None:
    require_tool("pdftoppm")
    require_tool("zbarimg")
    doc = issued[name]
    png = render_png(doc.pdf, tmp_path / "page.png")
    assert zxing_texts(png) == [doc.url]
    assert zbar_texts(png) == [doc.url]


@pytest.mark.parametrize("name", TEMPLATES)
def test_qr_reads_from_a_blurred_noisy_photocopy(
    name: str, issued: dict[str, IssuedDoc], tmp_path: Path
) -> None:
    require_tool("pdftoppm")
    require_tool("zbarimg")
    doc = issued[name]
    jpeg = photocopy(doc.pdf, tmp_path / "copy.jpg", seed=TEMPLATES.index(name))
    with Image.open(jpeg) as img:
        assert img.mode == "L" and img.format == "JPEG"
        assert img.width > 2400, "300 dpi A4"
    assert zxing_texts(jpeg) == [doc.url]
    assert zbar_texts(jpeg) == [doc.url]


def test_issue_refuses_bad_data_with_one_line(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    raw = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))
    del raw["fields"]["address"]
    data = tmp_path / "bad.json"
    data.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "bad.pdf"
    r = run_esign(
        "issue",
        "--template",
        "residence",
        "--data",
        str(data),
        "-o",
        str(out),
        *key_args(pki),
        "--no-registry",
        cwd=tmp_path,
    )
    assert r.code == 4, r.out + r.err
    assert "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "missing field(s) for residence: address" in r.err
    assert not out.exists()


def test_issuing_a_recorded_number_again_leaves_the_pdf_alone(
    pki: testpki.TestPki, services: PkiServices, issued: dict[str, IssuedDoc]
) -> None:
    doc = issued["residence"]
    before = (doc.pdf.stat().st_mtime_ns, doc.pdf.read_bytes())
    r = run_esign(
        "issue",
        "--template",
        "residence",
        "--data",
        str(REPO / "samples" / "data" / "residence.json"),
        "-o",
        str(doc.pdf),
        *key_args(pki),
        "--registry",
        f"sqlite:{doc.pdf.parent / 'reg.sqlite3'}",
        cwd=doc.pdf.parent,
    )
    assert r.code == 9, r.out + r.err
    assert len(r.err.strip().splitlines()) == 1
    assert f"document {doc.doc_id} is already in the registry" in r.err
    assert (doc.pdf.stat().st_mtime_ns, doc.pdf.read_bytes()) == before
