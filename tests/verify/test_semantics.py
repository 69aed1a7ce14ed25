"""Verdict semantics on files signed in ways esign itself does not sign (issue 8, classes 3, 6, 7
and 8): TOTAL-FAILED only for what is proven, every filled signature field reported, no internal
error shown as a verdict, an unsigned PDF named as such. Each file is signed for real (esign's
signer, pyHanko's CMS embedder) and then altered where a foreign signer would differ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import jsonschema
import pytest
from asn1crypto import algos, cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import cms_embedder, pdf_byterange, pdf_signer

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from verify import TrustConfig, Verifier, VerifyOptions
from verify.report import DocumentReport, Indication, SignatureReport

SAMPLE = REPO / "samples" / "certificate.pdf"
SCHEMA = json.loads((REPO / "docs" / "verify-report.schema.json").read_text())


def _sign(pki: testpki.TestPki, data: bytes, arch: str, level: PadesLevel, field: str) -> bytes:
    with load_key(str(pki.p12(arch, "official")), password=b"esign-test") as key:
        opts = SignOptions(level=level, tsa_url=pki.tsa_url(arch), field_name=field)
        return DocumentSigner(key, opts).sign_bytes(data)


def _verify(pki: testpki.TestPki, data: bytes, online: bool = False) -> DocumentReport:
    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    verifier = Verifier(trust, VerifyOptions(online=online))
    report = verifier.verify_bytes(data)
    jsonschema.validate(report.to_dict(), SCHEMA)
    return report


def _one(report: DocumentReport, field: str) -> SignatureReport:
    found = [s for s in report.signatures if s.field_name == field]
    assert len(found) == 1, [s.field_name for s in report.signatures]
    return found[0]


def _no_internal_error(report: DocumentReport) -> None:
    shown = json.dumps(report.to_dict(), ensure_ascii=False)
    for leak in ("module '", "has no attribute", "Reference(idnum", "Traceback"):
        assert leak not in shown, shown


def _rewrite_cms(data: bytes, change: Callable[[cms.SignerInfo], None], index: int = 0) -> bytes:
    """Edit the CMS in /Contents of signature ``index`` (not covered by the byte range)."""
    sig = PdfFileReader(BytesIO(data)).embedded_signatures[index]
    _, len1, start2, _ = (int(v) for v in sig.byte_range)
    info = cms.ContentInfo.load(sig.pkcs7_content)
    change(info["content"]["signer_infos"][0])
    hexed = info.dump(force=True).hex().encode("ascii")
    room = start2 - len1 - 2
    assert len(hexed) <= room
    return data[: len1 + 1] + hexed.ljust(room, b"0") + data[start2 - 1 :]


@pytest.fixture(scope="module")
def b_lt_ec(pki: testpki.TestPki, services: PkiServices) -> bytes:
    return _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_LT, "Signature1")


# --- class 7: an unsigned PDF has its own result -------------------------------------------------


def test_unsigned_pdf_is_no_signature_with_its_own_exit_code(pki: testpki.TestPki) -> None:
    r = run_esign("verify", str(SAMPLE), "--trust", str(pki.trust_dir), "--offline", "--json")
    assert r.code == 10, r.out + r.err
    doc = json.loads(r.out)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["indication"], doc["subindication"]) == ("NO-SIGNATURE", None)
    assert doc["explanation"]["en"].startswith("The document carries no signature")
    r = run_esign("verify", str(SAMPLE), "--trust", str(pki.trust_dir), "--offline", "--lang", "en")
    assert r.code == 10 and "NOT SIGNED (NO-SIGNATURE)" in r.out, r.out


def test_batch_with_an_unsigned_pdf_exits_10_and_counts_it(
    pki: testpki.TestPki, b_lt_ec: bytes, tmp_path: Path
) -> None:
    (tmp_path / "signed.pdf").write_bytes(b_lt_ec)
    (tmp_path / "unsigned.pdf").write_bytes(SAMPLE.read_bytes())
    r = run_esign("verify", str(tmp_path), "--trust", str(pki.trust_dir), "--offline", "--jsonl")
    assert r.code == 10, r.out + r.err
    got = sorted(json.loads(line)["indication"] for line in r.out.splitlines())
    assert got == ["NO-SIGNATURE", "TOTAL-PASSED"]
    assert "2 файл: 1 хүчинтэй, 0 хүчингүй, 0 тодорхойгүй, 1 гарын үсэггүй" in r.err


# --- class 3: RFC 3161 document timestamps typed /Sig or untyped ---------------------------------


@pytest.fixture(params=["/Sig", None], ids=["type-sig", "no-type"])
def mistyped_doc_ts(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """pyHanko's document timestamper, writing /Type /Sig or no /Type as some signers do."""
    obj_type: str | None = request.param

    class Mistyped(pdf_byterange.DocumentTimestamp):
        def __init__(self, bytes_reserved: int | None = None) -> None:
            super().__init__(bytes_reserved=bytes_reserved)
            if obj_type is None:
                del self["/Type"]
            else:
                self["/Type"] = generic.pdf_name(obj_type)

    monkeypatch.setattr(pdf_signer, "DocumentTimestamp", Mistyped)
    yield obj_type


