"""Many-signature documents: 25 PAdES B-LT signatures in 50 incremental updates, one file.

Each B-LT signature is one revision and the DSS update pyHanko appends after it another, so every
signature's difference analysis walks the revisions after it. Built once with the test PKI (cached
in the temp dir), then timed in the same run: `esign verify --offline` beside
`pyhanko sign validate --no-strict-syntax` (CLI wall; pyHanko's CLI validates every signature of
the file in one call), and in-process `Verifier.verify_bytes` beside a plain pyHanko loop over
`reader.embedded_signatures` with `validate_pdf_signature`. Figures only; never fails a build.

Measured 2026-11-26 (2 shared cores, median of 5): before sharing per-revision work, esign CLI
3.25 s vs pyHanko CLI 2.67 s (1.22x; in-process 2.99 s vs 2.23 s, 1.34x); after (per-reader
memo of each object's introducing revision, per-entry memo of VRI stream payloads) 2.42 s vs
2.73 s (0.89x; in-process 2.13 s vs 2.19 s, 0.97x).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from verify import TrustConfig, Verifier, VerifyOptions, _fasthex
from verify.trust import load_cert_paths

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "certificate.pdf"
CACHE = Path(tempfile.gettempdir()) / "esign-bench-many-signatures"
SIGNATURES = 25


def build(pki: testpki.TestPki, path: Path) -> None:
    """25 B-LT signatures by one seal key, each followed by its DSS update: 50 revisions."""
    data = SAMPLE.read_bytes()
    with PkiServices(pki):
        key = load_key(str(pki.p12("mn-rsa", "seal")), password=testpki.P12_PASSWORD.encode())
        opts = SignOptions(level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-rsa"))
        signer = DocumentSigner(key, opts)
        for _ in range(SIGNATURES):
            data = signer.sign_bytes(data)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def timed(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="sign the document again")
    args, _ = parser.parse_known_args()  # bench/run.py passes every bench the same options
    logging.disable(logging.CRITICAL)  # pyHanko logs each indeterminate path with a traceback
    pki = testpki.build(CACHE / "pki")
    doc = CACHE / f"{SIGNATURES}-signatures.pdf"
    if args.rebuild or not doc.is_file():
        start = time.perf_counter()
        build(pki, doc)
        print(f"built {doc} in {time.perf_counter() - start:.1f} s")
    data = doc.read_bytes()
    # the test PKI's OCSP responses are fresh for minutes only: judge as of when it was signed
    at = datetime.fromtimestamp(doc.stat().st_mtime, UTC)
    reader = PdfFileReader(BytesIO(data))
    print(f"{doc.name}: {len(reader.embedded_signatures)} signatures, "
          f"{reader.xrefs.total_revisions} revisions, {len(data) // 1024} KiB; "
          f"median of {args.runs}")  # fmt: skip

    esign = [str(Path(sys.executable).with_name("esign")), "verify", "--offline", "--lang", "en"]
    esign += ["--at", at.isoformat(), "--trust", str(pki.trust_dir), str(doc)]
    first = subprocess.run(esign, capture_output=True, text=True, check=False)
    cli_verdict = first.stdout.partition("\n")[0].rpartition(": ")[2] or first.stderr.strip()
    ours_cli = timed(lambda: subprocess.run(esign, capture_output=True), args.runs)
    pyhanko = shutil.which("pyhanko", path=str(Path(sys.executable).parent))
    theirs_cli = None
    if pyhanko:
        root, sco = pki.trust_dir / "mn-rsa-root.pem", pki.intermediates_dir / "mn-rsa-sco.pem"
        cmd = [pyhanko, "sign", "validate", "--no-strict-syntax", "--no-revocation-check",
               "--trust-replace", "--trust", str(root), "--other-certs", str(sco),
               str(doc)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        validated = len(out.splitlines())  # one summary line per signature
        theirs_cli = timed(lambda: subprocess.run(cmd, capture_output=True), args.runs)
    print(f"CLI wall:   esign verify --offline                  {ours_cli:7.2f} s ({cli_verdict})")
    if theirs_cli is not None:
        print(f"            pyhanko sign validate --no-strict-syntax {theirs_cli:7.2f} s "
              f"({validated} signatures in one call)   ratio esign/pyHanko "
              f"{ours_cli / theirs_cli:4.2f}")  # fmt: skip

    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    verifier = Verifier(trust, VerifyOptions(at=at, online=False))
    verdict = verifier.verify_bytes(data).indication.value
    ours = timed(lambda: verifier.verify_bytes(data), args.runs)
    anchors = list(load_cert_paths([pki.trust_dir]))
    others = list(load_cert_paths([pki.intermediates_dir]))

    def plain() -> None:
        for sig in PdfFileReader(BytesIO(data)).embedded_signatures:
            vc = ValidationContext(trust_roots=anchors, other_certs=others, allow_fetching=False)
            validate_pdf_signature(sig, vc)

    # pyHanko as shipped: without the faster hex reader that importing `verify` installs
    generic.read_hex_string_from_stream = _fasthex.original()
    theirs = timed(plain, args.runs)
    _fasthex.install()
    print(f"in-process: Verifier.verify_bytes                   {ours:7.2f} s ({verdict})")
    print(f"            pyHanko validate_pdf_signature loop     {theirs:7.2f} s   "
          f"ratio esign/pyHanko {ours / theirs:4.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
