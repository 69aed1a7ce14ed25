"""The shared table of prepared X.509 name attributes (verify/_namecache.py) gives exactly what
asn1crypto computes, for the test PKI's names and for names that differ only in what RFC 4518
preparation folds (case, inner and outer spaces, compatibility characters)."""

from __future__ import annotations

import random

from asn1crypto import pem, x509

import verify  # noqa: F401  (installs the table)
from esign import testpki
from verify import _namecache

TEXTS = [
    "Улсын бүртгэлийн ерөнхий газар",
    "УЛСЫН БҮРТГЭЛИЙН ЕРӨНХИЙ ГАЗАР",
    "  Test   National  Issuing CA ",
    "test national issuing ca",
    "ﬁnance Ⅻ ＡＢＣ",  # compatibility forms NFKC folds
    "GV:MN-UBEG",
    "Ө ө Ү ү",
]


def _fresh(name: x509.Name) -> x509.Name:
    return x509.Name.load(name.dump(force=True))


def _uncached(name: x509.Name) -> list[str]:
    original = _namecache.original()
    return [original.fget(ntv) for rdn in _fresh(name).chosen for ntv in rdn]


def test_prepared_values_equal_asn1cryptos_for_the_test_pki(pki: testpki.TestPki) -> None:
    names = []
    for folder in (pki.trust_dir, pki.intermediates_dir):
        for path in sorted(folder.glob("*.pem")):
            _, _, der = pem.unarmor(path.read_bytes())
            cert = x509.Certificate.load(der)
            names += [cert.subject, cert.issuer]
    assert len(names) >= 8
    for name in names:
        cached = [ntv.prepped_value for rdn in _fresh(name).chosen for ntv in rdn]
        again = [ntv.prepped_value for rdn in _fresh(name).chosen for ntv in rdn]
        assert cached == again == _uncached(name)


def test_equality_and_hashable_unchanged_for_folded_variants() -> None:
    rng = random.Random(13)
    names = [
        x509.Name.build({"common_name": text, "organization_name": rng.choice(TEXTS)})
        for text in TEXTS
    ]
    for a in names:
        for b in names:
            fa, fb = _fresh(a), _fresh(b)
            expected = _uncached(a) == _uncached(b)
            assert (fa == fb) == expected, (a.native, b.native)
            assert (fa.hashable == fb.hashable) == expected
    # case and spaces fold (Cyrillic case too); different words never do
    assert _fresh(x509.Name.build({"common_name": TEXTS[0]})) == _fresh(
        x509.Name.build({"common_name": TEXTS[1]})
    )
    assert _fresh(names[0]) != _fresh(names[5])
    folded = x509.Name.build({"common_name": TEXTS[3]})
    assert _fresh(x509.Name.build({"common_name": TEXTS[2]})) == _fresh(folded)


def test_remembered_name_equality_is_asn1cryptos() -> None:
    """Name.__eq__ is kept per pair of encodings: asked twice, in both orders, about fresh
    copies, it answers what asn1crypto's own comparison answers."""
    names = [x509.Name.build({"common_name": t, "country_name": "MN"}) for t in TEXTS]
    for a in names:
        for b in names:
            expected = _namecache._original_eq(_fresh(a), _fresh(b))
            for _ in range(2):
                assert (_fresh(a) == _fresh(b)) is expected
                assert (_fresh(b) == _fresh(a)) is expected
                assert (_fresh(a) != _fresh(b)) is not expected
    assert names[0] != "not a name"


def test_remembered_hashable_is_asn1cryptos(pki: testpki.TestPki) -> None:
    """Name.hashable is kept per encoding: asked twice about fresh copies of the PKI's names,
    folded variants and names with random bytes changed in their values, it gives what
    asn1crypto's own property gives, and distinct encodings keep distinct answers."""
    names = [x509.Name.build({"common_name": t, "country_name": "MN"}) for t in TEXTS]
    for folder in (pki.trust_dir, pki.intermediates_dir):
        for path in sorted(folder.glob("*.pem")):
            _, _, der = pem.unarmor(path.read_bytes())
            cert = x509.Certificate.load(der)
            names += [cert.subject, cert.issuer]
    rng = random.Random(13)
    for name in list(names):
        encoded = bytearray(name.dump())
        encoded[-1 - rng.randrange(4)] ^= 1 << rng.randrange(7)  # inside the last value
        names.append(x509.Name.load(bytes(encoded)))
    original = _namecache._original_hashable.fget
    for name in names:
        try:
            expected: object = original(_fresh(name))
        except ValueError as e:  # an unparseable mutation: the same error
            expected = str(e)
        for _ in range(2):
            try:
                got: object = _fresh(name).hashable
            except ValueError as e:
                got = str(e)
            assert got == expected
