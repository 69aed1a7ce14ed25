"""The per-run certificate memo (verify/certcache.py): a batch of one signer's B-LT documents
extracts each CMS's certificates and passes each ESS signing-certificate check once, and every
document still gets the report a verifier of its own gives: one whose signer certificate differs
in one byte, one whose TSA certificate lacks the timeStamping purpose (same name as the real
TSA's), and all of them at a time when the certificates have expired."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pytest
from asn1crypto import cms, crl, keys, pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import general
from pyhanko.sign.validation import ades, errors, generic_cms
from pyhanko_certvalidator.ltv.poe import ValidationObject, ValidationObjectType

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO
from verify import TrustConfig, Verifier, VerifyOptions, certcache
from verify.render import to_json


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


def _comparable(report_json: str) -> dict[str, Any]:
    report = json.loads(report_json)
    for signature in report["signatures"]:
        signature["details"] = [sorted(re.findall(r"\w+", d)) for d in signature["details"]]
    return cast(dict[str, Any], report)


@pytest.fixture(scope="module")
def batch(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    folder = tmp_path_factory.mktemp("certcache")
    base = (REPO / "samples" / "certificate.pdf").read_bytes()
    seal = load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    signer = DocumentSigner(seal, SignOptions(level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-ec")))
    files = []
    for i in range(3):
        files.append(folder / f"genuine-{i}.pdf")
        files[-1].write_bytes(signer.sign_bytes(base + f"\n% item {i}\n".encode()))
    return files


def _one_byte_off(data: bytes, cert: x509.Certificate, tmp: Path, name: str) -> Path:
    """The file with one byte of ``cert`` changed where the CMS in /Contents carries it (the
    last byte of its signature value): outside the signed byte range, so only the CMS differs."""
    hexed = cert.dump().hex().encode()
    at = data.lower().find(hexed)
    assert at > 0, "the certificate is in /Contents"
    last = at + len(hexed) - 2
    flipped = b"%02x" % (int(data[last : last + 2], 16) ^ 0x01)
    path = tmp / name
    path.write_bytes(data[:last] + flipped + data[last + 2 :])
    return path


def _tsa_without_timestamping(pki: testpki.TestPki, tmp: Path) -> tuple[x509.Certificate, Any]:
    """A certificate with the real TSA's subject, issuer, serial and key, issued by the real TSA
    CA, but without the extended key usage timeStamping: by name the real one."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization

    real = cx509.load_pem_x509_certificate(pki.cert("mn-rsa", "tsa").read_bytes())
    ca_key = serialization.load_pem_private_key(
        pki.key("mn-rsa", "sco").read_bytes(), password=None
    )
    tsa_key_pem = pki.key("mn-rsa", "tsa").read_bytes()
    tsa_key = serialization.load_pem_private_key(tsa_key_pem, password=None)
    builder = (
        cx509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.issuer)
        .serial_number(real.serial_number)
        .not_valid_before(real.not_valid_before_utc)
        .not_valid_after(real.not_valid_after_utc)
        .public_key(tsa_key.public_key())  # type: ignore[arg-type]
    )
    for ext in real.extensions:
        if not isinstance(ext.value, cx509.ExtendedKeyUsage):
            builder = builder.add_extension(ext.value, ext.critical)
    forged = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    der = forged.public_bytes(serialization.Encoding.DER)
    _, _, key_der = pem.unarmor(tsa_key_pem)
    return x509.Certificate.load(der), keys.PrivateKeyInfo.load(key_der)


def _load(path: Path) -> x509.Certificate:
    _, _, der = pem.unarmor(path.read_bytes())
    return x509.Certificate.load(der)


