"""The path cache's key (verify/pathcache.py) reads the reprs of the trust anchor's qualifiers and
of the revocation policy once per object: each equal to repr() itself, and distinct policies keep
distinct keys."""

from __future__ import annotations

from datetime import timedelta

from pyhanko_certvalidator.authority import TrustQualifiers
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    PKIXValidationParams,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from verify.pathcache import PathCache


def test_remembered_reprs_are_the_objects_own() -> None:
    cache = PathCache(())
    strict = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    lax = RevocationCheckingRule.NO_CHECK
    policies = [
        CertRevTrustPolicy(RevocationCheckingPolicy(strict, strict)),
        CertRevTrustPolicy(RevocationCheckingPolicy(strict, lax)),
        CertRevTrustPolicy(RevocationCheckingPolicy(strict, strict), freshness=timedelta(hours=1)),
        TrustQualifiers(),
        TrustQualifiers(max_path_length=1),
    ]
    for _ in range(2):
        seen = [cache._repr(p) for p in policies]
        assert seen == [repr(p).encode() for p in policies]
        assert len(set(seen)) == len(policies)
    assert len(cache._reprs) == len(policies)
    with_params = TrustQualifiers(standard_parameters=PKIXValidationParams())
    assert cache._repr(with_params) == repr(with_params).encode()
    assert cache._repr(None) == b"None"
    assert len(cache._reprs) == len(policies), "only the frozen, parameter-free ones are kept"
