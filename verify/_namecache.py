"""X.509 name comparison prepared once per distinct attribute, not once per parsed copy.

Profiling batch verification (cProfile, 20 B-LT files): asn1crypto's RFC 4518 string
preparation of name attributes (``NameTypeAndValue.prepped_value``, ~0.5 ms each, used by every
``Name.__eq__`` and ``Name.hashable``) was 21 % of the time. asn1crypto caches it on each
object, but every file, CMS structure and DSS parses fresh copies of the same agency names.
The prepared value is a function of the attribute's encoding alone, so it is kept here keyed
by those bytes (never by a name's text), in a bounded table: the result is what asn1crypto
computes, computed once. Installed by :func:`install` (idempotent).
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509

LIMIT = 8192
"""Distinct attributes remembered; the table starts over when full (a batch meets a few dozen)."""

_prepared: dict[bytes, str] = {}
_original = x509.NameTypeAndValue.prepped_value


def _prepped_value(self: Any) -> str:
    if self._prepped is None:
        key = self.dump()  # type OID and value, as encoded
        value = _prepared.get(key)
        if value is None:
            value = self._ldap_string_prep(self["value"].native)
            if len(_prepared) >= LIMIT:
                _prepared.clear()
            _prepared[key] = value
        self._prepped = value
    return self._prepped  # type: ignore[no-any-return]


def install() -> None:
    x509.NameTypeAndValue.prepped_value = property(_prepped_value)  # type: ignore[method-assign,assignment]


def original() -> Any:
    """asn1crypto's own property, for benchmarks and tests that compare the two."""
    return _original
