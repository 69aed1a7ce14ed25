"""Key sources: PKCS#12 files, PEM keys with a certificate, and PKCS#11 tokens (RFC 7512 URIs).

Every source yields a pyHanko ``Signer``. File keys are parsed once into a pyca/cryptography key
object and kept: pyHanko's ``SimpleSigner`` re-parses the DER key for every signature, which for
RSA-3072 costs more than the signature itself (OpenSSL re-validates the key on load).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp, x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.attributes import (
    CMSAttributeProvider,
    SignedAttributeProviderSpec,
    SigningCertificateV2Provider,
)
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from .certfiles import load_cert_paths
from .errors import InputError, KeySourceError, UsageError

PASSWORD_ENV = "ESIGN_PASSWORD"
PKCS11_MODULE_ENV = "ESIGN_PKCS11_MODULE"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class _CachedSigningCertificateV2(SigningCertificateV2Provider):
    """signing-certificate-v2 (RFC 5035) built once: asn1crypto re-encodes the issuer name on
    every dump, which profiling showed to be a quarter of a B-B signature's time."""

    def __init__(self, signing_cert: x509.Certificate) -> None:
        super().__init__(signing_cert)
        self._der = as_signing_certificate_v2(signing_cert).dump()

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self._der)


class _SpecWithCachedCertAttr(SignedAttributeProviderSpec):
    def __init__(self, inner: SignedAttributeProviderSpec, cached: CMSAttributeProvider) -> None:
        self.inner = inner
        self.cached = cached

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterator[CMSAttributeProvider]:
        for provider in self.inner.signed_attr_providers(data_digest, digest_algorithm):
            is_cert_attr = isinstance(provider, SigningCertificateV2Provider)
            yield self.cached if is_cert_attr else provider


class CachedKeySigner(SimpleSigner):
    """A ``SimpleSigner`` that signs with a pre-parsed pyca/cryptography key and reuses the
    per-key parts of the signed attributes."""

    def __init__(
        self,
        signing_cert: x509.Certificate,
        private_key: PrivateKey,
        cert_registry: SimpleCertificateStore,
    ) -> None:
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        super().__init__(
            signing_cert=signing_cert,
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=cert_registry,
        )
        self._private_key = private_key
        self._cert_attr = _CachedSigningCertificateV2(signing_cert)

    def _signed_attr_provider_spec(self, *args: Any, **kwargs: Any) -> SignedAttributeProviderSpec:
        inner = super()._signed_attr_provider_spec(*args, **kwargs)
        return _SpecWithCachedCertAttr(inner, self._cert_attr)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism_spec = self.get_signature_mechanism_for_digest(digest_algorithm)
        mechanism = mechanism_spec.signature_algo
        key = self._private_key
        if isinstance(key, rsa.RSAPrivateKey):
            if mechanism == "rsassa_pss":
                pss, hash_algo = process_pss_params(mechanism_spec["parameters"])
                return key.sign(data, pss, hash_algo)
            return key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))


@dataclass
class LoadedKey:
    """An opened key source. ``close()`` ends a PKCS#11 session; file keys need no cleanup."""

    signer: Signer
    signing_cert: x509.Certificate
    chain: list[x509.Certificate]
    _closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        while self._closers:
            self._closers.pop().close()

    def __enter__(self) -> LoadedKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_secret(passfile: Path | None) -> bytes | None:
    """The password or PIN: from ``passfile`` (first line) or ``$ESIGN_PASSWORD``; never argv."""
    if passfile is not None:
        try:
            lines = passfile.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise InputError(f"cannot read password file {passfile}: {e.strerror}") from e
        return (lines[0] if lines else "").encode("utf-8")
    env = os.environ.get(PASSWORD_ENV)
    return env.encode("utf-8") if env is not None else None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise InputError(f"{what} not found: {path}") from e
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror}") from e


