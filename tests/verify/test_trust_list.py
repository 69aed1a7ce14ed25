"""`esign trust-list build` and `esign seal verify --trust-list` as an offline verifier uses them: a
bank holding only the state root and a trust list built after a revocation accepts the genuine
seal, refuses the revoked document's seal, and refuses a tampered, forged or stale list with one
clear reason (INDETERMINATE, never TOTAL-FAILED, unless the seal itself is bad)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from esign import testpki
from esign.issue import document_id
from esign.registry import IssuedDocument, open_registry
from esign.seal import SealClaims, SealSigner, fields_digest, sig_structure
from esign.trustlist import (
    MEDIA_TYPE,
    SealKey,
    TrustListContent,
    TrustListSigner,
    sealing_days,
)
from tests.helpers import Run, run_esign
from tests.verify.trustpki import small_pki

BASE = "https://verify.e-mongolia.mn"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Setup:
    folder: Path
    root: Path
    registry: str
    register: Path
    signer: tuple[str, ...]
    genuine: str
    revoked: str
    revoked_id: str
    shsg: str
    trust_list: Path


def _seal(p12_cert: Path, key: Path, number: str, issuer: str = "UBEG") -> str:
    signer = SealSigner.from_pem_files(key, p12_cert)
    claims = SealClaims(
        issuer=issuer,
        doc_type="residence",
        number=number,
        issued=date(2026, 3, 2),
        expires=None,
        subject_name="Батбаярын Энх-Амгалан",
        subject_id="УБ99112233",
        fields_digest=fields_digest({"Хаяг": "Баянзүрх дүүрэг"}),
    )
    return signer.url(BASE, claims)


def _record(registry: str, issuer: str, number: str, expires: date | None = None) -> str:
    doc_id = document_id(issuer, number)
    with open_registry(registry) as reg:
        reg.record(
            IssuedDocument(
                id=doc_id,
                doc_type="residence",
                issuer=issuer,
                subject_digest="a" * 64,
                issued_on=date(2025, 3, 2) if expires else date(2026, 3, 2),
                expires_on=expires,
                pdf_sha256="b" * 64,
            )
        )
    return doc_id


def esign(*args: str) -> Run:
    return run_esign(*args, env={"ESIGN_REGISTRY": ""})


def verify(s: Setup, seal: str, trust_list: Path | None = None, *extra: str) -> Run:
    return esign(
        "seal", "verify", seal, "--trust", str(s.root),
        "--trust-list", str(trust_list or s.trust_list), "--lang", "en", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def setup(pki: testpki.TestPki, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    folder = tmp_path_factory.mktemp("trust-list")
    registry = f"sqlite:{folder / 'registry.sqlite3'}"
    seal_cert, seal_key = pki.cert("mn-ec", "seal"), pki.key("mn-ec", "seal")
    genuine = _seal(seal_cert, seal_key, "ОСХ-2026-000101")
    revoked = _seal(seal_cert, seal_key, "ОСХ-2026-000102")
    shsg = _seal(pki.cert("mn-ec", "seal-shsg"), pki.key("mn-ec", "seal-shsg"), "ШШ-7", "SHSG")
    _record(registry, "UBEG", "ОСХ-2026-000101")
    revoked_id = _record(registry, "UBEG", "ОСХ-2026-000102")
    result = esign("revoke", revoked_id, "--reason", "issued in error", "--registry", registry)
    assert result.code == 0, result.err
    # Revoked too, but expired last year: no verifier accepts it any more, so it is not listed.
    long_gone = _record(registry, "UBEG", "ОСХ-2025-000900", expires=date(2025, 12, 31))
    assert esign("revoke", long_gone, "--reason", "x", "--registry", registry).code == 0
    # The register lists UBEG's seal only: SHSG's key is unknown to this list.
    register = folder / "seals.toml"
    register.write_text(
        f'intermediates = ["{pki.cert("mn-ec", "issuing")}"]\n\n'
        f'[[key]]\nagency = "UBEG"\ncertificate = "{seal_cert}"\n',
        encoding="utf-8",
    )
    signer = (
        "--key", str(pki.key("mn-ec", "trust-list")),
        "--cert", str(pki.cert("mn-ec", "trust-list")),
        "--chain", str(pki.chain("mn-ec", "trust-list")),
    )  # fmt: skip
    trust_list = folder / "trust-list.cose"
    built = esign(
        "trust-list", "build", "-o", str(trust_list), "--seals", str(register),
        "--registry", registry, *signer,
    )  # fmt: skip
    assert built.code == 0, built.err
    assert "1 seal keys, 1 withdrawn documents" in built.out
    return Setup(
        folder=folder,
        root=pki.cert("mn-ec", "root"),
        registry=registry,
        register=register,
        signer=signer,
        genuine=genuine,
        revoked=revoked,
        revoked_id=revoked_id,
        shsg=shsg,
        trust_list=trust_list,
    )


def test_offline_genuine_seal_passes(setup: Setup) -> None:
    result = verify(setup, setup.genuine)
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("VALID (TOTAL-PASSED)")


def test_offline_revoked_document_fails(setup: Setup) -> None:
    result = verify(setup, setup.revoked)
    assert result.code == 1, result.out + result.err
    assert "(TOTAL-FAILED / REVOKED)" in result.out
    assert "The issuer has revoked or replaced this document." in result.out
    mongolian = verify(setup, setup.revoked, None, "--lang", "mn")
    assert "хүчингүй болгосон" in mongolian.out


def test_list_names_no_person_and_no_document_id(setup: Setup) -> None:
    data = setup.trust_list.read_bytes()
    for text in ("УБ99112233", "Батбаярын", "ОСХ-2026-000102", setup.revoked_id):
        assert text.encode() not in data


def _tampered(setup: Setup, name: str, change: dict[int, object]) -> Path:
    """The list with its payload changed and the original signature kept."""
    cose = cbor2.loads(setup.trust_list.read_bytes())
    protected, unprotected, payload, signature = cose.value
    body = cbor2.loads(payload)
    body.update(change)
    forged = cbor2.CBORTag(
        18, [protected, unprotected, cbor2.dumps(body, canonical=True), signature]
    )
    path = setup.folder / name
    path.write_bytes(cbor2.dumps(forged))
    return path


def test_tampered_list_is_refused(setup: Setup) -> None:
    """Someone deletes the revocation from the list so the revoked seal would pass."""
    tampered = _tampered(setup, "no-revocations.cose", {6: {}})
    for seal in (setup.revoked, setup.genuine):
        result = verify(setup, seal, tampered)
        assert result.code == 2, result.out + result.err
        assert "(INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND)" in result.out
        assert "trust list refused: its signature does not verify (altered or forged)" in (
            result.out
        )
        assert "TOTAL-PASSED" not in result.out


def test_bit_flip_and_garbage_are_refused(setup: Setup) -> None:
    data = bytearray(setup.trust_list.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = setup.folder / "flipped.cose"
    flipped.write_bytes(bytes(data))
    garbage = setup.folder / "garbage.cose"
    garbage.write_bytes(b"<html>not a list</html>")
    empty = setup.folder / "empty.cose"
    empty.write_bytes(b"")
    for path in (flipped, garbage, empty):
        result = verify(setup, setup.genuine, path)
        assert result.code == 2, result.out + result.err
        refusals = [line for line in result.out.splitlines() if "trust list refused:" in line]
        assert len(refusals) == 1, result.out
        assert "Traceback" not in result.err


def test_stale_list_is_refused(setup: Setup) -> None:
    later = (NOW + timedelta(hours=49)).isoformat()
    result = verify(setup, setup.genuine, None, "--at", later)
    assert result.code == 2, result.out + result.err
    assert "(INDETERMINATE / TRY_LATER)" in result.out
    assert "out of date since" in result.out


def test_list_signed_outside_the_state_pki_is_refused(setup: Setup, pki: testpki.TestPki) -> None:
    """A forger's own CA issues a signer with the right purpose: it does not chain to the root."""
    rogue = small_pki("Rogue")
    seal = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    first, last = sealing_days(seal)
    content = TrustListContent(
        issued=NOW,
        next_update=NOW + timedelta(days=1),
        seal_keys=(SealKey(seal, "UBEG", first, last),),
    )
    forged = setup.folder / "rogue.cose"
    forged.write_bytes(
        TrustListSigner(rogue.list_signer.key, rogue.list_signer.cert, [rogue.issuing.cert]).sign(
            content
        )
    )
    result = verify(setup, setup.revoked, forged)
    assert result.code == 2, result.out + result.err
    assert "trust list refused: the signer certificate does not chain to a trust anchor" in (
        result.out
    )


