"""X.509 name comparison prepared once per distinct attribute, not once per parsed copy.

Profiling batch verification (cProfile, 20 B-LT files): asn1crypto's RFC 4518 string
preparation of name attributes (``NameTypeAndValue.prepped_value``, ~0.5 ms each, used by every
``Name.__eq__`` and ``Name.hashable``) was 21 % of the time. asn1crypto caches it on each
object, but every file, CMS structure and DSS parses fresh copies of the same agency names.
The prepared value is a function of the attribute's encoding alone, so it is kept here keyed
by those bytes (never by a name's text), in a bounded table: the result is what asn1crypto
computes, computed once. Installed by :func:`install` (idempotent).

Name equality (RFC 5280 7.1) is kept the same way, keyed by both names' encodings: after the
path cache (verify/pathcache.py), pyHanko matching each CMS certificate's issuer and serial
against the signer identifier (``Name.__eq__``, ~0.3 ms a pair) was 7 % of a B-LT batch.

``Name.hashable`` (the key pyhanko-certvalidator files and finds issuers and trust anchors by)
is rebuilt by asn1crypto from every attribute on every call (~10 us), about 20 times a B-LT
document in path building and registry filling: it is kept the same way, keyed by the name's
encoding (~2 us to read off a parsed name).
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509

LIMIT = 8192
"""Distinct attributes remembered; the table starts over when full (a batch meets a few dozen)."""

_prepared: dict[bytes, str] = {}
_original = x509.NameTypeAndValue.prepped_value
_equal: dict[tuple[bytes, bytes], bool] = {}
_original_eq = x509.Name.__eq__
_hashables: dict[bytes, str] = {}
_original_hashable = x509.Name.hashable


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


def _name_eq(self: x509.Name, other: object) -> bool:
    if not isinstance(other, x509.Name):
        return False
    key = (self.dump(), other.dump())
    equal = _equal.get(key)
    if equal is None:
        equal = bool(_original_eq(self, other))
        if len(_equal) >= LIMIT:
            _equal.clear()
        _equal[key] = equal
    return equal


def _hashable(self: x509.Name) -> str:
    key = self.dump()
    value = _hashables.get(key)
    if value is None:
        value = _original_hashable.fget(self)
        if len(_hashables) >= LIMIT:
            _hashables.clear()
        _hashables[key] = value
    return value


def install() -> None:
    x509.NameTypeAndValue.prepped_value = property(_prepped_value)  # type: ignore[method-assign,assignment]
    x509.Name.__eq__ = _name_eq  # type: ignore[method-assign,assignment]
    x509.Name.hashable = property(_hashable)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """asn1crypto as shipped, for benchmarks that compare with pyHanko used plainly."""
    x509.NameTypeAndValue.prepped_value = _original  # type: ignore[method-assign]
    x509.Name.__eq__ = _original_eq  # type: ignore[method-assign]
    x509.Name.hashable = _original_hashable  # type: ignore[method-assign]


def original() -> Any:
    """asn1crypto's own property, for benchmarks and tests that compare the two."""
    return _original
