"""B-LT batch verification: an inbox of distinct certificates from one agency, verified by
esign's folder path (worker processes, all busy) and in one process, beside pyHanko used plainly
(a fresh ValidationContext per document, as shipped), all in the same run (issue 13: >= 5x).

The files are signed once per run with the test PKI's agency seal (B-LT: OCSP and CRLs in the
DSS) the way a batch is issued: one signer reusing its OCSP response and CRLs for the batch
(SignOptions.revinfo_reuse_seconds), so the documents share them and esign's path cache
(verify/pathcache.py) validates them once. A second inbox signed with fresh revocation data per
document (revinfo_reuse_seconds=0) shows what the cache cannot share. Every verifier judges as of
the same moment, just after signing (the test PKI's OCSP responses are fresh for ten minutes).
Figures only; this never fails a build.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.resources import sample_pdf
from esign.services import PkiServices
from verify import TrustConfig, Verifier, VerifyOptions, _fasthex, _namecache
from verify.isolate import BatchVerifier, batch_workers
from verify.trust import load_cert_paths


def sign_inbox(
    pki: testpki.TestPki, folder: Path, n: int, reuse_seconds: float = 300.0
) -> list[Path]:
    base = sample_pdf().read_bytes()
    paths = []
    folder.mkdir(exist_ok=True)
    with PkiServices(pki):
        key = load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
        options = SignOptions(
            level=PadesLevel.B_LT,
            tsa_url=pki.tsa_url("mn-ec"),
            revinfo_reuse_seconds=reuse_seconds,
        )
        signer = DocumentSigner(key, options)
        for i in range(n):
            path = folder / f"{i:04d}.pdf"
            # distinct documents: the same page with a different trailing comment
            path.write_bytes(signer.sign_bytes(base + f"\n% inbox item {i}\n".encode()))
            paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--count", type=int, default=60)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU (at most 8)")
    args, _ = parser.parse_known_args()  # bench/run.py passes its own options to every bench
    logging.disable(logging.CRITICAL)
    pki = testpki.build()
    folder = Path(tempfile.mkdtemp(prefix="esign-bench-inbox-"))
    try:
        paths = sign_inbox(pki, folder / "batch", args.count)
        apart = sign_inbox(pki, folder / "apart", args.count, reuse_seconds=0)
        at = datetime.now(UTC) + timedelta(seconds=5)
        trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
        options = VerifyOptions(online=False, at=at)
        workers = args.workers or batch_workers()
        n = len(paths)
        print(
            f"B-LT inbox: {n} distinct certificates, one P-256 agency seal, offline, "
            f"as of {at:%H:%M:%S}"
        )

        start = time.perf_counter()
        with BatchVerifier(trust, options, workers=workers) as batch:
            verdicts = [r.indication.value for _, r in batch.verify_files(paths)]  # type: ignore[union-attr]
            folder_rate = n / (time.perf_counter() - start)
            start = time.perf_counter()  # again, the workers warm: what a long batch sees
            list(batch.verify_files(paths))
            warm_rate = n / (time.perf_counter() - start)

        verifier = Verifier(trust, options)
        verifier.verify_file(paths[0])  # warm
        start = time.perf_counter()
        cpu = time.process_time()
        alone = [verifier.verify_file(p).indication.value for p in paths]
        process_rate = n / (time.perf_counter() - start)
        process_cpu = (time.process_time() - cpu) / n
        hits, misses = verifier.path_cache.hits, verifier.path_cache.misses

        verifier = Verifier(trust, options)
        verifier.verify_file(apart[0])  # warm
        start = time.perf_counter()
        cpu = time.process_time()
        alone += [verifier.verify_file(p).indication.value for p in apart]
        apart_rate = n / (time.perf_counter() - start)
        apart_cpu = (time.process_time() - cpu) / n

        anchors = list(load_cert_paths([pki.trust_dir]))
        others = list(load_cert_paths([pki.intermediates_dir]))
        # pyHanko as shipped: without what importing `verify` installs
        _fasthex.uninstall()
        _namecache.uninstall()
        start = time.perf_counter()
        cpu = time.process_time()
        plain = []
        for p in paths:
            sig = PdfFileReader(BytesIO(p.read_bytes())).embedded_signatures[0]
            vc = ValidationContext(trust_roots=anchors, other_certs=others, allow_fetching=False,
                                   moment=at)  # fmt: skip
            plain.append(validate_pdf_signature(sig, vc).bottom_line)
        plain_rate = n / (time.perf_counter() - start)
        plain_cpu = (time.process_time() - cpu) / n
        _fasthex.install()
        _namecache.install()

        assert verdicts == alone[:n], "the folder path and one-by-one disagree"
        print(f"  verdicts: {sorted(set(verdicts))}; pyHanko bottom line all valid: {all(plain)}")
        print(f"  esign folder ({workers} workers, incl. start) {folder_rate:6.1f} docs/s   "
              f"ratio {folder_rate / plain_rate:4.2f}")  # fmt: skip
        print(f"  esign folder, workers already warm    {warm_rate:6.1f} docs/s   "
              f"ratio {warm_rate / plain_rate:4.2f}")  # fmt: skip
        print(f"  esign one process                     {process_rate:6.1f} docs/s   "
              f"ratio {process_rate / plain_rate:4.2f}   "
              f"({hits} of {hits + misses} paths cached)")  # fmt: skip
        print(f"  esign one process, revinfo per doc    {apart_rate:6.1f} docs/s   "
              f"ratio {apart_rate / plain_rate:4.2f}")  # fmt: skip
        print(f"  pyHanko plain, one process            {plain_rate:6.1f} docs/s")
        # CPU time per document: what the other processes on a shared machine do not move
        print(f"  CPU per document: esign {process_cpu * 1e3:.1f} ms (ratio "
              f"{plain_cpu / process_cpu:4.2f}), revinfo per doc {apart_cpu * 1e3:.1f} ms (ratio "
              f"{plain_cpu / apart_cpu:4.2f}), pyHanko plain {plain_cpu * 1e3:.1f} ms")  # fmt: skip
        print("  (issue 13 target: folder >= 5x pyHanko plain)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