def test_signer_without_trust_list_purpose_cannot_build(setup: Setup, pki: testpki.TestPki) -> None:
    """The agency seal key has no trust-list EKU: building refuses, and writes nothing."""
    out = setup.folder / "by-seal-key.cose"
    result = esign(
        "trust-list", "build", "-o", str(out), "--seals", str(setup.register),
        "--registry", setup.registry,
        "--key", str(pki.key("mn-ec", "seal")), "--cert", str(pki.cert("mn-ec", "seal")),
    )  # fmt: skip
    assert result.code == 5, result.out + result.err
    assert result.err.startswith("esign: error: the certificate")
    assert "may not sign trust lists" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("entry", "code", "message"),
    [
        ("seal_from = 2020-01-01", 3, "is not inside the certificate's whole Ulaanbaatar days"),
        ('agency = "SHSG"', 4, "binds agency 'UBEG' (organizationIdentifier GV:MN-<code>), not"),
        ("colour = 1", 4, "has unknown key 'colour'"),
    ],
)
def test_bad_register_is_one_line_error(
    setup: Setup, pki: testpki.TestPki, entry: str, code: int, message: str
) -> None:
    register = setup.folder / "bad-register.toml"
    register.write_text(
        f'[[key]]\ncertificate = "{pki.cert("mn-ec", "seal")}"\n{entry}\n', encoding="utf-8"
    )
    out = setup.folder / "bad.cose"
    result = esign(
        "trust-list", "build", "-o", str(out), "--seals", str(register),
        "--registry", setup.registry, *setup.signer,
    )  # fmt: skip
    assert result.code == code, result.out + result.err
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()


