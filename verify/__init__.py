"""verify: validate signed PDFs and QR seals against the state trust anchors."""

from .pdf import Verifier, VerifyOptions, verify_pdf
from .report import DocumentReport, Indication, SignatureReport, Signer, Text
from .trust import TrustConfig

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