def test_rfc3161_timestamp_typed_sig_is_a_document_timestamp(
    pki: testpki.TestPki, services: PkiServices, mistyped_doc_ts: str | None
) -> None:
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_LTA, "Signature1")
    sig_dicts = PdfFileReader(BytesIO(signed)).embedded_signatures
    ts = sig_dicts[-1].sig_object
    assert ts["/SubFilter"] == "/ETSI.RFC3161" and ts.get("/Type") == mistyped_doc_ts
    report = _verify(pki, signed)
    stamp = report.signatures[-1]
    assert stamp.kind == "document-timestamp", stamp
    assert stamp.indication is Indication.TOTAL_PASSED, stamp
    assert "encapsulated data" not in json.dumps(report.to_dict())
    assert report.indication is Indication.TOTAL_PASSED, report
    assert report.signatures[0].pades_level == "B-LTA"


# --- class 6: every filled signature field is reported -------------------------------------------


def _sign_pkcs7_sha1(pki: testpki.TestPki, data: bytes, field: str) -> bytes:
    """An adbe.pkcs7.sha1 signature (Acrobat 5 era): the CMS encapsulates the SHA-1 digest of the
    byte range. pyHanko's embedder writes it; pyHanko's signer signs the digest as content."""
    with load_key(str(pki.p12("mn-rsa", "official")), password=b"esign-test") as key:
        writer = IncrementalPdfFileWriter(BytesIO(data))
        embed = cms_embedder.PdfCMSEmbedder().write_cms(field_name=field, writer=writer)
        next(embed)
        placeholder = signers.SignatureObject(bytes_reserved=16384)
        placeholder["/SubFilter"] = generic.pdf_name("/adbe.pkcs7.sha1")
        embed.send(cms_embedder.SigObjSetup(sig_placeholder=placeholder))
        prepared, output = embed.send(
            cms_embedder.SigIOSetup(md_algorithm="sha1", in_place=False, output=BytesIO())
        )
        signed_cms = asyncio.run(
            key.signer.async_sign_general_data(prepared.document_digest, "sha256", detached=False)
        )
        embed.send(signed_cms)
        return bytes(output.getvalue())