def _load_certs(paths: Iterable[Path]) -> list[x509.Certificate]:
    return list(load_cert_paths(list(paths)))


def _to_asn1(cert: Any) -> x509.Certificate:
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _check_pair(key: PrivateKey, cert: x509.Certificate, source: str) -> None:
    pub = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if pub != cert.public_key.dump():
        raise KeySourceError(f"the private key in {source} does not match the certificate")


def _supported(key: object, source: str) -> PrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeySourceError(f"{source}: only RSA and EC keys are supported")
    return key


def _signer(key: PrivateKey, cert: x509.Certificate, chain: list[x509.Certificate]) -> LoadedKey:
    # pyHanko embeds the signing certificate itself; the store holds the rest of the chain.
    store = SimpleCertificateStore.from_certs(chain)
    return LoadedKey(CachedKeySigner(cert, key, store), cert, chain)


def load_pkcs12(path: Path, password: bytes | None, extra: Sequence[Path] = ()) -> LoadedKey:
    data = _read(path, "key file")
    try:
        key, cert, others = pkcs12.load_key_and_certificates(data, password)
    except ValueError as e:
        if password is None:
            raise KeySourceError(
                f"{path} needs a password: use --passfile FILE or set {PASSWORD_ENV}"
            ) from e
        raise KeySourceError(f"wrong password for {path}, or not a PKCS#12 file") from e
    except UnsupportedAlgorithm as e:
        raise KeySourceError(f"{path}: unsupported PKCS#12 encryption") from e
    if key is None or cert is None:
        raise KeySourceError(f"{path} holds no private key with its certificate")
    pkey = _supported(key, str(path))
    acert = _to_asn1(cert)
    _check_pair(pkey, acert, str(path))
    chain = [_to_asn1(c) for c in others] + _load_certs(extra)
    return _signer(pkey, acert, chain)


def load_pem(
    path: Path, cert_path: Path, password: bytes | None, extra: Sequence[Path] = ()
) -> LoadedKey:
    data = _read(path, "key file")
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError as e:
        if password is None:
            raise KeySourceError(
                f"{path} is encrypted: use --passfile FILE or set {PASSWORD_ENV}"
            ) from e
        raise KeySourceError(f"{path} is not encrypted; drop the password") from e
    except ValueError as e:
        raise KeySourceError(f"cannot read private key {path}: wrong password or bad key") from e
    except UnsupportedAlgorithm as e:
        raise KeySourceError(f"{path}: unsupported key type") from e
    pkey = _supported(key, str(path))
    certs = _load_certs([cert_path])
    if not certs:
        raise InputError(f"{cert_path} holds no certificate")
    # A --cert file may carry the chain after the leaf.
    _check_pair(pkey, certs[0], str(path))
    return _signer(pkey, certs[0], certs[1:] + _load_certs(extra))


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 ``pkcs11:`` URI that select a token and a key."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    serial: str | None = None
    module_path: str | None = None

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not uri.startswith("pkcs11:"):
            raise UsageError(f"not a PKCS#11 URI: {uri}")
        path, _, query = uri[len("pkcs11:") :].partition("?")
        attrs: dict[str, str] = {}
        for part in (p for p in path.split(";") if p):
            name, sep, value = part.partition("=")
            if not sep:
                raise UsageError(f"malformed PKCS#11 URI attribute: {part}")
            attrs[name] = value
        qattrs = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if "pin-value" in qattrs or "pin-source" in qattrs:
            raise UsageError(
                f"PINs do not belong in the PKCS#11 URI: use --passfile FILE or {PASSWORD_ENV}"
            )
        unknown = set(attrs) - {"token", "object", "id", "serial", "type", "manufacturer", "model"}
        if unknown:
            raise UsageError(f"unsupported PKCS#11 URI attribute: {', '.join(sorted(unknown))}")
        raw_id = attrs.get("id")
        return cls(
            token=unquote(attrs["token"]) if "token" in attrs else None,
            object=unquote(attrs["object"]) if "object" in attrs else None,
            id=unquote(raw_id, encoding="latin-1").encode("latin-1") if raw_id else None,
            serial=unquote(attrs["serial"]) if "serial" in attrs else None,
            module_path=unquote(qattrs["module-path"]) if "module-path" in qattrs else None,
        )