def test_unlisted_key_is_indeterminate(setup: Setup) -> None:
    result = verify(setup, setup.shsg)
    assert result.code == 2, result.out + result.err
    assert "(INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND)" in result.out
    assert "is not in the trust list" in result.out


def test_malformed_seal_fails_even_with_a_bad_list(setup: Setup) -> None:
    garbage = setup.folder / "garbage2.cose"
    garbage.write_bytes(b"\x00")
    result = verify(setup, setup.genuine[:-16], garbage)
    assert result.code == 1, result.out + result.err
    assert "(TOTAL-FAILED / FORMAT_FAILURE)" in result.out


def test_json_report_and_default_test_pki(setup: Setup, pki: testpki.TestPki) -> None:
    """Without --seals/--key the test PKI's agency seals and trust-list signer are used."""
    out = setup.folder / "default.cose"
    built = run_esign(
        "trust-list", "build", "-o", str(out), "--registry", setup.registry,
        env={"ESIGN_TEST_PKI": str(pki.root), "ESIGN_REGISTRY": ""},
    )  # fmt: skip
    assert built.code == 0, built.err
    assert "3 seal keys, 1 withdrawn documents" in built.out
    result = verify(setup, setup.shsg, out, "--json")
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["indication"] == "TOTAL-PASSED"
    assert report["claims"]["issuer"] == "SHSG"


