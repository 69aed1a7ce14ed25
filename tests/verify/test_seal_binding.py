"""The QR seal binds what the paper says and who issued it (issue 10, points 3 and 4).

Judged from outside: the certificates are issued with `esign issue`, read with poppler's
`pdftotext` and checked with `esign seal verify` (output and exit code). The rules of
docs/qr-seal.md §6.1 (how a verifier finds each bound field on paper) are implemented here again,
independently of verify/sealfields.py, and must give each seal's own fields digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cbor2
import pytest

from esign import testpki
from esign.issue import CertificateIssuer
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.render import SealBlock, render_certificate
from esign.seal import SealClaims, SealSigner
from esign.services import PkiServices
from esign.template import load_data, load_template
from tests.helpers import REPO, require_tool, run_esign

TEMPLATES = ("residence", "criminal-record", "social-insurance")
AGENCY = {"residence": "UBEG", "criminal-record": "SHSG", "social-insurance": "NDEG"}
BASE_URL = "https://verify.e-mongolia.mn"
QR_LINE = re.compile(r"^QR: (\S+)$", re.M)
PASSWORD = testpki.P12_PASSWORD.encode()


@dataclass(frozen=True)
class Issued:
    template: str
    pdf: Path
    url: str


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("binding")


@pytest.fixture(scope="module")
def registry(folder: Path) -> str:
    return f"sqlite:{folder / 'registry.sqlite3'}"


@pytest.fixture(scope="module")
def trust(pki: testpki.TestPki, folder: Path) -> Path:
    path = folder / "trust.toml"
    path.write_text(
        f'anchors = ["{pki.trust_dir.resolve()}"]\n'
        f'intermediates = ["{pki.intermediates_dir.resolve()}"]\n'
        f'seal_certificates = ["{pki.seals_dir.resolve()}"]\n'
        f'fetch_allow = ["{pki.url}/"]\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def issued(
    pki: testpki.TestPki, services: PkiServices, folder: Path, registry: str
) -> dict[str, Issued]:
    """The three sample certificates, each issued by its own agency's key and recorded."""
    docs = {}
    for name in TEMPLATES:
        pdf = folder / f"{name}.pdf"
        r = run_esign(
            "issue", "--template", name,
            "--data", str(REPO / "samples" / "data" / f"{name}.json"), "-o", str(pdf),
            "--key", str(pki.agency_seal_p12(AGENCY[name])),
            "--passfile", str(pki.password_file), "--tsa", pki.tsa_url("mn-ec"),
            "--base-url", BASE_URL, "--registry", registry,
            cwd=folder,
        )  # fmt: skip
        assert r.code == 0, r.out + r.err
        found = QR_LINE.search(r.out)
        assert found, r.out
        docs[name] = Issued(name, pdf, found.group(1))
    return docs


