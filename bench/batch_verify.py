"""B-LT batch verification: an inbox of distinct documents from one agency, verified by
esign's folder path (worker processes, all busy) and in one process, beside pyHanko used plainly
(a fresh ValidationContext per document, as shipped), all in the same run (issue 13: >= 5x).

Two inboxes, each signed once per run with the test PKI's agency seal (B-LT: OCSP and CRLs in the
DSS) the way a batch is issued, one signer reusing its OCSP response and CRLs for the batch
(SignOptions.revinfo_reuse_seconds), so the documents share them and esign's path cache
(verify/pathcache.py) validates them once:
- "sample": the sample PDF with a different trailing comment per file (the figures of earlier
  closing notes);
- "issued": residence certificates issued by ``esign.batch.run_batch`` for distinct people (what
  a bank receives: compiled template, fixed font subset, QR seal, certification signature).
A third set, sample files signed with fresh revocation data per document (revinfo_reuse_seconds=0),
shows what the cache cannot share. Every verifier judges as of the same moment, just after
signing (the test PKI's OCSP responses are fresh for ten minutes). Figures only; this never fails
a build.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.batch import BatchSettings, KeySpec, run_batch
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


def issue_inbox(pki: testpki.TestPki, folder: Path, n: int) -> list[Path]:
    """``n`` residence certificates for distinct people, issued B-LT as a monthly batch is."""
    from issue_throughput import documents  # bench/ is on sys.path when run as a script

    folder.mkdir(exist_ok=True)
    jsonl = folder / "batch.jsonl"
    jsonl.write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents(n)), encoding="utf-8"
    )
    key = KeySpec(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    settings = BatchSettings(
        template="residence", out_dir=folder / "out", pdf_key=key, seal_key=key, level="B-LT",
        tsa_url=pki.tsa_url("mn-ec"), registry_url=f"sqlite:{folder / 'registry.sqlite3'}",
        workers=1,
    )  # fmt: skip
    with PkiServices(pki):
        summary = run_batch(jsonl, settings)
    if summary.issued != n:
        raise SystemExit(f"issued {summary.issued} of {n}: {summary.results[:1]}")
    return sorted((folder / "out").glob("*.pdf"))


def pyhanko_plain(
    paths: list[Path], anchors: list[Any], others: list[Any], at: datetime
) -> tuple[list[bool], float, float]:
    """pyHanko as shipped (without what importing `verify` installs): docs/s and CPU s/doc."""
    _fasthex.uninstall()
    _namecache.uninstall()
    try:
        start = time.perf_counter()
        cpu = time.process_time()
        plain = []
        for p in paths:
            sig = PdfFileReader(BytesIO(p.read_bytes())).embedded_signatures[0]
            vc = ValidationContext(trust_roots=anchors, other_certs=others, allow_fetching=False,
                                   moment=at)  # fmt: skip
            plain.append(bool(validate_pdf_signature(sig, vc).bottom_line))
        n = len(paths)
        return plain, n / (time.perf_counter() - start), (time.process_time() - cpu) / n
    finally:
        _fasthex.install()
        _namecache.install()


def one_process(paths: list[Path], trust: TrustConfig, options: VerifyOptions) -> tuple[
    list[str], float, float, str
]:  # fmt: skip
    """esign's Verifier in this process, warmed on the first file: docs/s, CPU s/doc, cache use."""
    verifier = Verifier(trust, options)
    verifier.verify_file(paths[0])  # warm
    start = time.perf_counter()
    cpu = time.process_time()
    verdicts = [verifier.verify_file(p).indication.value for p in paths]
    n = len(paths)
    rate, per_doc = n / (time.perf_counter() - start), (time.process_time() - cpu) / n
    hits, misses = verifier.path_cache.hits, verifier.path_cache.misses
    return verdicts, rate, per_doc, f"{hits} of {hits + misses} paths cached"


def measure(
    name: str, paths: list[Path], trust: TrustConfig, options: VerifyOptions, workers: int,
    plain_args: tuple[list[Any], list[Any], datetime],
) -> None:  # fmt: skip
    n = len(paths)
    print(f"B-LT inbox '{name}': {n} documents, one P-256 agency seal, offline, "
          f"as of {options.at:%H:%M:%S}")  # fmt: skip
    start = time.perf_counter()
    with BatchVerifier(trust, options, workers=workers) as batch:
        verdicts = [r.indication.value for _, r in batch.verify_files(paths)]  # type: ignore[union-attr]
        folder_rate = n / (time.perf_counter() - start)
        start = time.perf_counter()  # again, the workers warm: what a long batch sees
        list(batch.verify_files(paths))
        warm_rate = n / (time.perf_counter() - start)
    alone, process_rate, process_cpu, cached = one_process(paths, trust, options)
    plain, plain_rate, plain_cpu = pyhanko_plain(paths, *plain_args)
    assert verdicts == alone, "the folder path and one-by-one disagree"
    print(f"  verdicts: {sorted(set(verdicts))}; pyHanko bottom line all valid: {all(plain)}")
    print(f"  esign folder ({workers} workers, incl. start) {folder_rate:6.1f} docs/s   "
          f"ratio {folder_rate / plain_rate:4.2f}")  # fmt: skip
    print(f"  esign folder, workers already warm    {warm_rate:6.1f} docs/s   "
          f"ratio {warm_rate / plain_rate:4.2f}")  # fmt: skip
    print(f"  esign one process                     {process_rate:6.1f} docs/s   "
          f"ratio {process_rate / plain_rate:4.2f}   ({cached})")  # fmt: skip
    print(f"  pyHanko plain, one process            {plain_rate:6.1f} docs/s")
    # CPU time per document: what the other processes on a shared machine do not move
    print(f"  CPU per document: esign {process_cpu * 1e3:.1f} ms, pyHanko plain "
          f"{plain_cpu * 1e3:.1f} ms (ratio {plain_cpu / process_cpu:4.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--count", type=int, default=60)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU (at most 8)")
    parser.add_argument("--inbox", choices=["issued", "sample", "both"], default="both")
    args, _ = parser.parse_known_args()  # bench/run.py passes its own options to every bench
    logging.disable(logging.CRITICAL)
    pki = testpki.build()
    folder = Path(tempfile.mkdtemp(prefix="esign-bench-inbox-"))
    try:
        inboxes = {}
        if args.inbox in ("issued", "both"):
            inboxes["issued"] = issue_inbox(pki, folder / "issued", args.count)
        if args.inbox in ("sample", "both"):
            inboxes["sample"] = sign_inbox(pki, folder / "batch", args.count)
            apart = sign_inbox(pki, folder / "apart", args.count, reuse_seconds=0)
        at = datetime.now(UTC) + timedelta(seconds=5)
        trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
        options = VerifyOptions(online=False, at=at)
        workers = args.workers or batch_workers()
        plain_args = (
            list(load_cert_paths([pki.trust_dir])),
            list(load_cert_paths([pki.intermediates_dir])),
            at,
        )
        for name, paths in inboxes.items():
            measure(name, paths, trust, options, workers, plain_args)
        if args.inbox in ("sample", "both"):
            _, _, apart_cpu, _ = one_process(apart, trust, options)
            _, _, plain_cpu = pyhanko_plain(apart, *plain_args)
            print(f"  sample, revocation data fresh per document (nothing shared): esign "
                  f"{apart_cpu * 1e3:.1f} ms/doc CPU, pyHanko plain {plain_cpu * 1e3:.1f} "
                  f"(ratio {plain_cpu / apart_cpu:4.2f})")  # fmt: skip
        print("  (issue 13 target: folder >= 5x pyHanko plain)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