def _signed_with_tsa(pki: testpki.TestPki, tsa: tuple[x509.Certificate, Any]) -> bytes:
    """B-T by the seal with ``tsa``'s token, then the DSS of a genuine B-LT document timestamped
    by the real TSA of that name (its chain and revocation data): B-LT by every name."""
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    base = (REPO / "samples" / "certificate.pdf").read_bytes()
    seal = load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    root = (_load(pki.cert("mn-rsa", "root")),)
    lt = SignOptions(level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-rsa"), trust_roots=root)
    real = DocumentSigner(seal, lt)
    genuine = real.sign_bytes(base + b"\n% real tsa\n")
    rogue = DocumentSigner(seal, SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url("mn-rsa")))
    ca = _load(pki.cert("mn-rsa", "sco"))
    embed = SimpleCertificateStore.from_certs([ca])
    rogue._timestamper = DummyTimeStamper(tsa[0], tsa[1], certs_to_embed=embed)  # type: ignore[assignment]
    signed = rogue.sign_bytes(base + b"\n% no-eku tsa\n")
    dss = ades._dss_to_local_knowledge(PdfFileReader(BytesIO(genuine)))
    out = BytesIO(signed)
    DocumentSecurityStore.add_dss(
        out,
        PdfFileReader(BytesIO(signed)).embedded_signatures[0].pkcs7_content,
        certs=list(dss.known_certs),
        ocsps=[o.ocsp_response_data for o in dss.known_ocsps],
        crls=[c.crl_data for c in dss.known_crls],
    )
    return out.getvalue()


def _equal_to_lone_verifiers(pki: testpki.TestPki, files: list[Path], at: datetime) -> Verifier:
    options = VerifyOptions(online=False, at=at)
    alone = {p: _comparable(to_json(Verifier(_trust(pki), options).verify_file(p))) for p in files}
    verifier = Verifier(_trust(pki), options)
    for order in (files, files[::-1]):
        for path in order:
            assert _comparable(to_json(verifier.verify_file(path))) == alone[path], path.name
    return verifier


def _moment() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)


def test_a_batch_extracts_its_certificates_once(pki: testpki.TestPki, batch: list[Path]) -> None:
    verifier = _equal_to_lone_verifiers(pki, batch, _moment())
    runs = 2 * len(batch)
    # each document: the signature's CMS and its timestamp token's; all but the first from memo
    assert len(verifier.cert_cache) == 2
    assert verifier.cert_cache.misses == 2
    assert verifier.cert_cache.hits >= 2 * (runs - 1)
    assert verifier.cert_cache.ess_hits >= 2 * (runs - 1)
    assert verifier.cert_cache.dss_hits == runs - 1
    assert verifier.cert_cache.algorithm_hits >= 2 * (runs - 1)
    report = verifier.verify_file(batch[0])
    assert report.indication.value == "TOTAL-PASSED"


def test_a_signer_certificate_one_byte_off_gets_its_own_verdict(
    pki: testpki.TestPki, batch: list[Path], tmp_path: Path
) -> None:
    data = batch[0].read_bytes()
    signature = PdfFileReader(BytesIO(data)).embedded_signatures[0]
    changed = _one_byte_off(data, signature.signer_cert, tmp_path, "signer-one-byte.pdf")
    files = [*batch, changed]
    verifier = _equal_to_lone_verifiers(pki, files, _moment())
    assert verifier.verify_file(changed).indication.value != "TOTAL-PASSED"
    assert len(verifier.cert_cache) == 3, "the changed certificate set has an entry of its own"


def test_a_tsa_certificate_one_byte_off_gets_its_own_verdict(
    pki: testpki.TestPki, batch: list[Path], tmp_path: Path
) -> None:
    data = batch[1].read_bytes()
    signature = PdfFileReader(BytesIO(data)).embedded_signatures[0]
    (token,) = generic_cms.extract_tst_data_iter(signature.signer_info, signed=False)
    tsa = general.extract_certificate_info(token).signer_cert
    changed = _one_byte_off(data, tsa, tmp_path, "tsa-one-byte.pdf")
    verifier = _equal_to_lone_verifiers(pki, [*batch, changed], _moment())
    assert verifier.verify_file(changed).indication.value != "TOTAL-PASSED"


def test_a_same_named_tsa_without_timestamping_purpose_is_judged_on_its_own(
    pki: testpki.TestPki, services: PkiServices, batch: list[Path], tmp_path: Path
) -> None:
    rogue = tmp_path / "no-eku-tsa.pdf"
    rogue.write_bytes(_signed_with_tsa(pki, _tsa_without_timestamping(pki, tmp_path)))
    verifier = _equal_to_lone_verifiers(pki, [*batch, rogue], _moment())
    report = verifier.verify_file(rogue)
    signature = report.signatures[0]
    assert signature.timestamp_time is None, "the rogue TSA's token proves no time"
    assert (report.indication.value, signature.subindication) == (
        "INDETERMINATE",
        "CHAIN_CONSTRAINTS_FAILURE",
    )


