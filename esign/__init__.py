"""esign: issue PAdES-signed PDF certificates for Mongolian e-government.

The public API, imported lazily so that ``import esign`` (and the CLI) stays cheap:

- keys: :func:`load_key`, :func:`read_secret`
- signing: :class:`DocumentSigner`, :class:`SignOptions`, :class:`PadesLevel`, :func:`sign_pdf`
- certificates: :func:`load_template`, :func:`load_data`, :class:`CertificateIssuer`,
  :func:`run_batch`
- QR seals: :class:`SealSigner`, :class:`SealClaims`
- registry: :func:`open_registry`
- errors: :class:`EsignError` and its subclasses in :mod:`esign.errors`
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "load_key": "keysource",
    "read_secret": "keysource",
    "DocumentSigner": "pades",
    "SignOptions": "pades",
    "PadesLevel": "pades",
    "sign_pdf": "pades",
    "load_template": "template",
    "load_data": "template",
    "CertificateIssuer": "issue",
    "run_batch": "batch",
    "SealSigner": "seal",
    "SealClaims": "seal",
    "open_registry": "registry",
    "EsignError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'esign' has no attribute {name!r}")
    return getattr(import_module(f"esign.{module}"), name)
