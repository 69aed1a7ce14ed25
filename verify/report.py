"""The verification report model: one model, rendered as text (mn/en), JSON and HTML.

Vocabulary of ETSI EN 319 102-1: an indication (TOTAL-PASSED, TOTAL-FAILED, INDETERMINATE) and a
sub-indication naming the reason. A document without any signature has no signature to judge;
its report says NO-SIGNATURE, a document-level status outside the ETSI vocabulary.
``SCHEMA_VERSION`` changes whenever the JSON shape changes.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

SCHEMA_VERSION = "esign.verify.report/1"


class Indication(enum.Enum):
    TOTAL_PASSED = "TOTAL-PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL-FAILED"
    NO_SIGNATURE = "NO-SIGNATURE"
    """Documents only: the file is a PDF without any signature (nothing was judged)."""

    @property
    def severity(self) -> int:
        return {"TOTAL-PASSED": 0, "INDETERMINATE": 1, "NO-SIGNATURE": 2, "TOTAL-FAILED": 3}[
            self.value
        ]

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed, 2 indeterminate, 10 no signature: the CLI's verdict exit codes
        (3-9 are errors)."""
        return {"TOTAL-PASSED": 0, "TOTAL-FAILED": 1, "INDETERMINATE": 2, "NO-SIGNATURE": 10}[
            self.value
        ]


def worst(indications: list[Indication]) -> Indication:
    return max(indications, key=lambda i: i.severity, default=Indication.TOTAL_PASSED)


@dataclass(frozen=True)
class Signer:
    """Who signed, read from the signing certificate's subject."""

    name: str | None
    organisation: str | None
    register_number: str | None
    """Citizen register number (serialNumber) or organisation identifier."""
    issuer: str
    certificate_serial: str
    subject: str


@dataclass(frozen=True)
class Text:
    """A message in both languages; Mongolian first."""

    mn: str
    en: str

    def get(self, lang: str) -> str:
        return self.mn if lang == "mn" else self.en


@dataclass(frozen=True)
class SignatureReport:
    """The verdict for one signature or document timestamp of a PDF."""

    field_name: str
    kind: str
    """``signature``, ``certification`` or ``document-timestamp``."""
    indication: Indication
    subindication: str | None
    explanation: Text
    signer: Signer | None = None
    claimed_signing_time: datetime | None = None
    timestamp_time: datetime | None = None
    pades_level: str | None = None
    coverage: str | None = None
    modification_level: str | None = None
    docmdp: str | None = None
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentReport:
    """The verdict for one file: the worst of its signatures, or a document-level failure."""

    file: str
    indication: Indication
    subindication: str | None
    explanation: Text
    signatures: tuple[SignatureReport, ...] = ()
    validation_time: datetime | None = None
    revocation_mode: str = "online"
    schema: str = field(default=SCHEMA_VERSION)

    @property
    def exit_code(self) -> int:
        return self.indication.exit_code

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(asdict(self))
        return result


def jsonable(value: Any) -> Any:
    """Plain JSON values from report dataclasses: enums by value, times ISO 8601, bytes hex."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value
