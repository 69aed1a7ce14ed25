"""`esign verify` as banks and notaries use it: verdict text, JSON that matches the documented
schema, exit codes, batches over folders, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO, run_esign

SCHEMA = json.loads((REPO / "docs" / "verify-report.schema.json").read_text())


@pytest.fixture(scope="module")
def files(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cli-verify")
    sample = REPO / "samples" / "certificate.pdf"
    made: dict[str, Path] = {}
    with load_key(str(pki.p12("mn-ec", "official")), password=b"esign-test") as key:
        for level in (PadesLevel.B_B, PadesLevel.B_LT):
            made[level.value] = out / f"{level.value}.pdf"
            opts = SignOptions(level=level, tsa_url=pki.tsa_url("mn-ec"))
            DocumentSigner(key, opts).sign_file(sample, made[level.value])
    tampered = bytearray(made["B-LT"].read_bytes())
    at = tampered.find("Register No.".encode("utf-16-be"))  # fpdf2 text is in a stream; flip a
    at = at if at > 0 else len(tampered) // 3  # byte inside the signed range either way
    tampered[at] ^= 0x01
    made["tampered"] = out / "tampered.pdf"
    made["tampered"].write_bytes(bytes(tampered))
    return made


def _trust(pki: testpki.TestPki) -> list[str]:
    return ["--trust", str(pki.trust_dir)]


def test_valid_file_text_in_mongolian_and_english(
    pki: testpki.TestPki, files: dict[str, Path]
) -> None:
    r = run_esign("verify", str(files["B-LT"]), *_trust(pki), "--offline")
    assert r.code == 0, r.out + r.err
    assert "ХҮЧИНТЭЙ (TOTAL-PASSED)" in r.out
    assert "Болд Бат-Эрдэнэ" in r.out and "УБ99112233" in r.out
    assert "B-LT" in r.out
    r = run_esign("verify", str(files["B-LT"]), *_trust(pki), "--offline", "--lang", "en")
    assert r.code == 0 and "VALID (TOTAL-PASSED)" in r.out and "Signer:" in r.out


def test_json_matches_schema(pki: testpki.TestPki, files: dict[str, Path]) -> None:
    r = run_esign("verify", str(files["B-LT"]), *_trust(pki), "--offline", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["indication"] == "TOTAL-PASSED"
    assert doc["signatures"][0]["indication"] == "TOTAL-PASSED"
    assert doc["signatures"][0]["subindication"] is None
    assert doc["signatures"][0]["pades_level"] == "B-LT"


def test_offline_b_b_is_indeterminate(pki: testpki.TestPki, files: dict[str, Path]) -> None:
    r = run_esign("verify", str(files["B-B"]), *_trust(pki), "--offline", "--json")
    assert r.code == 2, r.err
    assert json.loads(r.out)["indication"] == "INDETERMINATE"


def test_online_b_b_passes(
    pki: testpki.TestPki, services: PkiServices, files: dict[str, Path]
) -> None:
    r = run_esign("verify", str(files["B-B"]), *_trust(pki), "--online")
    assert r.code == 0, r.out + r.err


def test_tampered_file_fails(pki: testpki.TestPki, files: dict[str, Path]) -> None:
    r = run_esign("verify", str(files["tampered"]), *_trust(pki), "--offline", "--json")
    assert r.code == 1, r.out + r.err
    doc = json.loads(r.out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["indication"] == "TOTAL-FAILED"


def test_untrusted_when_anchor_is_another_root(
    pki: testpki.TestPki, files: dict[str, Path]
) -> None:
    other_root = pki.trust_dir / "mn-rsa-root.pem"  # the EC signer does not chain to it
    r = run_esign("verify", str(files["B-LT"]), "--trust", str(other_root), "--offline", "--json")
    assert r.code == 2
    assert json.loads(r.out)["signatures"][0]["subindication"] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_batch_over_a_folder_jsonl_and_summary(
    pki: testpki.TestPki, files: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(files["B-LT"], folder / "a.pdf")
    shutil.copy(files["B-LT"], folder / "sub" / "b.PDF")
    shutil.copy(files["tampered"], folder / "c.pdf")
    (folder / "notes.txt").write_text("not a pdf, ignored")
    r = run_esign("verify", str(folder), *_trust(pki), "--offline", "--jsonl")
    assert r.code == 1, r.err
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert len(lines) == 3
    for doc in lines:
        jsonschema.validate(doc, SCHEMA)
    assert sorted(d["indication"] for d in lines) == [
        "TOTAL-FAILED",
        "TOTAL-PASSED",
        "TOTAL-PASSED",
    ]
    assert "3 файл: 2 хүчинтэй, 1 хүчингүй" in r.err
    text = run_esign("verify", str(folder), *_trust(pki), "--offline", "--lang", "en")
    assert "3 files: 2 valid, 1 not valid" in text.out


def test_not_a_pdf_is_format_failure(pki: testpki.TestPki, tmp_path: Path) -> None:
    bogus = tmp_path / "x.pdf"
    bogus.write_bytes(b"GIF89a not a pdf")
    r = run_esign("verify", str(bogus), *_trust(pki), "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["indication"] == "TOTAL-FAILED" and doc["subindication"] == "FORMAT_FAILURE"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["/nonexistent/file.pdf"], "not found"),
        (["--at", "yesterday"], "ISO 8601"),
        (["--trust", "/nonexistent/anchors"], "not found"),
        (["--json", "--jsonl"], "--json"),
    ],
)
def test_usage_and_io_errors_are_one_line(
    pki: testpki.TestPki, files: dict[str, Path], args: list[str], needle: str
) -> None:
    extra = [] if args[0].startswith("/") else [str(files["B-LT"])]
    r = run_esign("verify", *extra, *args)
    assert r.code >= 3, (r.code, r.out, r.err)
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    assert needle in r.err


def test_point_in_time_validation(pki: testpki.TestPki, files: dict[str, Path]) -> None:
    # Before the signer's certificate existed, nothing can be proven.
    r = run_esign(
        "verify",
        str(files["B-LT"]),
        *_trust(pki),
        "--offline",
        "--at",
        "2024-06-01T00:00:00Z",
        "--json",
    )
    assert r.code in (1, 2), r.out
    assert json.loads(r.out)["indication"] != "TOTAL-PASSED"