def test_expired_certificates_keep_their_verdicts(
    pki: testpki.TestPki, batch: list[Path], tmp_path: Path
) -> None:
    data = batch[0].read_bytes()
    signer = PdfFileReader(BytesIO(data)).embedded_signatures[0].signer_cert
    after = signer["tbs_certificate"]["validity"]["not_after"].native + timedelta(days=1)
    changed = _one_byte_off(data, signer, tmp_path, "expired-one-byte.pdf")
    verifier = _equal_to_lone_verifiers(pki, [*batch, changed], after)
    assert verifier.verify_file(batch[0]).indication.value != "TOTAL-PASSED"


def test_a_document_with_more_in_its_dss_is_read_on_its_own(
    pki: testpki.TestPki, batch: list[Path], tmp_path: Path
) -> None:
    """The same signature with one more certificate in its DSS: another DSS content, read and
    judged again; the genuine documents still share theirs."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    data = batch[2].read_bytes()
    signature = PdfFileReader(BytesIO(data)).embedded_signatures[0]
    out = BytesIO(data)
    extra = _load(pki.cert("mn-rsa", "root"))
    DocumentSecurityStore.add_dss(out, signature.pkcs7_content, certs=[extra])
    more = tmp_path / "more-in-dss.pdf"
    more.write_bytes(out.getvalue())
    verifier = _equal_to_lone_verifiers(pki, [*batch, more], _moment())
    assert len(verifier.cert_cache._dss) == 2
    assert verifier.cert_cache.dss_hits == 2 * (len(batch) + 1) - 2


def _certs(pki: testpki.TestPki) -> list[x509.Certificate]:
    found = []
    for folder in (pki.trust_dir, pki.intermediates_dir):
        for path in sorted(folder.glob("*.pem")):
            _, _, der = pem.unarmor(path.read_bytes())
            found.append(x509.Certificate.load(der))
    return found


def test_validation_object_identifiers_equal_pyhankos(
    pki: testpki.TestPki, batch: list[Path]
) -> None:
    """On the PKI's certificates, the batch's CRLs and OCSP responses, and certificates with
    random bytes changed (parsed lazily, some of them unparseable)."""
    original = certcache._original_identifier
    reader = PdfFileReader(BytesIO(batch[0].read_bytes()))
    dss = ades._dss_to_local_knowledge(reader)
    values: list[ValidationObject] = [
        *(ValidationObject(ValidationObjectType.CERTIFICATE, c) for c in _certs(pki)),
        *(ValidationObject(ValidationObjectType.CRL, c) for c in dss.known_crls),
        *(ValidationObject(ValidationObjectType.OCSP_RESPONSE, o) for o in dss.known_ocsps),
    ]
    rng = random.Random(13)
    for cert in _certs(pki):
        der = bytearray(cert.dump())
        for _ in range(3):
            der[rng.randrange(4, len(der))] ^= 1 << rng.randrange(8)
        values.append(
            ValidationObject(ValidationObjectType.CERTIFICATE, x509.Certificate.load(bytes(der)))
        )
    assert all(isinstance(c.crl_data, crl.CertificateList) for c in dss.known_crls)
    assert dss.known_crls and dss.known_ocsps
    for vo in values:
        try:
            expected: Any = original(vo)
        except Exception as e:
            expected = (type(e), str(e))
        try:
            got: Any = certcache._validation_object_identifier(vo)
        except Exception as e:
            got = (type(e), str(e))
        assert got == expected


def test_a_failed_signing_certificate_check_is_never_remembered(batch: list[Path]) -> None:
    """pyHanko's error, every time; a passed check is remembered for the same bytes only."""
    reader = PdfFileReader(BytesIO(batch[0].read_bytes()))
    signature = reader.embedded_signatures[0]
    signed_attrs = signature.signer_info["signed_attrs"]
    other = next(iter(signature.other_embedded_certs))
    cache = certcache.CertCache()
    original = generic_cms._check_signing_certificate.__wrapped__  # type: ignore[attr-defined]
    check = certcache._memoised_check(original)
    with certcache.using(cache):
        messages = []
        for _ in range(2):
            with pytest.raises(errors.SignatureValidationError) as raised:
                check(other, signed_attrs)
            messages.append(str(raised.value))
        assert messages[0] == messages[1] and cache.ess_hits == 0
        check(signature.signer_cert, signed_attrs)
        check(signature.signer_cert, signed_attrs)
        assert cache.ess_hits == 1


