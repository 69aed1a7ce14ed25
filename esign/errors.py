"""One exception hierarchy for esign: every error carries its one-line human message and exit code.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never prints a traceback for a
user mistake. Exit codes 0-2 are verdicts (see ``verify``); errors use 3 and above.
"""

from __future__ import annotations


class EsignError(Exception):
    """Base class. ``str(err)`` is a single line meant for a person."""

    exit_code: int = 3

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(EsignError):
    """The caller asked for something inconsistent (bad option combination, unknown level)."""

    exit_code = 3


class InputError(EsignError):
    """An input file is missing, unreadable, not a PDF, truncated or encrypted."""

    exit_code = 4


class KeySourceError(EsignError):
    """A key source could not be opened: wrong password, missing key, key/certificate mismatch."""

    exit_code = 5


class CertificateRefused(EsignError):
    """The signing certificate is expired, not yet valid, revoked or otherwise unfit to sign."""

    exit_code = 6


class ServiceError(EsignError):
    """A network service (TSA, OCSP, CRL) could not be reached or answered badly."""

    exit_code = 7


class SigningError(EsignError):
    """Signing failed for a reason not covered above."""

    exit_code = 8


class RegistryError(EsignError):
    """The registry of issued documents refused or failed: unknown or duplicate id, a status change
    that is no longer possible, or a database that cannot be opened."""

    exit_code = 9


__all__ = [
    "CertificateRefused",
    "EsignError",
    "InputError",
    "KeySourceError",
    "RegistryError",
    "ServiceError",
    "SigningError",
    "UsageError",
]
