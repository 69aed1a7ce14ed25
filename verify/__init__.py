"""verify: validate signed PDFs and QR seals against the state trust anchors."""

from importlib import import_module
from typing import Any

from . import _fasthex, _namecache, certcache, pathcache
from .fetch import FetchPolicy
from .pdf import Verifier, VerifyOptions, verify_pdf
from .report import DocumentReport, Indication, SignatureReport, Signer, Text
from .trust import TrustConfig

_fasthex.install()  # profiled hot spot: pyHanko's byte-at-a-time /Contents reader
_namecache.install()  # profiled hot spot: RFC 4518 preparation of the same names per file
pathcache.install()  # a batch validates each distinct path and its revocation data once
certcache.install()  # and extracts each distinct certificate set of a CMS once

# QR seal checks pull in CBOR, image decoding and the registry: imported on first use, so that
# `esign verify` does not pay for them.
_LAZY = {
    "SealReport": "seal",
    "decode_seal": "seal",
    "load_seal_certs": "seal",
    "verify_seal": "seal",
    "check_seal": "sealcheck",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verify' has no attribute {name!r}")
    return getattr(import_module(f"verify.{module}"), name)


__all__ = [
    "DocumentReport",
    "FetchPolicy",
    "Indication",
    "SealReport",
    "SignatureReport",
    "Signer",
    "Text",
    "TrustConfig",
    "Verifier",
    "VerifyOptions",
    "check_seal",
    "decode_seal",
    "load_seal_certs",
    "verify_pdf",
    "verify_seal",
]
