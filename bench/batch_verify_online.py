"""Online batch verification: an inbox of one agency's documents verified with OCSP and CRLs
fetched from the test PKI's responders (HTTP on loopback), each document at its own "now", with
the run's fetches shared (verify/fetch.py RunFetchCache, the default) and without
(``FetchPolicy(reuse_seconds=0)``: every document asks the responders, as before issue 13's
online work), beside pyHanko used plainly online (a fresh ValidationContext with fetching per
document, as shipped). Alternating rounds in one process; requests counted where the responders
answer. Loopback answers in about a millisecond: a state responder across a network takes tens to
hundreds, which the request counts multiply. Figures only; this never fails a build.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.resources import sample_pdf
from esign.services import PkiServices
from verify import TrustConfig, Verifier, VerifyOptions, _fasthex, _namecache
from verify.fetch import FetchPolicy
from verify.isolate import BatchVerifier, batch_workers
from verify.trust import load_cert_paths


def sign_inbox(pki: testpki.TestPki, folder: Path, n: int, level: PadesLevel) -> list[Path]:
    base = sample_pdf().read_bytes()
    folder.mkdir(exist_ok=True)
    key = load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    tsa = pki.tsa_url("mn-ec") if level.needs_timestamp else None
    signer = DocumentSigner(key, SignOptions(level=level, tsa_url=tsa))
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.pdf"
        path.write_bytes(signer.sign_bytes(base + f"\n% inbox item {i}\n".encode()))
        paths.append(path)
    return paths


def one_process(
    paths: list[Path], trust: TrustConfig, options: VerifyOptions, services: PkiServices
) -> tuple[list[str], float, float, float]:
    """A fresh Verifier (a run): verdicts, docs/s, CPU ms/doc, responder requests per document."""
    verifier = Verifier(trust, options)
    asked = services.requests_served
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = [verifier.verify_file(p).indication.value for p in paths]
    n = len(paths)
    return (
        verdicts,
        n / (time.perf_counter() - start),
        (time.process_time() - cpu) / n * 1e3,
        (services.requests_served - asked) / n,
    )


def folder(
    paths: list[Path],
    trust: TrustConfig,
    options: VerifyOptions,
    workers: int,
    services: PkiServices,
) -> tuple[list[str], float, float]:
    """The folder path (worker processes, started and warmed first): docs/s, requests/doc."""
    with BatchVerifier(trust, options, workers=workers) as batch:
        list(batch.verify_files(paths[:workers]))  # workers up
        asked = services.requests_served
        start = time.perf_counter()
        verdicts = [r.indication.value for _, r in batch.verify_files(paths)]  # type: ignore[union-attr]
        rate = len(paths) / (time.perf_counter() - start)
    return verdicts, rate, (services.requests_served - asked) / len(paths)


def pyhanko_plain(
    paths: list[Path], anchors: list[Any], others: list[Any], services: PkiServices
) -> tuple[list[bool], float, float, float]:
    """pyHanko as shipped, fetching online: bottom lines, docs/s, CPU ms/doc, requests/doc."""
    _fasthex.uninstall()
    _namecache.uninstall()
    try:
        asked = services.requests_served
        start, cpu = time.perf_counter(), time.process_time()
        plain = []
        for p in paths:
            sig = PdfFileReader(BytesIO(p.read_bytes())).embedded_signatures[0]
            vc = ValidationContext(trust_roots=anchors, other_certs=others, allow_fetching=True)
            plain.append(bool(validate_pdf_signature(sig, vc).bottom_line))
        n = len(paths)
        return (
            plain,
            n / (time.perf_counter() - start),
            (time.process_time() - cpu) / n * 1e3,
            (services.requests_served - asked) / n,
        )
    finally:
        _fasthex.install()
        _namecache.install()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--count", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="alternating shared/apart rounds")
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU (at most 8)")
    args, _ = parser.parse_known_args()  # bench/run.py passes its own options to every bench
    logging.disable(logging.CRITICAL)
    pki = testpki.build()
    work = Path(tempfile.mkdtemp(prefix="esign-bench-online-"))
    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    shared = VerifyOptions(online=True)
    apart = VerifyOptions(online=True, fetch_policy=FetchPolicy(reuse_seconds=0))
    workers = args.workers or batch_workers()
    anchors = list(load_cert_paths([pki.trust_dir]))
    others = list(load_cert_paths([pki.intermediates_dir]))
    try:
        with PkiServices(pki) as services:
            for level in (PadesLevel.B_LT, PadesLevel.B_B):
                paths = sign_inbox(pki, work / level.value, args.count, level)
                n = len(paths)
                print(
                    f"{level.value} inbox: {n} documents, one P-256 agency seal, online "
                    f"(each document at its own now), {args.rounds} alternating rounds"
                )
                runs: dict[str, list[tuple[list[str], float, float, float]]] = {"s": [], "a": []}
                for _ in range(args.rounds):
                    runs["a"].append(one_process(paths, trust, apart, services))
                    runs["s"].append(one_process(paths, trust, shared, services))
                verdicts = {tuple(r[0]) for rs in runs.values() for r in rs}
                assert len(verdicts) == 1, "shared and apart fetching disagree"
                plain = pyhanko_plain(paths, anchors, others, services)
                best = {k: max(rs, key=lambda r: r[1]) for k, rs in runs.items()}
                cpu = {k: min(r[2] for r in rs) for k, rs in runs.items()}
                print(
                    f"  verdicts: {sorted(set(next(iter(verdicts))))}; "
                    f"pyHanko bottom line all valid: {all(plain[0])}"
                )
                for key, label in (("a", "apart (reuse 0, before)"), ("s", "shared (the run)")):
                    print(
                        f"  esign one process, {label:24} {best[key][1]:6.1f} docs/s  "
                        f"CPU {cpu[key]:5.1f} ms/doc  {best[key][3]:5.2f} requests/doc"
                    )
                print(
                    f"  pyHanko plain online, one process        {plain[1]:6.1f} docs/s  "
                    f"CPU {plain[2]:5.1f} ms/doc  {plain[3]:5.2f} requests/doc"
                )
                print(
                    f"  shared/apart: {best['s'][1] / best['a'][1]:4.2f}x docs/s, "
                    f"{cpu['a'] / cpu['s']:4.2f}x CPU; shared/pyHanko plain: "
                    f"{best['s'][1] / plain[1]:4.2f}x docs/s"
                )
                for options, label in ((apart, "apart"), (shared, "shared")):
                    found, rate, per_doc = folder(paths, trust, options, workers, services)
                    assert found == list(next(iter(verdicts))), "the folder path disagrees"
                    print(
                        f"  esign folder ({workers} warm workers), {label:7} {rate:6.1f} docs/s"
                        f"  {per_doc:5.2f} requests/doc"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
