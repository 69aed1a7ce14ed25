"""Bad input to `esign sign`: one clear line on stderr, a non-zero exit code, no output file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from esign import testpki
from esign.services import PkiServices
from tests.helpers import Run, run_esign


def _assert_refused(r: Run, out: Path, *words: str) -> None:
    assert r.code >= 3, (r.code, r.out, r.err)
    assert r.err.startswith("esign: error: "), r.err
    assert r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err
    for word in words:
        assert word in r.err, r.err
    assert not out.exists()
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())


def _sign(pki: testpki.TestPki, src: Path, out: Path, *extra: str, label: str = "seal") -> Run:
    return run_esign(
        "sign", str(src), "-o", str(out), "--key", str(pki.p12("mn-rsa", label)),
        "--passfile", str(pki.password_file), *extra,
    )  # fmt: skip


def test_not_a_pdf(pki: testpki.TestPki, tmp_path: Path) -> None:
    src = tmp_path / "notes.pdf"
    src.write_text("hello, I am not a PDF\n")
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, src, out), out, "not a PDF")


def test_truncated_pdf(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    src = tmp_path / "cut.pdf"
    src.write_bytes(sample_pdf.read_bytes()[:6000])
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, src, out), out, "truncated")


def test_encrypted_pdf(pki: testpki.TestPki, tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="secret")
    pdf.set_encryption(owner_password="owner", user_password="")
    src = tmp_path / "enc.pdf"
    src.write_bytes(bytes(pdf.output()))
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, src, out), out, "encrypted")


def test_missing_input(pki: testpki.TestPki, tmp_path: Path) -> None:
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, tmp_path / "nope.pdf", out), out, "not found")


def test_wrong_password(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password\n")
    out = tmp_path / "out.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", str(pki.p12("mn-rsa", "seal")),
        "--passfile", str(wrong),
    )  # fmt: skip
    _assert_refused(r, out, "wrong password")


def test_password_from_environment(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    out = tmp_path / "out.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", str(pki.p12("mn-ec", "seal")),
        env={"ESIGN_PASSWORD": testpki.P12_PASSWORD},
    )  # fmt: skip
    assert r.code == 0, r.err
    assert out.exists()


def test_key_does_not_match_certificate(
    pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path
) -> None:
    out = tmp_path / "out.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", str(pki.key("mn-rsa", "official")),
        "--cert", str(pki.cert("mn-rsa", "seal")),
    )  # fmt: skip
    _assert_refused(r, out, "does not match")


def test_expired_signer_refused(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, sample_pdf, out, label="expired"), out, "expired")


def test_revoked_signer_refused(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path, sample_pdf: Path
) -> None:
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, sample_pdf, out, label="revoked"), out, "revoked")


def test_unreachable_tsa(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    out = tmp_path / "out.pdf"
    r = _sign(pki, sample_pdf, out, "--level", "B-T", "--tsa", "http://127.0.0.1:9/tsa")
    _assert_refused(r, out, "timestamp service")


@pytest.mark.parametrize("level", ["B-T", "B-LTA"])
def test_timestamp_levels_need_a_tsa(
    pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path, level: str
) -> None:
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, sample_pdf, out, "--level", level), out, "--tsa")


def test_unknown_level(pki: testpki.TestPki, tmp_path: Path, sample_pdf: Path) -> None:
    out = tmp_path / "out.pdf"
    _assert_refused(_sign(pki, sample_pdf, out, "--level", "B-X"), out, "B-X")
