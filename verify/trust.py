"""Trust anchors and fetch allowlist: explicit configuration, never the operating system's store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from asn1crypto import x509

from esign.certfiles import CERT_SUFFIXES, load_cert_paths
from esign.errors import InputError, UsageError


@dataclass(frozen=True)
class TrustConfig:
    """Who we trust and where we may fetch revocation data from."""

    anchors: tuple[x509.Certificate, ...]
    fetch_allow: tuple[str, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    """Published CA certificates used to build paths; known, not trusted."""
    seal_certs: tuple[x509.Certificate, ...] = ()
    """Published agency seal certificates, looked up by a QR seal's key id."""
    source: str = ""

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[Path],
        fetch_allow: Sequence[str] = (),
        intermediates: Sequence[Path] = (),
        seal_certs: Sequence[Path] = (),
    ) -> TrustConfig:
        """Anchors from certificate files and folders of them (PEM or DER)."""
        anchors = load_cert_paths(paths)
        if not anchors:
            raise UsageError("no trust anchors configured: give --trust FILE_OR_DIR")
        return cls(
            anchors=anchors,
            fetch_allow=tuple(fetch_allow),
            intermediates=load_cert_paths(intermediates),
            seal_certs=load_cert_paths(seal_certs),
            source=", ".join(str(p) for p in paths),
        )

    @classmethod
    def from_toml(cls, path: Path) -> TrustConfig:
        from esign.config import read_toml, validate  # pydantic: only when a file is read

        from .trustfile import TrustFile

        if not path.is_file():
            raise InputError(f"trust configuration not found: {path}")
        return validate(TrustFile, read_toml(path), str(path)).load(path.parent)

    @classmethod
    def load(cls, paths: Sequence[Path] = ()) -> TrustConfig:
        """``--trust`` paths if given (a ``.toml`` is a full configuration), else the default."""
        if len(paths) == 1 and paths[0].suffix == ".toml":
            return cls.from_toml(paths[0])
        if paths:
            return cls.from_paths(paths)
        return cls.for_test_pki()

    @classmethod
    def for_test_pki(cls, root: Path | None = None) -> TrustConfig:
        """The built-in default: the test PKI built in the user's data folder (or
        ``$ESIGN_TEST_PKI``): its anchors, published intermediates and seal certificates, and
        revocation fetching from its own services only. Read from the built PKI, so the default
        follows wherever it was built and whatever URL it was built for."""
        from esign import testpki

        folder = root or testpki.default_dir()
        try:
            pki = testpki.TestPki.open(folder)
        except InputError as e:
            raise InputError(
                f"no trust anchors configured (test PKI not found in {folder}): give --trust "
                "FILE_OR_DIR (or a trust.toml), or build the test PKI with `esign pki build`"
            ) from e
        config = cls.from_paths(
            [pki.trust_dir],
            fetch_allow=[pki.url + "/"],
            intermediates=[pki.intermediates_dir],
            seal_certs=[pki.seals_dir],
        )
        return replace(config, source=f"test PKI in {folder}")


__all__ = ["CERT_SUFFIXES", "TrustConfig", "load_cert_paths"]
