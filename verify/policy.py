"""The state crypto policy: SHA-256 or better, RSA >= 2048 bits, EC >= 256 bits; MD5, SHA-1 fail."""

from __future__ import annotations

from datetime import datetime

from asn1crypto import algos, keys
from pyhanko_certvalidator.policy_decl import AlgorithmUsageConstraint, DisallowWeakAlgorithmsPolicy

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


class StateCryptoPolicy(DisallowWeakAlgorithmsPolicy):
    def __init__(self) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            weak_hash_algos=frozenset({"md2", "md5", "sha1", "sha224"}),
            rsa_key_size_threshold=MIN_RSA_BITS,
        )

    def signature_algorithm_allowed(
        self,
        algo: algos.SignedDigestAlgorithm,
        moment: datetime | None,
        public_key: keys.PublicKeyInfo | None,
    ) -> AlgorithmUsageConstraint:
        if public_key is not None and public_key.algorithm == "ec":
            bits = public_key.bit_size
            if bits < MIN_EC_BITS:
                return AlgorithmUsageConstraint(
                    allowed=False,
                    failure_reason=f"EC key of {bits} bits; policy mandates >= {MIN_EC_BITS}",
                )
        return super().signature_algorithm_allowed(algo, moment, public_key)
