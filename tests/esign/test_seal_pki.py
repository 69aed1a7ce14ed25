"""The test PKI has a seal per agency of the sample templates, and a PKI built from an older
description (before those seals) is refused with the command that rebuilds it, never used half-way
nor deleted silently (issue 10, point 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from esign import testpki
from esign.issue import CertificateIssuer
from esign.keysource import load_key
from esign.pades import DocumentSigner, SignOptions
from esign.seal import IssuerMismatch, SealSigner
from esign.template import load_template
from tests.helpers import REPO, run_esign


def test_each_sample_templates_agency_has_its_seal(pki: testpki.TestPki) -> None:
    published = sorted(p.name for p in pki.seals_dir.glob("*.pem"))
    assert published == ["mn-ec-seal-ndeg.pem", "mn-ec-seal-shsg.pem", "mn-ec-seal.pem"]
    for name in ("residence", "criminal-record", "social-insurance"):
        agency = load_template(name).issuer_code
        for arch in testpki.ARCHES:
            label = testpki.AGENCY_SEALS[agency]
            cert = x509.load_pem_x509_certificate(pki.cert(arch, label).read_bytes())
            ids = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
            assert [a.value for a in ids] == [f"GV:MN-{agency}"], (arch, label)
            assert pki.p12(arch, label).is_file()


def test_pki_from_an_older_description_is_refused_not_deleted(
    pki: testpki.TestPki, tmp_path: Path
) -> None:
    old = tmp_path / "old-pki"
    shutil.copytree(pki.root, old)
    spec = old / testpki.SPEC_FILE
    spec.write_text(spec.read_text(encoding="utf-8") + "# older\n", encoding="utf-8")
    before = sorted(p.relative_to(old) for p in old.rglob("*"))
    r = run_esign("pki", "build", "--dir", str(old), cwd=tmp_path)
    assert r.code == 4, r.out + r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "older description" in r.err and f"--dir {old}" in r.err and "--force" in r.err
    assert sorted(p.relative_to(old) for p in old.rglob("*")) == before


def test_library_issuer_refuses_another_agencys_seal_key(pki: testpki.TestPki) -> None:
    """The check sits in CertificateIssuer itself, so every way of issuing (library, CLI, batch,
    HTTP) refuses before anything is signed."""
    seal = SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))
    with load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode()) as key:
        signer = DocumentSigner(key, SignOptions())
        CertificateIssuer(load_template("residence"), signer, seal)  # UBEG's own: accepted
        with pytest.raises(IssuerMismatch, match=r"issuer is NDEG .* is for UBEG"):
            CertificateIssuer(load_template("social-insurance"), signer, seal)


def test_issue_refuses_a_word_the_page_would_break(pki: testpki.TestPki, tmp_path: Path) -> None:
    """A sealed value with a word wider than its column would be printed broken mid-word, and a
    verifier reading the page (docs/qr-seal.md §6.1) would get another value: refused, one line,
    no file."""
    data = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))
    data["fields"]["address"] = "Улаанбаатар, " + "Щ" * 30
    data_file = tmp_path / "long.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "long.pdf"
    r = run_esign(
        "issue", "--template", "residence", "--data", str(data_file), "-o", str(out),
        "--key", str(pki.agency_seal_p12("UBEG")), "--passfile", str(pki.password_file),
        "--tsa", "http://127.0.0.1:9/", "--no-registry", cwd=tmp_path,
    )  # fmt: skip
    assert r.code == 4, r.out + r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "wider than the value column" in r.err and "Registered address" in r.err
    assert not out.exists() and not list(tmp_path.glob("*.pdf*"))
