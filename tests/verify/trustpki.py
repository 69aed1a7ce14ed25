"""A small PKI made in the test itself (pyca/cryptography) for trust-list and key-rotation tests:
a root, an issuing CA, a trust-list signer and agency seal certificates with chosen validity, so
that seal certificates can expire, rotate and be compromised within one simulated year."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esign.trustlist import TRUST_LIST_EKU

SEAL_EKU = "2.25.187697793891391668806884730963693754825"
"""id-kp-esignQrSeal (docs/qr-seal.md, section 4)."""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        """PEM key and certificate files; returns (key, cert)."""
        folder.mkdir(parents=True, exist_ok=True)
        key = folder / f"{name}.key.pem"
        cert = folder / f"{name}.pem"
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return key, cert


def issue(
    common_name: str,
    not_before: datetime,
    not_after: datetime,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    eku: str | None = None,
    agency: str | None = None,
) -> Issued:
    """A P-256 certificate: a CA (keyCertSign) or a leaf (digitalSignature, optional EKU and
    organizationIdentifier GV:MN-<agency>), self-signed when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rotation Test"),
    ]
    if agency is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"GV:MN-{agency}"))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    subject = x509.Name(attrs)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(eku)]), critical=eku == TRUST_LIST_EKU
        )
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


@dataclass(frozen=True)
class SmallPki:
    root: Issued
    issuing: Issued
    list_signer: Issued


def small_pki(name: str = "Rotation") -> SmallPki:
    root = issue(f"{name} Root", utc("2020-01-01"), utc("2040-01-01"), ca=True)
    issuing = issue(f"{name} Issuing CA", utc("2020-01-01"), utc("2035-01-01"), root, ca=True)
    signer = issue(
        f"{name} Trust List Signer",
        utc("2025-01-01"),
        utc("2030-01-01"),
        issuing,
        eku=TRUST_LIST_EKU,
    )
    return SmallPki(root, issuing, signer)