def test_adbe_pkcs7_sha1_is_listed_and_indeterminate(
    pki: testpki.TestPki, services: PkiServices
) -> None:
    data = _sign_pkcs7_sha1(pki, SAMPLE.read_bytes(), "Acrobat5")
    report = _verify(pki, data)
    assert report.indication is Indication.INDETERMINATE, report
    sig = _one(report, "Acrobat5")
    assert (sig.indication, sig.subindication) == (
        Indication.INDETERMINATE,
        "CRYPTO_CONSTRAINTS_FAILURE",
    )
    assert sig.signer is not None and "SHA-1" in sig.details[0]
    assert "carries no signature" not in report.explanation.en
    # the carried digest is checked: a change to the signed bytes is proven
    tampered = bytearray(data)
    at = tampered.find(b"/Producer")
    assert at > 0
    tampered[at + 1] ^= 0x20
    failed = _one(_verify(pki, bytes(tampered)), "Acrobat5")
    assert (failed.indication, failed.subindication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")


def test_unknown_subfilter_is_listed_indeterminate(pki: testpki.TestPki, b_lt_ec: bytes) -> None:
    writer = IncrementalPdfFileWriter(BytesIO(b_lt_ec))
    sig = PdfFileReader(BytesIO(b_lt_ec)).embedded_signatures[0]
    # a second field whose value uses a SubFilter no one defines, in a later revision
    value = writer.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Sig"),
                generic.pdf_name("/Filter"): generic.pdf_name("/Adobe.PPKLite"),
                generic.pdf_name("/SubFilter"): generic.pdf_name("/x.vendor.sig"),
                generic.pdf_name("/Contents"): generic.ByteStringObject(b"\1\2\3"),
                generic.pdf_name("/ByteRange"): sig.sig_object["/ByteRange"],
            }
        )
    )
    fields.append_signature_field(writer, fields.SigFieldSpec("Vendor"))
    field = next(
        f for f in writer.root["/AcroForm"]["/Fields"] if f.get_object()["/T"] == "Vendor"
    ).get_object()
    field["/V"] = value
    out = BytesIO()
    writer.write(out)
    report = _verify(pki, out.getvalue())
    vendor = _one(report, "Vendor")
    assert vendor.indication is Indication.INDETERMINATE, vendor
    assert "x.vendor.sig" in vendor.details[0]
    assert _one(report, "Signature1").kind == "signature"
    assert report.indication is not Indication.TOTAL_PASSED


# --- class 7: one unreadable CMS does not hide the others ----------------------------------------


def test_unparseable_cms_does_not_hide_the_other_signature(
    pki: testpki.TestPki, services: PkiServices, b_lt_ec: bytes
) -> None:
    two = _sign(pki, b_lt_ec, "mn-ec", PadesLevel.B_LT, "Signature2")
    # the later signature's /Contents (covered by no byte range) is garbage
    sig = PdfFileReader(BytesIO(two)).embedded_signatures[1]
    _, len1, start2, _ = (int(v) for v in sig.byte_range)
    broken = two[: len1 + 1] + b"3082ffff" + b"0" * (start2 - len1 - 10) + two[start2 - 1 :]
    report = _verify(pki, broken)
    first, second = _one(report, "Signature1"), _one(report, "Signature2")
    assert first.indication is Indication.TOTAL_PASSED, first
    assert (second.indication, second.subindication) == (
        Indication.TOTAL_FAILED,
        "FORMAT_FAILURE",
    )
    assert "not a readable CMS" in second.details[0]
    assert report.indication is Indication.TOTAL_FAILED
    _no_internal_error(report)


# --- class 7: an algorithm esign does not support is not a forgery -------------------------------


def test_plain_format_ecdsa_is_indeterminate_not_crypto_failure(
    pki: testpki.TestPki, b_lt_ec: bytes
) -> None:
    def plain(info: cms.SignerInfo) -> None:
        der = info["signature"].native
        info["signature"] = algos.DSASignature.load(der).to_p1363()
        info["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": "0.4.0.127.0.7.1.1.4.1.3"}
        )

    report = _verify(pki, _rewrite_cms(b_lt_ec, plain))
    sig = _one(report, "Signature1")
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, "GENERIC"), sig
    assert "ecdsa-plain-SHA256" in sig.details[0] and "does not support" in sig.details[0]
    assert sig.explanation.en.startswith("The signature uses an algorithm esign does not support")
    assert report.indication is Indication.INDETERMINATE
    _no_internal_error(report)


# --- class 8: an internal error is never a verdict -----------------------------------------------


def test_signature_algorithm_named_as_digest_is_said_in_words(
    pki: testpki.TestPki, services: PkiServices
) -> None:
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-rsa", PadesLevel.B_B, "Signature1")

    def wrong_digest(info: cms.SignerInfo) -> None:
        info["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": "1.2.840.113549.1.1.11"})

    data = _rewrite_cms(signed, wrong_digest)
    report = _verify(pki, data)
    sig = _one(report, "Signature1")
    assert sig.indication is Indication.INDETERMINATE, sig
    assert sig.details == (
        "the signature names an unknown digest algorithm 1.2.840.113549.1.1.11 "
        "(sha256WithRSAEncryption is a signature algorithm, not a digest)",
    )
    _no_internal_error(report)


