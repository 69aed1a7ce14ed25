"""verify: validate signed PDFs and QR seals against the state trust anchors."""

from . import _fasthex
from .pdf import Verifier, VerifyOptions, verify_pdf
from .report import DocumentReport, Indication, SignatureReport, Signer, Text
from .trust import TrustConfig

_fasthex.install()  # profiled hot spot: pyHanko's byte-at-a-time /Contents reader

__all__ = [
    "DocumentReport",
    "Indication",
    "SignatureReport",
    "Signer",
    "Text",
    "TrustConfig",
    "Verifier",
    "VerifyOptions",
    "verify_pdf",
]
