"""PAdES signing at every level with both test architectures, judged by poppler's pdfsig and by
our verifier after the PKI services are gone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import nss_trusts_signer, pdfsig, run_esign
from verify import TrustConfig, Verifier, VerifyOptions

ARCHES = ["mn-rsa", "mn-ec"]
LEVELS = [level.value for level in PadesLevel]


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


@pytest.fixture(scope="module")
def signed_files(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("signed")
    files: dict[tuple[str, str], Path] = {}
    for arch in ARCHES:
        with load_key(str(pki.p12(arch, "seal")), password=testpki.P12_PASSWORD.encode()) as key:
            for level in LEVELS:
                opts = SignOptions(level=PadesLevel.parse(level), tsa_url=pki.tsa_url(arch))
                dst = out / f"{arch}-{level}.pdf"
                DocumentSigner(key, opts).sign_file(
                    Path(__file__).parents[2] / "samples" / "certificate.pdf", dst
                )
                files[(arch, level)] = dst
    return files


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("level", LEVELS)
def test_pdfsig_says_valid_and_nss_trusts(
    signed_files: dict[tuple[str, str], Path], nssdb: str, arch: str, level: str, tmp_path: Path
) -> None:
    result = pdfsig(signed_files[(arch, level)], nssdb)
    assert result.valid_signatures == 1, result.text
    assert "ETSI.CAdES.detached" in result.text
    assert "Signature is Invalid" not in result.text
    assert nss_trusts_signer(signed_files[(arch, level)], nssdb, tmp_path)


def test_nss_trust_needs_the_root(
    signed_files: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    # The trust assertion above can fail: an NSS database without our roots trusts nothing.
    empty = tmp_path / "nss"
    empty.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{empty}", "--empty-password"], check=True)
    result = pdfsig(signed_files[("mn-rsa", "B-B")], f"sql:{empty}")
    assert result.valid_signatures == 1
    assert result.trusted_certificates == 0
    assert not nss_trusts_signer(signed_files[("mn-rsa", "B-B")], f"sql:{empty}", tmp_path / "d")


@pytest.mark.parametrize("arch", ARCHES)
def test_levels_carry_what_they_promise(
    signed_files: dict[tuple[str, str], Path], arch: str
) -> None:
    def reader(level: str) -> PdfFileReader:
        return PdfFileReader(signed_files[(arch, level)].open("rb"))

    bb = reader("B-B").embedded_signatures
    assert len(bb) == 1 and "/DSS" not in reader("B-B").root
    assert not bb[0].signer_info["unsigned_attrs"]
    bt = reader("B-T").embedded_signatures[0]
    assert bt.signer_info["unsigned_attrs"][0]["type"].native == "signature_time_stamp_token"
    lt = reader("B-LT")
    assert "/DSS" in lt.root and "/OCSPs" in lt.root["/DSS"]
    lta = reader("B-LTA").embedded_signatures
    assert [s.sig_object_type for s in lta] == ["/Sig", "/DocTimeStamp"]
    for sig in bb + lta:
        assert sig.sig_object["/SubFilter"] in ("/ETSI.CAdES.detached", "/ETSI.RFC3161")
        assert sig.md_algorithm == "sha256"


def test_long_term_files_validate_after_services_stop(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path, sample_pdf: Path
) -> None:
    made: dict[str, Path] = {}
    with load_key(str(pki.p12("mn-ec", "official")), password=b"esign-test") as key:
        for level in ("B-T", "B-LT", "B-LTA"):
            opts = SignOptions(level=PadesLevel.parse(level), tsa_url=pki.tsa_url("mn-ec"))
            made[level] = tmp_path / f"{level}.pdf"
            DocumentSigner(key, opts).sign_file(sample_pdf, made[level])
    services.stop()
    try:
        # Online mode tries the (now dead) OCSP/CRL URLs and must fall back on embedded data.
        for online in (True, False):
            verifier = Verifier(_trust(pki), VerifyOptions(online=online))
            for level in ("B-LT", "B-LTA"):
                report = verifier.verify_file(made[level])
                assert report.indication.value == "TOTAL-PASSED", (level, online, report)
                assert report.signatures[0].pades_level == level
            # B-T embeds no revocation data: with the services gone it cannot pass.
            assert verifier.verify_file(made["B-T"]).indication.value == "INDETERMINATE"
    finally:
        services.start()


def test_cli_signs_every_level(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path, sample_pdf: Path, nssdb: str
) -> None:
    for level in LEVELS:
        out = tmp_path / f"cli-{level}.pdf"
        r = run_esign(
            "sign", str(sample_pdf), "-o", str(out),
            "--key", str(pki.p12("mn-rsa", "official")),
            "--passfile", str(pki.password_file),
            "--level", level, "--tsa", pki.tsa_url("mn-rsa"),
            "--reason", "Тодорхойлолт олгов", "--location", "Улаанбаатар",
        )  # fmt: skip
        assert r.code == 0, r.err
        assert pdfsig(out, nssdb).valid_signatures == 1
        assert nss_trusts_signer(out, nssdb, tmp_path / level)


def test_certify_forbids_changes(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path, sample_pdf: Path
) -> None:
    out = tmp_path / "certified.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--certify", "--field", "Seal",
        "--key", str(pki.p12("mn-rsa", "seal")), "--passfile", str(pki.password_file),
    )  # fmt: skip
    assert r.code == 0, r.err
    sig = PdfFileReader(out.open("rb")).embedded_signatures[0]
    assert sig.field_name == "Seal"
    assert sig.docmdp_level is not None and sig.docmdp_level.name == "NO_CHANGES"


def test_reservation_grows_when_the_container_does_not_fit(
    pki: testpki.TestPki, services: PkiServices, sample_pdf: Path
) -> None:
    with load_key(str(pki.p12("mn-rsa", "seal")), password=b"esign-test") as key:
        signer = DocumentSigner(
            key, SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url("mn-rsa"))
        )
        signer._reserve = 512  # far too small for an RSA-3072 chain and a timestamp token
        signed = signer.sign_bytes(sample_pdf.read_bytes())
        assert signer._reserve > 4096
    from io import BytesIO

    sig = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    assert sig.signer_info["unsigned_attrs"][0]["type"].native == "signature_time_stamp_token"


def _dss_revinfo(data: bytes) -> list[bytes]:
    from io import BytesIO

    dss = PdfFileReader(BytesIO(data)).root["/DSS"]
    return [ref.get_object().data for key in ("/OCSPs", "/CRLs") for ref in dss[key]]


def test_a_batch_embeds_the_revocation_data_it_fetched_once(
    pki: testpki.TestPki, services: PkiServices
) -> None:
    """One signer's B-LT documents carry the same OCSP response and CRLs (fetched once per
    revinfo_reuse_seconds, issue 13); with 0, each document gets its own."""
    base = (Path(__file__).parents[2] / "samples" / "certificate.pdf").read_bytes()
    with load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode()) as key:
        for reuse, shared in ((300.0, True), (0.0, False)):
            opts = SignOptions(
                level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-ec"), revinfo_reuse_seconds=reuse
            )
            signer = DocumentSigner(key, opts)
            first, second = (signer.sign_bytes(base + f"\n% {i}\n".encode()) for i in (1, 2))
            a, b = _dss_revinfo(first), _dss_revinfo(second)
            assert len(a) == len(b) >= 2
            assert (a == b) is shared, reuse