def seal_verify(source: str | Path, trust: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """`esign seal verify` as a bank runs it: (exit code, the text shown, the JSON report)."""
    text = run_esign("seal", "verify", str(source), "--trust", str(trust), "--lang", "en", *extra)
    js = run_esign("seal", "verify", str(source), "--trust", str(trust), "--json", *extra)
    assert "Traceback" not in text.err + js.err, text.err + js.err
    assert text.code == js.code, (text.out, js.out)
    return text.code, text.out, json.loads(js.out)


# --- docs/qr-seal.md §6.1, re-implemented on pdftotext's output -----------------------------


def pdftotext(pdf: Path) -> str:
    require_tool("pdftotext")
    done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def spec_lines(text: str) -> list[str]:
    """Step 1: split at CR LF, CR, LF, U+2028, U+2029; collapse white space; drop empty lines."""
    out = []
    for line in re.split(r"\r\n|\r|\n|\u2028|\u2029", text):
        line = re.sub(r"\s+", " ", line).strip()
        if line:
            out.append(line)
    return out


def spec_values(lines: list[str], template_file: Path, number: str) -> dict[str, str]:
    """Steps 2 and 3: rows by their label pairs, values up to the next row, the last one up to
    the filled-in Mongolian body."""
    t = tomllib.loads(template_file.read_text(encoding="utf-8"))
    rows = [
        ("name", "Овог, нэр", "Name"),
        ("register_number", "Регистрийн дугаар", "Register number"),
    ]
    rows += [(f["key"], f["label_mn"], f["label_en"]) for f in t["fields"]]
    starts, pos = [], 0
    for _, mn, en in rows:
        pos = next(i for i in range(pos, len(lines) - 1) if lines[i] == mn and lines[i + 1] == en)
        starts.append(pos)
        pos += 2
    values = {
        rows[k][0]: " ".join(lines[starts[k] + 2 : starts[k + 1]]) for k in range(len(rows) - 1)
    }
    rest = lines[starts[-1] + 2 :]
    for count in range(1, len(rest) + 1):
        values[rows[-1][0]] = " ".join(rest[:count])
        body = " ".join(t["body"]["mn"].format(number=number, **values).split())
        if " ".join(rest[count:]).startswith(body):
            return values
    raise AssertionError("the body text after the table was not found")


def spec_digest(values: dict[str, str], names: list[str]) -> bytes:
    """Section 6: SHA-256 of deterministic CBOR of {NFC(name): NFC(value)}, first 16 bytes."""
    nfc = {unicodedata.normalize("NFC", k): unicodedata.normalize("NFC", values[k]) for k in names}
    return hashlib.sha256(cbor2.dumps(nfc, canonical=True)).digest()[:16]


def seal_claims(url: str) -> dict[int, Any]:
    """The claim map of a seal URL, decoded by hand (base32 -> COSE_Sign1 -> payload)."""
    payload = url.rsplit("/V/", 1)[1]
    cose = cbor2.loads(base64.b32decode(payload + "=" * (-len(payload) % 8)))
    claims: dict[int, Any] = cbor2.loads(cose.value[2])
    return claims


@pytest.mark.parametrize("name", TEMPLATES)
def test_fields_digest_recomputed_from_printed_text_equals_the_claim(
    name: str, issued: dict[str, Issued]
) -> None:
    doc = issued[name]
    template_file = REPO / "esign" / "templates" / f"{name}.toml"
    claims = seal_claims(doc.url)
    values = spec_values(spec_lines(pdftotext(doc.pdf)), template_file, claims[4])
    seal_fields = tomllib.loads(template_file.read_text(encoding="utf-8"))["seal_fields"]
    sample = json.loads((REPO / "samples" / "data" / f"{name}.json").read_text(encoding="utf-8"))
    assert {k: values[k] for k in seal_fields} == {k: sample["fields"][k] for k in seal_fields}
    assert (values["name"], values["register_number"]) == (claims[7], claims[8])
    assert spec_digest(values, seal_fields) == claims[9]
    assert claims[9] != spec_digest({}, [])  # not the empty set of issue 10, point 1


# --- changing the paper ---------------------------------------------------------------------


def forge(
    pki: testpki.TestPki,
    name: str,
    out: Path,
    *,
    fields: dict[str, str],
    url: str | None = None,
    agency: str | None = None,
) -> Path:
    """A certificate with other field values, signed with the agency's own key (an insider, or
    anyone holding the agency's signing API): with the genuine seal ``url`` when given, else with
    a fresh seal made by the same key for the altered fields."""
    template = load_template(name)
    data = load_data(REPO / "samples" / "data" / f"{name}.json", template)
    data = replace(data, fields={**data.fields, **fields})
    with load_key(str(pki.agency_seal_p12(agency or AGENCY[name])), password=PASSWORD) as key:
        options = SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url("mn-ec"), certify=True)
        signer = DocumentSigner(key, options)
        if url is None:
            issuer = CertificateIssuer(
                template, signer, SealSigner.from_loaded_key(key), base_url=BASE_URL
            )
            signed, _ = issuer.render_signed(data)
        else:
            unsigned = render_certificate(
                template, data, SealBlock(url=url, address="verify.e-mongolia.mn", code="X")
            )
            signed = signer.sign_bytes(unsigned, data.number)
    out.write_bytes(signed)
    return out