def test_show_prints_the_list_or_why_it_is_refused(setup: Setup) -> None:
    shown = esign("trust-list", "show", str(setup.trust_list), "--trust", str(setup.root))
    assert shown.code == 0, shown.out + shown.err
    assert ": accepted; signed by" in shown.out
    assert "UBEG: seals 2025-01-02..2044-12-31" in shown.out
    assert "withdrawn documents of UBEG: 1" in shown.out
    tampered = _tampered(setup, "shown-tampered.cose", {6: {}})
    refused = esign("trust-list", "show", str(tampered), "--trust", str(setup.root))
    assert refused.code == 2
    assert refused.out.strip() == (
        "trust list refused: its signature does not verify (altered or forged)"
    )


def test_seal_certs_and_trust_list_together_is_a_usage_error(
    setup: Setup, pki: testpki.TestPki
) -> None:
    result = verify(setup, setup.genuine, None, "--seal-certs", str(pki.seals_dir))
    assert result.code == 3, result.out + result.err
    assert result.err.strip() == (
        "esign: error: give --seal-certs or --trust-list, not both: the list has the seal keys"
    )
    assert result.out == ""


def test_list_signed_by_a_state_key_without_the_purpose_is_refused(
    setup: Setup, pki: testpki.TestPki
) -> None:
    """The agency seal key chains to the root but may not sign lists (no trust-list EKU): a list
    it signed, listing itself with no revocations, is refused, not crashed on."""
    seal_cert = x509.load_pem_x509_certificate(pki.cert("mn-ec", "seal").read_bytes())
    seal_key = serialization.load_pem_private_key(pki.key("mn-ec", "seal").read_bytes(), None)
    assert isinstance(seal_key, ec.EllipticCurvePrivateKey)
    first, last = sealing_days(seal_cert)
    content = TrustListContent(
        issued=NOW,
        next_update=NOW + timedelta(days=1),
        seal_keys=(SealKey(seal_cert, "UBEG", first, last),),
    )
    der = seal_cert.public_bytes(serialization.Encoding.DER)
    protected = cbor2.dumps(
        {1: -7, 16: MEDIA_TYPE, 34: [-16, hashlib.sha256(der).digest()]}, canonical=True
    )
    payload = content.payload()
    r, s = decode_dss_signature(
        seal_key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
    )
    issuing = x509.load_pem_x509_certificate(pki.cert("mn-ec", "issuing").read_bytes())
    x5chain = [der, issuing.public_bytes(serialization.Encoding.DER)]
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    cose = cbor2.CBORTag(18, [protected, {33: x5chain}, payload, signature])
    forged = setup.folder / "seal-signed.cose"
    forged.write_bytes(cbor2.dumps(cose))
    result = verify(setup, setup.revoked, forged)
    assert result.code == 2, result.out + result.err
    assert "trust list refused: the signer certificate may not sign trust lists" in result.out
    assert result.err == ""


def test_hostile_certificate_in_x5chain_is_refused(setup: Setup) -> None:
    """x5chain travels unprotected: a CA certificate there whose version field is 68 (asn1crypto
    reads it, cryptography raises InvalidVersion) is refused, not an internal error."""
    protected, unprotected, payload, signature = cbor2.loads(setup.trust_list.read_bytes()).value
    signer, ca = unprotected[33]
    assert b"\xa0\x03\x02\x01\x02" in ca
    hostile = ca.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x44", 1)
    path = setup.folder / "hostile-x5chain.cose"
    path.write_bytes(
        cbor2.dumps(cbor2.CBORTag(18, [protected, {33: [signer, hostile]}, payload, signature]))
    )
    result = verify(setup, setup.genuine, path)
    assert result.code == 2, result.out + result.err
    assert "trust list refused: an x5chain entry is not a DER certificate" in result.out
    assert result.err == ""
