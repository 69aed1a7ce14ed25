"""A per-run memo of certificate path validations, so a batch of one agency's documents validates
the agency's path (with its OCSP responses and CRLs: the responder's and CRL issuer's own paths,
their signatures) once instead of once per document (issue 13).

A validation is reused only when everything it reads is the same, compared as content, never by
name: the DER (its SHA-256) of every certificate of the path and of the trust anchor, of every
certificate, OCSP response and CRL the validation context holds, the validation time, best
signature time, point-in-time flag and time tolerance, the revocation policy, and the very
policy objects (trust manager, algorithm policy) of the verifier that owns the cache. Contexts
that may fetch are never served from the cache (a fetch's outcome is not content we hold), and
only successful validations are kept: a failure is validated again, so its error and log lines
are the document's own.

What a validation leaves in its context (the certificates it recorded as validated, the
qualified policies of the path, soft-fail exceptions) is replayed on a hit, so pyHanko sees the
same context state as after a real validation.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyhanko_certvalidator
from asn1crypto import x509
from pyhanko_certvalidator.authority import AuthorityWithCert, TrustQualifiers
from pyhanko_certvalidator.context import ValidationContext
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator

MAX_ENTRIES = 512
"""Distinct (path, revocation data, time) combinations kept; the least recently used goes."""


@dataclass(frozen=True)
class _Outcome:
    leaf: Any
    qualified_policies: Any
    recorded: tuple[tuple[bytes, ValidationPath], ...]
    soft_fails: tuple[Exception, ...]


class PathCache:
    """Successful path validations of one verifier, keyed by content and validation time."""

    def __init__(self, owner_policies: tuple[object, ...], max_entries: int = MAX_ENTRIES) -> None:
        self._owner = owner_policies
        self._max = max_entries
        self._entries: OrderedDict[bytes, _Outcome] = OrderedDict()
        self._digests: dict[int, tuple[Any, bytes]] = {}
        self._reprs: dict[int, tuple[object, bytes]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, vc: ValidationContext, path: ValidationPath, parameters: object) -> bytes | None:
        """The content key of validating ``path`` in ``vc``, or None when it must not be cached."""
        if vc.fetching_allowed or not isinstance(path.leaf, x509.Certificate):
            return None
        trust_manager = vc.path_builder.trust_manager
        if not any(trust_manager is p for p in self._owner):
            return None
        if not any(vc.algorithm_policy is p for p in self._owner):
            return None
        if type(vc.sig_validator) is not DefaultSignatureValidator:
            return None
        revinfo = vc.revinfo_manager
        digest = hashlib.sha256()

        def put(data: bytes) -> None:
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)

        anchor = path.trust_anchor.authority
        if not isinstance(anchor, AuthorityWithCert):
            return None
        put(b"anchor")
        put(anchor.certificate.sha256)  # SHA-256 of the DER, kept on the (shared) object
        put(self._repr(path.trust_anchor.trust_qualifiers))
        put(b"path")
        for i in range(1, path.pkix_len + 1):
            put(path[i].sha256)
        put(b"params")
        put(repr(parameters).encode())
        put(repr(vc.timing_params).encode())
        put(self._repr(vc.revinfo_policy))
        put(repr(vc.acceptable_ac_targets).encode())
        put(repr(sorted(revinfo._assertions.items())).encode())
        put(b"certs")
        for cert in vc.certificate_registry:
            put(cert.sha256)
        put(b"ocsps")
        for ocsp in revinfo._ocsps:
            put(self._digest(ocsp.ocsp_response_data))
        put(b"crls")
        for crl in revinfo._crls:
            put(self._digest(crl.crl_data))
        return digest.digest()

    def _digest(self, obj: Any) -> bytes:
        """SHA-256 of an OCSP response's or CRL's DER, once per object: a batch's documents share
        the parsed objects (Verifier._shared), and re-encoding a CRL whose entries were read
        walks every entry. The object is held, so its id is not reused while remembered."""
        found = self._digests.get(id(obj))
        if found is not None and found[0] is obj:
            return found[1]
        value = hashlib.sha256(obj.dump()).digest()
        if len(self._digests) >= self._max:
            self._digests.clear()
        self._digests[id(obj)] = (obj, value)
        return value

    def _repr(self, obj: object) -> bytes:
        """repr() of a trust anchor's qualifiers or a revocation policy, once per object: the
        dataclass repr walked its nested policies and enums on every document (4 % of the AdES
        time left after verify/certcache.py). Only for those frozen types, and the qualifiers
        only without PKIX parameters, whose repr cannot change while the object lives."""
        memo = type(obj) is CertRevTrustPolicy or (
            type(obj) is TrustQualifiers and obj.standard_parameters is None
        )
        if not memo:
            return repr(obj).encode()
        found = self._reprs.get(id(obj))
        if found is not None and found[0] is obj:
            return found[1]
        value = repr(obj).encode()
        if len(self._reprs) >= self._max:
            self._reprs.clear()
        self._reprs[id(obj)] = (obj, value)
        return value

    def get(self, key: bytes) -> _Outcome | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: bytes, outcome: _Outcome) -> None:
        self._entries[key] = outcome
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


_CURRENT: contextvars.ContextVar[PathCache | None] = contextvars.ContextVar(
    "esign_path_cache", default=None
)


@contextlib.contextmanager
def using(cache: PathCache | None) -> Iterator[None]:
    """Path validations started meanwhile (in this context) may be served from ``cache``."""
    token = _CURRENT.set(cache)
    try:
        yield
    finally:
        _CURRENT.reset(token)


_Validate = Callable[[ValidationContext, ValidationPath, Any], Awaitable[Any]]


def _memoised(original: _Validate) -> _Validate:
    async def validate(
        validation_context: ValidationContext,
        path: ValidationPath,
        parameters: Any = None,
    ) -> Any:
        cache = _CURRENT.get()
        key = cache.key(validation_context, path, parameters) if cache is not None else None
        if cache is None or key is None:
            return await original(validation_context, path, parameters)
        found = cache.get(key)
        if found is not None:
            cache.hits += 1
            validation_context._validate_map.update(found.recorded)
            validation_context._soft_fail_exceptions.extend(found.soft_fails)
            path._set_qualified_policies(found.qualified_policies)
            return path.leaf
        cache.misses += 1
        before = dict(validation_context._validate_map)
        soft_before = len(validation_context._soft_fail_exceptions)
        result = await original(validation_context, path, parameters)
        if result is not path.leaf:
            return result
        recorded = tuple(
            (k, v) for k, v in validation_context._validate_map.items() if before.get(k) is not v
        )
        cache.put(
            key,
            _Outcome(
                leaf=result,
                qualified_policies=path.qualified_policies,
                recorded=recorded,
                soft_fails=tuple(validation_context._soft_fail_exceptions[soft_before:]),
            ),
        )
        return result

    validate.__wrapped__ = original  # type: ignore[attr-defined]
    return validate


def install() -> None:
    """Route pyhanko-certvalidator's find_valid_path (which pyHanko's CMS, timestamp and AdES
    validation use) through the memo; a no-op outside :func:`using`. Idempotent."""
    current = getattr(pyhanko_certvalidator, "async_validate_path")  # noqa: B009 (not exported)
    if getattr(current, "__wrapped__", None) is None:
        setattr(pyhanko_certvalidator, "async_validate_path", _memoised(current))  # noqa: B010