ALTERED = {
    "residence": {
        "address": "Улаанбаатар, Баянзүрх дүүрэг, 5-р хороо",
        "registered_since": "2020-01-01",
    },
    "criminal-record": {
        "birth_date": "1988-01-02",
        "record": "Бүртгэлтэй / Recorded",
        "purpose": "Виз / Visa",
    },
    "social-insurance": {
        "employer": "Хуурамч ХХК",
        "period": "2024-11 — 2026-10",
        "months_paid": "24",
        "total_paid": "9 999 000",
    },
}
BOUND = [(name, key) for name, fields in ALTERED.items() for key in fields]


@pytest.mark.parametrize(("name", "key"), BOUND, ids=[f"{n}-{k}" for n, k in BOUND])
def test_changing_a_bound_field_on_paper_changes_the_verdict(
    name: str,
    key: str,
    pki: testpki.TestPki,
    issued: dict[str, Issued],
    trust: Path,
    tmp_path: Path,
) -> None:
    """The genuine seal on a page whose one bound field differs, validly signed by the agency:
    offline, from the page alone, not authentic; the bound field is what changed."""
    doc = issued[name]
    forged = forge(
        pki, name, tmp_path / "forged.pdf", fields={key: ALTERED[name][key]}, url=doc.url
    )
    assert ALTERED[name][key] in " ".join(pdftotext(forged).split())
    code, out, report = seal_verify(forged, trust)
    assert (code, report["indication"], report["subindication"]) == (
        1,
        "TOTAL-FAILED",
        "HASH_FAILURE",
    )
    assert "The fields printed on the document differ from those the QR seal certifies" in out
    mn = run_esign("seal", "verify", str(forged), "--trust", str(trust))
    assert "Баримт дээр хэвлэгдсэн мэдээлэл QR тамгаар баталгаажсан" in mn.out


def test_an_unchanged_page_with_the_genuine_seal_passes(
    pki: testpki.TestPki, issued: dict[str, Issued], trust: Path, tmp_path: Path
) -> None:
    """The control of the test above: the same forging path with the genuine values passes
    offline, so the failures come from the changed field, not from the path."""
    doc = issued["residence"]
    same = forge(pki, "residence", tmp_path / "same.pdf", fields={}, url=doc.url)
    code, out, report = seal_verify(same, trust)
    assert (code, report["indication"]) == (0, "TOTAL-PASSED"), out


# --- point 4: replay, judged online against the registry -------------------------------------


def test_genuine_certificate_passes_online(
    issued: dict[str, Issued], trust: Path, registry: str
) -> None:
    for doc in issued.values():
        code, out, report = seal_verify(doc.pdf, trust, "--registry", registry)
        assert (code, report["indication"], report["registry_status"]) == (
            0,
            "TOTAL-PASSED",
            "active",
        ), out


def test_replayed_pdf_with_another_address_is_not_authentic_online(
    pki: testpki.TestPki, issued: dict[str, Issued], trust: Path, registry: str, tmp_path: Path
) -> None:
    """Issue 10, point 4: genuine number, name and register number, another address, PDF and QR
    seal both made with the same agency key. Nothing offline can tell it from the real one; the
    registry knows the fields digest and the file it issued, and the verdict says so."""
    forged = forge(
        pki,
        "residence",
        tmp_path / "forged.pdf",
        fields={"address": ALTERED["residence"]["address"]},
    )
    code, out, report = seal_verify(forged, trust)
    assert (code, report["indication"]) == (0, "TOTAL-PASSED"), "offline it is indistinguishable"
    code, out, report = seal_verify(forged, trust, "--registry", registry)
    assert (code, report["indication"], report["subindication"]) == (
        1,
        "TOTAL-FAILED",
        "HASH_FAILURE",
    )
    assert "does not match the document the agency issued" in out
    assert "registry: fields digest differ from what was issued" in out
    mn = run_esign("seal", "verify", str(forged), "--trust", str(trust), "--registry", registry)
    assert mn.code == 1 and "олгосон баримттай таарахгүй" in mn.out