def load_pkcs11(
    uri: str, module: str | None, pin: bytes | None, extra: Sequence[Path] = ()
) -> LoadedKey:
    from pkcs11 import PKCS11Error
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

    parsed = Pkcs11Uri.parse(uri)
    lib = module or parsed.module_path or os.environ.get(PKCS11_MODULE_ENV)
    if not lib:
        raise UsageError(f"PKCS#11 key needs a module: --pkcs11-module or {PKCS11_MODULE_ENV}")
    if not Path(lib).is_file():
        raise InputError(f"PKCS#11 module not found: {lib}")
    if parsed.object is None and parsed.id is None:
        raise UsageError("PKCS#11 URI must name the key with object= or id=")
    criteria = TokenCriteria(
        label=parsed.token, serial=bytes.fromhex(parsed.serial) if parsed.serial else None
    )
    try:
        session = open_pkcs11_session(
            lib, token_criteria=criteria, user_pin=pin.decode() if pin is not None else None
        )
    except PKCS11Error as e:
        name = type(e).__name__
        if "Pin" in name:
            raise KeySourceError(f"PKCS#11 login failed ({name}): wrong PIN?") from e
        raise KeySourceError(f"cannot open PKCS#11 token {parsed.token!r}: {name}") from e
    except Exception as e:  # pyHanko raises its own error types for "no such token"
        raise KeySourceError(f"cannot open PKCS#11 token {parsed.token!r}: {e}") from e
    chain = _load_certs(extra)
    try:
        signer = PKCS11Signer(
            session,
            cert_label=parsed.object,
            key_label=parsed.object,
            key_id=parsed.id,
            cert_id=parsed.id,
            ca_chain=chain,
        )
        cert = signer.signing_cert
        if cert is not None and cert.public_key.algorithm == "ec":
            # Hash here, sign the digest with plain CKM_ECDSA: every EC token has it, and
            # some (SoftHSM 2.6) lack CKM_ECDSA_SHA256 (MechanismInvalid at the first seal).
            signer = PKCS11Signer(
                session, cert_label=parsed.object, key_label=parsed.object, key_id=parsed.id,
                cert_id=parsed.id, ca_chain=chain, use_raw_mechanism=True,
            )  # fmt: skip
    except Exception as e:
        session.close()
        raise KeySourceError(f"no usable key and certificate for {uri} on the token: {e}") from e
    if cert is None:
        session.close()
        raise KeySourceError(f"no certificate for {uri} on the token")
    return LoadedKey(signer, cert, chain, [session])


def load_key(
    key: str,
    *,
    cert: Path | None = None,
    chain: Sequence[Path] = (),
    password: bytes | None = None,
    pkcs11_module: str | None = None,
) -> LoadedKey:
    """Open KEY: a PKCS#12 file, a PEM private key (with ``cert``) or a ``pkcs11:`` URI."""
    if key.startswith("pkcs11:"):
        return load_pkcs11(key, pkcs11_module, password, chain)
    path = Path(key)
    head = _read(path, "key file")[:64]
    if b"-----BEGIN" in head:
        if cert is None:
            raise UsageError(f"{path} is a PEM key: give its certificate with --cert")
        return load_pem(path, cert, password, chain)
    if head[:1] != b"\x30":
        raise KeySourceError(f"{path} is neither a PKCS#12 file nor a PEM private key")
    return load_pkcs12(path, password, chain)


__all__ = [
    "CachedKeySigner",
    "LoadedKey",
    "Pkcs11Uri",
    "load_key",
    "read_secret",
]
