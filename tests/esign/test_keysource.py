"""Key sources: a PKI we did not generate (plain PEM key, certificate and chain), PKCS#12, and a
SoftHSM2 token initialised by the test itself."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from esign import testpki
from esign.keysource import Pkcs11Uri
from esign.services import PkiServices
from tests.helpers import pdfsig, run_esign

SOFTHSM_MODULE = next(
    (
        p
        for p in (
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        )
        if Path(p).exists()
    ),
    "/usr/lib/softhsm/libsofthsm2.so",
)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _foreign_pki(
    tmp: Path, leaf_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> dict[str, Path]:
    """A two-level PKI built directly with pyca/cryptography: nothing from certomancer."""
    now = dt.datetime.now(dt.UTC)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("Foreign Root"))
        .issuer_name(_name("Foreign Root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Foreign Signer"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    files = {"key": tmp / "leaf.key", "cert": tmp / "leaf.pem", "chain": tmp / "root.pem"}
    files["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files["chain"].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return files


@pytest.mark.parametrize(
    "leaf_key",
    [
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), id="rsa"
        ),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
    ],
)
def test_sign_with_a_foreign_pki(tmp_path: Path, sample_pdf: Path, leaf_key: object) -> None:
    files = _foreign_pki(tmp_path, leaf_key())  # type: ignore[operator]
    out = tmp_path / "out.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", str(files["key"]),
        "--cert", str(files["cert"]), "--chain", str(files["chain"]),
    )  # fmt: skip
    assert r.code == 0, r.err
    result = pdfsig(out)
    assert result.valid_signatures == 1, result.text
    assert "Foreign Signer" in result.text


def test_pkcs11_uri_parsing() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=My%20Token;object=seal;id=%01%02")
    assert uri.token == "My Token" and uri.object == "seal" and uri.id == b"\x01\x02"


def test_pkcs11_uri_refuses_pin_in_uri() -> None:
    from esign.errors import UsageError

    with pytest.raises(UsageError, match="PINs do not belong"):
        Pkcs11Uri.parse("pkcs11:token=t;object=o?pin-value=1234")


@pytest.fixture()
def softhsm(tmp_path: Path, pki: testpki.TestPki) -> dict[str, str]:
    """A SoftHSM2 token holding the test PKI's RSA official key and certificate."""
    for tool in ("softhsm2-util", "pkcs11-tool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (run `make system-deps`)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def run(*cmd: str) -> None:
        subprocess.run(cmd, env=env, check=True, capture_output=True)

    run("softhsm2-util", "--init-token", "--free", "--label", "esign-test",
        "--so-pin", "87654321", "--pin", "1234")  # fmt: skip
    run("softhsm2-util", "--import", str(pki.key("mn-rsa", "official")), "--token", "esign-test",
        "--label", "official", "--id", "01", "--pin", "1234")  # fmt: skip
    der = tmp_path / "official.der"
    subprocess.run(
        ["openssl", "x509", "-in", str(pki.cert("mn-rsa", "official")), "-outform", "DER",
         "-out", str(der)], check=True)  # fmt: skip
    run("pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "esign-test", "--login",
        "--pin", "1234", "--write-object", str(der), "--type", "cert", "--label", "official",
        "--id", "01")  # fmt: skip
    return {"SOFTHSM2_CONF": str(conf)}


def test_sign_with_pkcs11_token(
    softhsm: dict[str, str], pki: testpki.TestPki, services: PkiServices, tmp_path: Path,
    sample_pdf: Path, nssdb: str,
) -> None:  # fmt: skip
    out = tmp_path / "hsm.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", "pkcs11:token=esign-test;object=official",
        "--pkcs11-module", SOFTHSM_MODULE, "--chain", str(pki.chain("mn-rsa", "official")),
        "--level", "B-T", "--tsa", pki.tsa_url("mn-rsa"),
        env={**softhsm, "ESIGN_PASSWORD": "1234"},
    )  # fmt: skip
    assert r.code == 0, r.err
    result = pdfsig(out, nssdb)
    assert result.valid_signatures == 1, result.text
    assert "Болд Бат-Эрдэнэ" in result.text


def test_pkcs11_wrong_pin_is_one_line(
    softhsm: dict[str, str], tmp_path: Path, sample_pdf: Path
) -> None:
    out = tmp_path / "hsm.pdf"
    r = run_esign(
        "sign", str(sample_pdf), "-o", str(out), "--key", "pkcs11:token=esign-test;object=official",
        "--pkcs11-module", SOFTHSM_MODULE, env={**softhsm, "ESIGN_PASSWORD": "0000"},
    )  # fmt: skip
    assert r.code != 0
    assert r.err.count("\n") == 1 and "PIN" in r.err, r.err
    assert not out.exists()