def test_a_cms_without_its_signer_certificate_fails_each_time_alike(batch: list[Path]) -> None:
    """An extraction that fails is not remembered: pyHanko's error each time; a success is
    served again, as the same objects, for a fresh parse of the same bytes."""
    content = PdfFileReader(BytesIO(batch[0].read_bytes())).embedded_signatures[0].pkcs7_content

    def parsed() -> cms.SignedData:
        return cast(cms.SignedData, cms.ContentInfo.load(content)["content"])

    info = cms.ContentInfo.load(content)
    signer = info["content"]["signer_infos"][0]["sid"].chosen["serial_number"].native
    info["content"]["certificates"] = [
        c for c in info["content"]["certificates"] if c.chosen.serial_number != signer
    ]
    stripped = cms.ContentInfo.load(info.dump(force=True))["content"]
    cache = certcache.CertCache()
    with certcache.using(cache):
        messages = []
        for _ in range(2):
            with pytest.raises(errors.SignatureValidationError) as raised:
                generic_cms.extract_certs_for_validation(stripped)
            messages.append(str(raised.value))
        assert messages[0] == messages[1]
        assert len(cache) == 0 and cache.hits == 0
        first = general.extract_certificate_info(parsed())
        again = general.extract_certificate_info(parsed())
        assert again.signer_cert is first.signer_cert and cache.hits == 1
    plain = general.extract_certificate_info(parsed())  # outside a run: pyHanko's own
    assert plain.signer_cert is not first.signer_cert
    assert plain.signer_cert.dump() == first.signer_cert.dump()
    assert [c.dump() for c in plain.other_certs] == [c.dump() for c in first.other_certs]


def test_a_refused_algorithm_is_never_remembered(batch: list[Path]) -> None:
    """SHA-1 as the signer's digest algorithm: refused by pyHanko's check, with its own error,
    each time; the genuine algorithms pass and are then served from the memo; another policy
    than esign's own is never memoised."""
    from pyhanko.sign.validation.utils import (
        DEFAULT_ALGORITHM_USAGE_POLICY,
        CMSAlgorithmUsagePolicy,
    )

    from verify.policy import StateCryptoPolicy

    signature = PdfFileReader(BytesIO(batch[0].read_bytes())).embedded_signatures[0]
    genuine = signature.signer_info
    weak = cms.SignerInfo.load(genuine.dump())
    weak["digest_algorithm"] = {"algorithm": "sha1"}
    weak = cms.SignerInfo.load(weak.dump(force=True))
    policy = CMSAlgorithmUsagePolicy.lift_policy(StateCryptoPolicy())
    original = generic_cms._enforce_algorithm_usage.__wrapped__  # type: ignore[attr-defined]
    check = certcache._memoised_enforce(original)
    cache = certcache.CertCache()
    with certcache.using(cache):
        messages = []
        for _ in range(2):
            with pytest.raises(errors.DisallowedAlgorithmError) as raised:
                check(weak, signature.signer_cert, algorithm_usage_policy=policy)
            messages.append(str(raised.value))
        assert messages[0] == messages[1] and len(cache._algorithms) == 0
        for _ in range(2):
            check(genuine, signature.signer_cert, algorithm_usage_policy=policy)
        assert cache.algorithm_hits == 1
        for _ in range(2):
            check(genuine, signature.signer_cert, DEFAULT_ALGORITHM_USAGE_POLICY, None)
        assert cache.algorithm_hits == 1 and len(cache._algorithms) == 1


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as e:  # the same exception, whatever it is, is what is compared
        return (type(e), str(e))


def _steps(
    signed_data: cms.SignedData, extract: Any, check: Any, enforce: Any, policy: Any
) -> list[Any]:
    """pyHanko's certificate steps of a CMS, each outcome as comparable data."""
    info = _outcome(lambda: extract(signed_data))
    if info[0] != "ok":
        return [info]
    found = info[1]
    signer_info = signed_data["signer_infos"][0]
    return [
        ("ok", found.signer_cert.dump(), [c.dump() for c in found.other_certs]),
        _outcome(lambda: check(found.signer_cert, signer_info["signed_attrs"])),
        _outcome(lambda: enforce(found.signer_cert, signer_info, policy)),
    ]