def test_unusual_digest_algorithm_is_listed_indeterminate(
    pki: testpki.TestPki, b_lt_ec: bytes
) -> None:
    def ripemd(info: cms.SignerInfo) -> None:
        info["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": "1.3.36.3.2.1"})

    report = _verify(pki, _rewrite_cms(b_lt_ec, ripemd))
    sig = _one(report, "Signature1")
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, "GENERIC"), sig
    assert sig.details == (
        "the signature uses the digest algorithm RIPEMD-160 (1.3.36.3.2.1), which esign does "
        "not support",
    )
    assert sig.signer is not None and report.indication is Indication.INDETERMINATE
    _no_internal_error(report)


def test_signature_algorithm_of_another_key_type_is_said_in_words(
    pki: testpki.TestPki, b_lt_ec: bytes
) -> None:
    """An RSA algorithm named for an EC key: pyhanko-certvalidator asserts the key type, and the
    bare AssertionError escaped the verifier."""

    def rsa_for_ec(info: cms.SignerInfo) -> None:
        info["signature_algorithm"] = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})

    report = _verify(pki, _rewrite_cms(b_lt_ec, rsa_for_ec))
    sig = _one(report, "Signature1")
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert sig.details == (
        "the signature algorithm sha256WithRSAEncryption (1.2.840.113549.1.1.11) does not fit "
        "the signer's EC key",
    )
    assert sig.signer is not None


def test_cli_shows_words_not_internal_errors(
    pki: testpki.TestPki, b_lt_ec: bytes, tmp_path: Path
) -> None:
    def wrong_digest(info: cms.SignerInfo) -> None:
        info["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": "1.2.840.10045.4.3.2"})

    path = tmp_path / "odd-digest.pdf"
    path.write_bytes(_rewrite_cms(b_lt_ec, wrong_digest))
    r = run_esign("verify", str(path), "--trust", str(pki.trust_dir), "--offline", "--lang", "en")
    assert r.code == 2, r.out + r.err
    assert "CANNOT BE CONFIRMED (INDETERMINATE / GENERIC)" in r.out
    assert "ecdsa-with-SHA256 is a signature algorithm, not a digest" in r.out
    assert "module '" not in r.out and "Traceback" not in r.err


def test_id_ec_public_key_as_signature_algorithm_is_read_as_ecdsa(
    pki: testpki.TestPki, b_lt_ec: bytes
) -> None:
    """iText 5 names the key type (id-ecPublicKey) as the signature algorithm; Adobe and poppler
    read it as ECDSA with the SignerInfo's digest, and so must esign (a valid signature)."""

    def key_type(info: cms.SignerInfo) -> None:
        info["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": "1.2.840.10045.2.1"}
        )

    report = _verify(pki, _rewrite_cms(b_lt_ec, key_type))
    assert report.indication is Indication.TOTAL_PASSED, report


# --- class 7: missing revocation data and failed timestamps say why -------------------------------


def test_missing_revocation_data_names_the_certificate_and_why(
    pki: testpki.TestPki, services: PkiServices
) -> None:
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_B, "Signature1")
    sig = _one(_verify(pki, signed, online=False), "Signature1")
    assert (sig.indication, sig.subindication) == (
        Indication.INDETERMINATE,
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    )
    assert sig.details, sig
    assert "no revocation information could be found for" in sig.details[0]
    assert "Test State Certification Organization CA" in sig.details[0]
    assert sig.details[0].endswith("none is embedded in the file, and fetching is off (offline)")


def test_cli_names_the_certificate_without_revocation_data(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    """The CLI silences pyHanko's logging; the reasons must reach the report all the same."""
    path = tmp_path / "b-b.pdf"
    path.write_bytes(_sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_B, "Signature1"))
    r = run_esign("verify", str(path), "--trust", str(pki.trust_dir), "--offline", "--lang", "en")
    assert r.code == 2, r.out + r.err
    assert "Detail: no revocation information could be found for" in r.out, r.out
    assert "none is embedded in the file, and fetching is off (offline)" in r.out
    assert "Traceback" not in r.err and "WARNING" not in r.err, r.err


