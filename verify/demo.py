"""`esign demo`: the whole flow on embedded defaults, for a new user on a fresh machine.

It lives in ``verify`` because it signs and then verifies: ``verify`` may import ``esign``,
never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.resources import sample_data, sample_pdf
from esign.services import PkiServices

P12_PASSWORD_BYTES = testpki.P12_PASSWORD.encode()


def _issue_samples(pki: testpki.TestPki, out_dir: Path, echo: Callable[[str], None]) -> bool:
    """Issue the three sample certificates and check each QR seal as a bank would: from the PDF
    (QR read from the rendered page, seal verified, matched to the text and the PDF signer)."""
    from esign.batch import BatchSettings, KeySpec, build_issuer
    from esign.template import load_data, load_template

    from .sealcheck import check_seal
    from .trust import TrustConfig

    trust = TrustConfig.for_test_pki(pki.root)
    ok = True
    for name in ("residence", "criminal-record", "social-insurance"):
        agency = load_template(name).issuer_code  # each agency seals with its own key
        key = KeySpec(str(pki.agency_seal_p12(agency)), password=P12_PASSWORD_BYTES)
        settings = BatchSettings(
            template=name, out_dir=out_dir, pdf_key=key, seal_key=key, tsa_url=pki.tsa_url("mn-ec")
        )
        issuer = build_issuer(settings)
        try:
            data = load_data(sample_data(name), issuer.template)
            out = out_dir / f"issued-{name}.pdf"
            issuer.issue_to(data, out)
        finally:
            issuer.close()
        report = check_seal(str(out), trust, online=True)
        ok &= report.indication.value == "TOTAL-PASSED"
        echo(f"{report.indication.value:<14} QR     {out}  — {report.explanation.mn}")
    return ok


def run_demo(out_dir: Path, echo: Callable[[str], None] = print) -> bool:
    """Build the test PKI, start its services, sign the sample at every level, verify each.

    Returns True when every signed file verifies TOTAL-PASSED, offline, from embedded data where
    the level embeds it.
    """
    from .pdf import Verifier, VerifyOptions
    from .trust import TrustConfig

    pki = testpki.build()
    echo(f"test PKI: {pki.root} (OCSP, CRL, TSA at {pki.url})")
    out_dir.mkdir(parents=True, exist_ok=True)
    trust = TrustConfig.for_test_pki(pki.root)
    ok = True
    made: list[tuple[Path, PadesLevel]] = []
    with PkiServices(pki):
        for arch, label in (("mn-rsa", "seal"), ("mn-ec", "official")):
            password = testpki.P12_PASSWORD.encode()
            with load_key(str(pki.p12(arch, label)), password=password) as key:
                for level in PadesLevel:
                    options = SignOptions(
                        level=level,
                        tsa_url=pki.tsa_url(arch),
                        reason="Demo: цахим баталгаажуулалт",
                        location="Улаанбаатар",
                    )
                    out = out_dir / f"certificate-{arch}-{label}-{level.value}.pdf"
                    DocumentSigner(key, options).sign_file(sample_pdf(), out)
                    made.append((out, level))
        online = Verifier(trust, VerifyOptions(online=True))
        for path, level in made:
            report = online.verify_file(path)
            ok &= report.indication.value == "TOTAL-PASSED"
            verdict = report.indication.value
            echo(f"{verdict:<14} {level.value:<6} {path}  — {report.explanation.mn}")
        ok &= _issue_samples(pki, out_dir, echo)
    offline = Verifier(trust, VerifyOptions(online=False))
    echo("services stopped; B-LT and B-LTA verified from embedded data only:")
    for path, level in made:
        if level.embeds_validation_data:
            report = offline.verify_file(path)
            ok &= report.indication.value == "TOTAL-PASSED"
            echo(f"{report.indication.value:<14} {level.value:<6} {path}")
    return ok