def test_memoised_steps_equal_pyhankos_on_mutated_cms(batch: list[Path]) -> None:
    """Random byte flips in a signature's CMS (and in its timestamp token, inside it): with the
    memos warm on the genuine CMS, each step gives what pyHanko's own function gives on a fresh
    parse of the same bytes: the same certificates, or the same error."""
    from pyhanko.sign.validation.utils import CMSAlgorithmUsagePolicy

    from verify.policy import StateCryptoPolicy

    content = PdfFileReader(BytesIO(batch[0].read_bytes())).embedded_signatures[0].pkcs7_content
    genuine = cms.ContentInfo.load(content).dump()
    policy = CMSAlgorithmUsagePolicy.lift_policy(StateCryptoPolicy())
    plain = (
        general.extract_certificate_info.__wrapped__,  # type: ignore[attr-defined]
        generic_cms._check_signing_certificate.__wrapped__,  # type: ignore[attr-defined]
        generic_cms._enforce_algorithm_usage.__wrapped__,  # type: ignore[attr-defined]
    )
    memo = (
        general.extract_certificate_info,
        generic_cms._check_signing_certificate,
        generic_cms._enforce_algorithm_usage,
    )

    def steps(der: bytes, functions: tuple[Any, Any, Any]) -> list[Any]:
        extract, check, enforce = functions
        try:
            signed_data = cms.ContentInfo.load(der)["content"]
        except ValueError as e:
            return [(type(e), str(e))]
        return _steps(
            signed_data,
            extract,
            check,
            lambda cert, info, policy: enforce(info, cert, algorithm_usage_policy=policy),
            policy,
        )

    cache = certcache.CertCache()
    rng = random.Random(13)
    kinds = set()
    with certcache.using(cache):
        assert steps(genuine, memo) == steps(genuine, plain)
        for _ in range(300):
            der = bytearray(genuine)
            for _ in range(rng.randrange(1, 4)):
                der[rng.randrange(len(der))] ^= 1 << rng.randrange(8)
            expected = steps(bytes(der), plain)
            assert steps(bytes(der), memo) == expected
            assert steps(bytes(der), memo) == expected, "asked again, from the memo"
            kinds.add(tuple(str(o[0]) for o in expected))
    assert len(kinds) > 2, kinds
    assert cache.hits > 0 and cache.ess_hits > 0 and cache.algorithm_hits > 0


def _knowledge(found: Any) -> Any:
    return (
        [c.dump() for c in found.known_certs],
        [o.ocsp_response_data.dump() for o in found.known_ocsps],
        [c.crl_data.dump() for c in found.known_crls],
    )


def test_remembered_dss_equals_pyhankos_reading_on_mutated_files(batch: list[Path]) -> None:
    """Random byte flips in the DSS update at the end of a B-LT file (its streams, dictionary,
    cross-reference section): with the memo warm on the genuine file, reading the DSS gives what
    pyHanko's own reading gives: the same certificates, OCSP responses and CRLs, or the same
    error."""
    data = batch[0].read_bytes()
    signature = PdfFileReader(BytesIO(data)).embedded_signatures[0]
    start = int(signature.byte_range[2]) + int(signature.byte_range[3])  # the DSS update
    original = ades._dss_to_local_knowledge
    cache = certcache.CertCache()

    def plain(der: bytes) -> Any:
        return _outcome(lambda: _knowledge(original(PdfFileReader(BytesIO(der)))))

    def memo(der: bytes) -> Any:
        def read() -> Any:
            return _knowledge(cache.dss_knowledge(PdfFileReader(BytesIO(der)), original))

        return _outcome(read)

    assert memo(data) == plain(data) and plain(data)[0] == "ok"
    rng = random.Random(13)
    kinds = set()
    for _ in range(150):
        der = bytearray(data)
        for _ in range(rng.randrange(1, 3)):
            der[rng.randrange(start, len(der))] ^= 1 << rng.randrange(8)
        expected = plain(bytes(der))
        assert memo(bytes(der)) == expected
        kinds.add(str(expected[0]))
    assert cache.dss_hits > 0 and len(kinds) > 1, kinds