def test_refused_revocation_fetch_is_named(pki: testpki.TestPki, services: PkiServices) -> None:
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_B, "Signature1")
    trust = TrustConfig.from_paths(
        [pki.trust_dir],
        intermediates=[pki.intermediates_dir],
        fetch_allow=["http://elsewhere.invalid/"],
    )
    report = Verifier(trust, VerifyOptions(online=True)).verify_bytes(signed)
    sig = _one(report, "Signature1")
    assert sig.indication is Indication.INDETERMINATE, sig
    assert "none is embedded in the file; fetching http://127.0.0.1:" in sig.details[0], sig
    assert "refused by the trust policy (fetch_allow)" in sig.details[0]


def test_untrusted_document_timestamp_says_why(pki: testpki.TestPki, services: PkiServices) -> None:
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_LTA, "Signature1")
    other_root = TrustConfig.from_paths([pki.trust_dir / "mn-rsa-root.pem"])
    report = Verifier(other_root, VerifyOptions(online=False)).verify_bytes(signed)
    stamp = report.signatures[-1]
    assert stamp.kind == "document-timestamp"
    assert (stamp.indication, stamp.subindication) == (
        Indication.INDETERMINATE,
        "NO_CERTIFICATE_CHAIN_FOUND",
    )
    assert stamp.details and stamp.details[0].startswith(
        "the timestamp authority's certificate (Common Name: Test National Time-Stamping Authority"
    ), stamp.details


def test_a_dss_that_predates_a_signature_does_not_make_it_b_lt(
    pki: testpki.TestPki, services: PkiServices, b_lt_ec: bytes
) -> None:
    """The level label follows what the file carries for each signature: a B-T signature added
    after another signature's DSS is B-T (its validation data is nowhere in the file)."""
    two = _sign(pki, b_lt_ec, "mn-ec", PadesLevel.B_T, "Signature2")
    report = _verify(pki, two, online=True)
    assert _one(report, "Signature1").pades_level == "B-LT"
    assert _one(report, "Signature2").pades_level == "B-T"


def test_broken_signature_timestamp_is_ignored_not_called_a_forgery(
    pki: testpki.TestPki, b_lt_ec: bytes
) -> None:
    """The signature timestamp's own signature is broken; the signature itself is genuine. ETSI
    EN 319 102-1 ignores a timestamp that does not validate: the signature is judged without it
    (here it passes with the embedded revocation data), and the report says what was ignored."""

    def break_token(info: cms.SignerInfo) -> None:
        token = info["unsigned_attrs"][0]["values"][0]
        tst_info = token["content"]["signer_infos"][0]
        value = bytearray(tst_info["signature"].native)
        value[10] ^= 0x01
        tst_info["signature"] = bytes(value)

    report = _verify(pki, _rewrite_cms(b_lt_ec, break_token))
    sig = _one(report, "Signature1")
    assert sig.subindication != "SIG_CRYPTO_FAILURE", sig
    assert sig.indication is Indication.TOTAL_PASSED, sig
    assert sig.details == (
        "the signature timestamp does not validate (the timestamp token's signature does not "
        "verify); it was ignored and the signature validated without it",
    )
    assert sig.timestamp_time is None


def test_a_forbidden_change_is_the_detail_not_what_ades_left_open(
    pki: testpki.TestPki, services: PkiServices
) -> None:
    """Offline, a B-B signature lacks revocation data (INDETERMINATE); a page rotated after
    signing makes it TOTAL-FAILED, and the detail must say what changed, not the revocation."""
    signed = _sign(pki, SAMPLE.read_bytes(), "mn-ec", PadesLevel.B_B, "Signature1")
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    page["/Rotate"] = generic.NumberObject(90)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    sig = _one(_verify(pki, out.getvalue()), "Signature1")
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert sig.details and sig.details[0].startswith("difference analysis:"), sig.details
    assert not any("revocation" in d for d in sig.details), sig.details