def test_replayed_pdf_with_the_genuine_seal_is_not_the_issued_file(
    pki: testpki.TestPki, issued: dict[str, Issued], trust: Path, registry: str, tmp_path: Path
) -> None:
    """The genuine seal on a re-signed page that says the same: the registry knows the file it
    issued (its SHA-256), and this is not it."""
    doc = issued["residence"]
    same = forge(pki, "residence", tmp_path / "same.pdf", fields={}, url=doc.url)
    code, out, report = seal_verify(same, trust, "--registry", registry)
    assert (code, report["indication"], report["subindication"]) == (
        1,
        "TOTAL-FAILED",
        "HASH_FAILURE",
    )
    assert "This PDF is not the file the agency issued" in out
    assert "registry: PDF SHA-256" in out


# --- point 3: issuer binding ---------------------------------------------------------------


def foreign_seal(pki: testpki.TestPki, issued: dict[str, Issued], label: str) -> str:
    """The residence seal's exact claims (issuer UBEG), signed with another agency's seal key."""
    genuine = seal_claims(issued["residence"].url)
    claims = SealClaims(
        issuer=genuine[2], doc_type=genuine[3], number=genuine[4],
        issued=civil_date(genuine[5]), expires=civil_date(genuine[6]),
        subject_name=genuine[7], subject_id=genuine[8], fields_digest=genuine[9],
    )  # fmt: skip
    signer = SealSigner.from_pem_files(pki.key("mn-ec", label), pki.cert("mn-ec", label))
    return signer.url(BASE_URL, claims)


def civil_date(days: int) -> Any:
    from datetime import date, timedelta

    return date(1970, 1, 1) + timedelta(days=days)


@pytest.mark.parametrize("label", ["seal-shsg", "seal-ndeg"])
def test_seal_claiming_another_agency_is_never_total_passed(
    label: str, pki: testpki.TestPki, issued: dict[str, Issued], trust: Path, registry: str
) -> None:
    url = foreign_seal(pki, issued, label)
    assert seal_claims(url)[2] == "UBEG"
    for extra in ((), ("--registry", registry)):
        code, out, report = seal_verify(url, trust, *extra)
        assert (code, report["indication"], report["subindication"]) == (
            1, "TOTAL-FAILED", "ISSUER_MISMATCH",
        ), out  # fmt: skip
        assert "names another agency as issuer than the one whose seal key made it" in out
        assert f"seal certificate of agency '{label[5:].upper()}'" in out
    mn = run_esign("seal", "verify", url, "--trust", str(trust))
    assert mn.code == 1 and "олгогч байгууллага нь тамгыг үүсгэсэн түлхүүрийн" in mn.out


def test_genuine_seal_url_passes(issued: dict[str, Issued], trust: Path) -> None:
    for doc in issued.values():
        code, out, report = seal_verify(doc.url, trust)
        assert (code, report["indication"]) == (0, "TOTAL-PASSED"), out


@pytest.mark.parametrize(
    ("name", "label"), [("criminal-record", "seal"), ("residence", "seal-ndeg")]
)
def test_issue_refuses_a_template_of_another_agency(
    name: str, label: str, pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    out = tmp_path / "out.pdf"
    r = run_esign(
        "issue", "--template", name,
        "--data", str(REPO / "samples" / "data" / f"{name}.json"), "-o", str(out),
        "--key", str(pki.p12("mn-ec", label)), "--passfile", str(pki.password_file),
        "--tsa", pki.tsa_url("mn-ec"), "--registry", f"sqlite:{tmp_path / 'r.sqlite3'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.code == 3, r.out + r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    template_agency = AGENCY[name]
    key_agency = {"seal": "UBEG", "seal-ndeg": "NDEG"}[label]
    assert f"issuer is {template_agency}" in r.err and f"is for {key_agency}" in r.err, r.err
    assert not out.exists() and not list(tmp_path.glob("*.pdf*"))
