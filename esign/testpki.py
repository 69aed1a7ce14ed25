"""Build and load the declarative test PKI in ``esign/data/test-pki.yml`` (certomancer).

``build()`` generates fresh keys (RSA-3072 and ECDSA P-256), fixes the URL prefix of the loopback
services into the certificates, and exports what signers and verifiers need: PEM certificates and
keys, PKCS#12 bundles, chains and trust anchors. Everything is test material, never production.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import x509 as asn1_x509

from .datadir import data_dir
from .errors import InputError
from .resources import test_pki_spec

if TYPE_CHECKING:
    from certomancer.registry import CertomancerConfig, PKIArchitecture

# yaml, certomancer and key generation are imported where a PKI is built or loaded: opening a
# built one (the default trust of `esign verify`) only reads its manifest (issue 13).

ARCHES: dict[str, str] = {"mn-rsa": "keys-rsa", "mn-ec": "keys-ec"}
"""Architecture label -> key folder, as in the YAML keysets."""

P12_PASSWORD = "esign-test"
DEFAULT_URL = "http://127.0.0.1:8781"
SPEC_FILE = "test-pki.yml"
MANIFEST = "pki.json"
DIR_ENV = "ESIGN_TEST_PKI"

# Certificates exported with PKCS#12 bundles (those with a signing key a user might load).
SIGNERS = ("seal", "seal-shsg", "seal-ndeg", "official", "revoked", "expired", "tsa")
AGENCY_SEALS: dict[str, str] = {"UBEG": "seal", "SHSG": "seal-shsg", "NDEG": "seal-ndeg"}
"""Agency code (a template's ``[issuer] code``) -> label of that agency's seal certificate, whose
organizationIdentifier is ``GV:MN-<code>``; a seal must be made with its own agency's key."""


def spec_path() -> Path:
    """The declarative description shipped in the package (``esign/data/test-pki.yml``)."""
    return test_pki_spec()


def default_dir() -> Path:
    """``$ESIGN_TEST_PKI`` if set, else ``test-pki`` in the user's data folder (its lock file
    beside it): state never goes into the current folder or the installed package."""
    env = os.environ.get(DIR_ENV)
    if env:
        return Path(env)
    return data_dir(create=True) / "test-pki"


@dataclass(frozen=True)
class TestPki:
    """A built test PKI on disk."""

    root: Path
    url: str

    @classmethod
    def open(cls, root: Path) -> TestPki:
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise InputError(f"{root} holds no test PKI (run `esign pki build`)")
        data = json.loads(manifest.read_text())
        return cls(root=root, url=str(data["url"]))

    def arch_dir(self, arch: str) -> Path:
        return self.root / arch

    def cert(self, arch: str, label: str) -> Path:
        return self.root / arch / "certs" / f"{label}.pem"

    def key(self, arch: str, label: str) -> Path:
        return self.root / arch / "keys" / f"{label}.key.pem"

    def p12(self, arch: str, label: str) -> Path:
        return self.root / arch / "p12" / f"{label}.p12"

    def chain(self, arch: str, label: str) -> Path:
        """Intermediate certificates up to (not including) the root."""
        return self.root / arch / "chains" / f"{label}.chain.pem"

    @property
    def password_file(self) -> Path:
        return self.root / "p12-password.txt"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    @property
    def seals_dir(self) -> Path:
        """Published QR seal certificates (the P-256 seal of each agency in ``AGENCY_SEALS``)."""
        return self.root / "seals"

    def agency_seal_p12(self, agency: str, arch: str = "mn-ec") -> Path:
        """The PKCS#12 of ``agency``'s seal (P-256 in ``mn-ec``: PDF signature and QR seal)."""
        label = AGENCY_SEALS.get(agency)
        if label is None:
            known = ", ".join(sorted(AGENCY_SEALS))
            raise InputError(f"the test PKI has no seal for agency {agency!r} (known: {known})")
        path = self.p12(arch, label)
        if not path.is_file():
            raise InputError(
                f"the test PKI in {self.root} has no seal for {agency} (built before per-agency "
                f"seals); rebuild it: esign pki build --dir {self.root} --url {self.url} --force"
            )
        return path

    @property
    def intermediates_dir(self) -> Path:
        return self.root / "intermediates"

    def tsa_url(self, arch: str = "mn-rsa") -> str:
        return f"{self.url}/{arch}/tsa/tsa"

    def config(self) -> CertomancerConfig:
        return load_config(self.root, self.url)


def _private_dir(path: Path) -> None:
    """A folder only the owner can enter: it holds private keys or PKCS#12 bundles."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret (key, PKCS#12, password) readable by the owner only, from its first byte:
    the file is created 0600, never created world-readable and narrowed afterwards."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, data)
    finally:
        os.close(fd)


def _generate_key(arch: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if arch == "mn-rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _utf8_name(name_cfg: dict[str, str], defaults: dict[str, str]) -> asn1_x509.Name:
    """Like ``Name.build`` but keeps a non-ASCII serialNumber as UTF8String.

    X.520 wants PrintableString there, which cannot hold a Cyrillic register number such as
    УБ99112233; national CAs that carry it verbatim encode it as UTF8String, as we do.
    """
    merged = {k.replace("-", "_"): v for k, v in {**defaults, **name_cfg}.items()}
    serial = merged.pop("serial_number", None)
    name = asn1_x509.Name.build(merged)
    if serial is None:
        return name
    rdns = list(name.chosen)
    rdns.append(
        asn1_x509.RelativeDistinguishedName(
            [
                asn1_x509.NameTypeAndValue(
                    {
                        "type": "serial_number",
                        "value": asn1_x509.DirectoryString(name="utf8_string", value=serial),
                    }
                )
            ]
        )
    )
    return asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns))


def load_config(root: Path, url: str) -> CertomancerConfig:
    """Load the certomancer configuration copied into ``root`` by :func:`build`."""
    import yaml
    from certomancer.registry import CertomancerConfig

    raw: dict[str, Any] = yaml.safe_load((root / SPEC_FILE).read_text(encoding="utf-8"))
    serials: dict[str, dict[str, str]] = {}
    base_arch = raw["pki-architectures"]["mn-rsa"]
    for label, ent in base_arch["entities"].items():
        if "serial-number" in ent:
            serials[label] = dict(ent)
            ent.pop("serial-number")
    cfg = CertomancerConfig(raw, key_search_dir=str(root), external_url_prefix=url)
    defaults = base_arch.get("entity-defaults", {})
    for arch in cfg.pki_archs.values():
        _patch_entities(arch, serials, defaults)
    return cfg


def _patch_entities(
    arch: PKIArchitecture, entities: dict[str, dict[str, str]], defaults: dict[str, str]
) -> None:
    # certomancer builds names with asn1crypto's Name.build (PrintableString serialNumber);
    # replace those entities before any certificate is generated from them.
    from certomancer.registry import EntityLabel

    registry = arch.entities._dict
    for label, cfg in entities.items():
        registry[EntityLabel(label)] = _utf8_name(cfg, defaults)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise builders of ``root`` across processes. The lock file lives beside the folder,
    not in it, so that ``--force`` can remove the folder while the lock is held."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def build(root: Path | None = None, url: str | None = None, *, force: bool = False) -> TestPki:
    """Generate keys and export the test PKI to ``root``, once.

    A PKI already in ``root`` is reused when ``url`` is None or the URL it was built for; one
    built for another URL, or a folder that holds no complete PKI, is an :class:`InputError`
    naming the explicit command. Nothing is deleted unless ``force`` is given. Concurrent callers
    serialise on a lock file beside ``root``.
    """
    root = (root or default_dir()).resolve()
    with _locked(root):
        return _build_locked(root, url, force)


@contextmanager
def held(root: Path | None = None) -> Iterator[TestPki]:
    """The test PKI in ``root`` (built if absent, as :func:`build` with no URL), with its lock held
    until the block ends: a run that also serves the PKI's services keeps them to itself, so a
    concurrent run waits rather than lean on services that stop under it."""
    root = (root or default_dir()).resolve()
    with _locked(root):
        yield _build_locked(root, None, False)


def _check_current(pki: TestPki) -> None:
    """Refuse a PKI built from an older description (e.g. before each agency had its own seal):
    its certificates are not what this version signs and verifies with. Never rebuilt silently."""
    try:
        built = (pki.root / SPEC_FILE).read_bytes()
    except OSError:
        built = b""
    if built != spec_path().read_bytes():
        raise InputError(
            f"the test PKI in {pki.root} was built from an older description than this esign's "
            f"(e.g. without a seal per agency); rebuild it: "
            f"esign pki build --dir {pki.root} --url {pki.url} --force"
        )


def _build_locked(root: Path, url: str | None, force: bool) -> TestPki:
    manifest = root / MANIFEST
    if not force:
        if manifest.is_file():
            existing = TestPki.open(root)
            if url is None or existing.url == url:
                _check_current(existing)
                return existing
            raise InputError(
                f"the test PKI in {root} was built for {existing.url}, not {url}; "
                f"use it as is, or rebuild it: esign pki build --dir {root} --url {url} --force"
            )
        if root.exists() and any(root.iterdir()):
            raise InputError(
                f"{root} is not empty but holds no complete test PKI; remove it, or: "
                f"esign pki build --dir {root} --force"
            )
    url = url or DEFAULT_URL
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copy(spec_path(), root / SPEC_FILE)
    import yaml

    spec = yaml.safe_load(spec_path().read_text(encoding="utf-8"))
    key_labels = list(spec["keysets"]["mn-rsa"]["keys"])
    for arch, folder in ARCHES.items():
        _private_dir(root / folder)
        for label in key_labels:
            _write_private(root / folder / f"{label}.key.pem", _generate_key(arch))
    cfg = load_config(root, url)
    pki = TestPki(root=root, url=url)
    trust = pki.trust_dir
    trust.mkdir()
    pki.intermediates_dir.mkdir()
    _write_private(pki.password_file, (P12_PASSWORD + "\n").encode())
    for arch_label, arch in cfg.pki_archs.items():
        _export_arch(pki, str(arch_label), arch, key_labels)
        shutil.copy(pki.cert(str(arch_label), "root"), trust / f"{arch_label}-root.pem")
        if arch_label == "mn-ec":
            pki.seals_dir.mkdir(exist_ok=True)
            for label in AGENCY_SEALS.values():
                shutil.copy(pki.cert("mn-ec", label), pki.seals_dir / f"mn-ec-{label}.pem")
        for ca in ("issuing", "sco"):
            shutil.copy(
                pki.cert(str(arch_label), ca), pki.intermediates_dir / f"{arch_label}-{ca}.pem"
            )
    partial = manifest.with_suffix(".tmp")  # written last and renamed: its presence means complete
    partial.write_text(
        json.dumps(
            {
                "url": url,
                "arches": list(ARCHES),
                "tsa": {a: pki.tsa_url(a) for a in ARCHES},
                "p12_password_file": pki.password_file.name,
            },
            indent=2,
        )
    )
    partial.replace(manifest)
    return pki


def _pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    from asn1crypto import pem

    return bytes(pem.armor(label, der))


def _export_arch(pki: TestPki, label: str, arch: PKIArchitecture, key_labels: list[str]) -> None:
    from certomancer.registry import CertLabel

    base = pki.arch_dir(label)
    for sub in ("certs", "chains"):
        (base / sub).mkdir(parents=True)
    for sub in ("keys", "p12"):
        _private_dir(base / sub)
    src_keys = pki.root / ARCHES[label]
    for key_label in key_labels:
        _write_private(pki.key(label, key_label), (src_keys / f"{key_label}.key.pem").read_bytes())
    cert_labels = [s.label for _, specs in arch.enumerate_certs_by_issuer() for s in specs]
    for cert_label in cert_labels:
        pki.cert(label, str(cert_label)).write_bytes(_pem(arch.get_cert(cert_label).dump()))
        chain = [c for c in arch.get_chain(cert_label) if str(c) != "root"]
        pki.chain(label, str(cert_label)).write_bytes(
            b"".join(_pem(arch.get_cert(c).dump()) for c in chain)
        )
    for signer in SIGNERS:
        _write_private(
            pki.p12(label, signer),
            arch.package_pkcs12(CertLabel(signer), password=P12_PASSWORD.encode()),
        )
