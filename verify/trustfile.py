"""The trust configuration file (``trust.toml``, or the ``[trust]`` table of the server
configuration) as a checked table. Its own module: pydantic is imported only when such a file is
read, not by every `esign verify`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from esign.config import Strict
from esign.errors import InputError

from .trust import TrustConfig


class TrustFile(Strict):
    """A trust.toml, or the ``[trust]`` table of the server configuration: certificate files
    and folders (paths relative to the file), and the revocation fetch allowlist. Unknown keys
    are errors: a misspelt ``seal_certificate`` must not leave seals unverifiable in silence."""

    anchors: list[str] = Field(min_length=1)
    intermediates: list[str] = Field(default_factory=list)
    seal_certificates: list[str] = Field(default_factory=list)
    fetch_allow: list[str] = Field(default_factory=list)

    def load(self, base: Path) -> TrustConfig:
        """The certificates named, read now; missing anchors are an error, missing optional
        folders (intermediates, seals not yet published) are skipped."""
        anchors = [base / a for a in self.anchors]
        missing = [a for a in anchors if not a.exists()]
        if missing:
            raise InputError(
                f"trust anchors {missing[0]} not found (for the test PKI run `esign pki build`)"
            )
        known = [base / a for a in self.intermediates if (base / a).exists()]
        seals = [base / a for a in self.seal_certificates if (base / a).exists()]
        return TrustConfig.from_paths(anchors, self.fetch_allow, known, seals)
