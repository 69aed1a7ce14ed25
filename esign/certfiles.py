"""Certificates from files and folders (PEM or DER), with one-line errors.

One loader for every place a user names certificates: --cert/--chain and --trust when signing,
trust anchors, published intermediates and seal certificates when verifying.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asn1crypto import x509
from pyhanko.keys import load_certs_from_pemder

from .errors import InputError

CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


def load_cert_paths(paths: Sequence[Path]) -> tuple[x509.Certificate, ...]:
    """Certificates from files, and from the certificate files of folders (sorted by name)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(f for f in sorted(p.iterdir()) if f.suffix.lower() in CERT_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"certificate path not found: {p}")
    certs: list[x509.Certificate] = []
    for f in files:
        try:
            certs.extend(load_certs_from_pemder([str(f)]))
        except (ValueError, TypeError, OSError) as e:
            raise InputError(f"{f} is not a readable certificate file") from e
    return tuple(certs)
