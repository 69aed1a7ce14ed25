"""Certificate issuance throughput: render, QR seal, B-B certification signature, write, record.

Issues N residence certificates (default 1,000) with ``esign.batch.run_batch`` in worker
processes (default 2), with the test PKI's P-256 agency seal, no TSA and a registry in a
temporary SQLite file, and prints the total time and docs/s beside the target of issue 4
(1,000 documents with 2 workers in at most 30 s). A short single-process profile then shows
what one document costs per stage, and issuance per process is set against B-B signing alone
with the same key, in alternating rounds of the same run: one document at a time (``issue_to``:
two durable registry commits per document) and as a batch worker issues (``issue_many`` on
chunks of ``CHUNK``: two durable commits per chunk), both with SQLite's default
synchronous=FULL; and ``run_batch`` with one worker process, whole runs of a monthly batch
(fork, keys, registry, chunks), against signing alone in alternating rounds. Figures only; this
never fails a build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from esign import testpki
from esign.batch import CHUNK, BatchSettings, KeySpec, build_issuer, run_batch
from esign.issue import document_id
from esign.pdfio import write_atomic
from esign.registry import DocumentStatus, IssuedDocument, subject_digest
from esign.render import SealBlock, render_certificate, render_certificate_fpdf
from esign.template import parse_data

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "data" / "residence.json"
TARGET_DOCS, TARGET_SECONDS = 1000, 30.0


def documents(n: int) -> list[dict[str, object]]:
    base = json.loads(SAMPLE.read_text(encoding="utf-8"))
    out = []
    for i in range(n):
        data = json.loads(json.dumps(base))
        data["number"] = f"ОСХ-2026-{500000 + i:06d}"
        data["subject"]["register_number"] = f"УБ{90000000 + i:08d}"
        data["fields"]["household"] = str(1 + i % 7)
        out.append(data)
    return out


def settings(pki: testpki.TestPki, folder: Path, workers: int) -> BatchSettings:
    key = KeySpec(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    return BatchSettings(
        template="residence",
        out_dir=folder / "out",
        pdf_key=key,
        seal_key=key,
        level="B-B",
        tsa_url=None,
        registry_url=f"sqlite:{folder / 'registry.sqlite3'}",
        workers=workers,
    )


def batch(pki: testpki.TestPki, n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="esign-bench-issue-") as tmp:
        folder = Path(tmp)
        jsonl = folder / "batch.jsonl"
        jsonl.write_text(
            "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents(n)),
            encoding="utf-8",
        )
        start = time.perf_counter()
        summary = run_batch(jsonl, settings(pki, folder, workers))
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (folder / "out").glob("*.pdf"))
    print(f"batch: {n} residence certificates, {workers} workers, B-B, P-256, SQLite registry")
    print(f"  issued {summary.issued}, skipped {summary.skipped}, failed {summary.failed}")
    print(f"  total {wall:.2f} s wall ({summary.seconds:.2f} s in the worker pool)")
    print(f"  {summary.issued / wall:.1f} docs/s wall, {summary.rate:.1f} docs/s pool")
    print(f"  average PDF {size / max(1, summary.issued) / 1024:.1f} KiB")
    projected = TARGET_DOCS / (summary.issued / wall) if summary.issued else float("inf")
    verdict = "within" if projected <= TARGET_SECONDS else "OVER"
    print(
        f"  target: {TARGET_DOCS} docs with 2 workers in <= {TARGET_SECONDS:.0f} s; "
        f"at this rate {TARGET_DOCS} take {projected:.1f} s ({verdict} target)"
    )


def batch_versus(pki: testpki.TestPki, n: int, rounds: int) -> None:
    """``run_batch`` with one worker process (its whole run: fork, keys, registry, chunks) set
    against B-B signing alone with the same key in this process, alternating rounds: issuance
    per process as an agency's monthly batch runs it, durable SQLite commits (issue 13)."""
    with tempfile.TemporaryDirectory(prefix="esign-bench-monthly-") as tmp:
        folder = Path(tmp)
        issuer = build_issuer(settings(pki, folder, 1))
        all_docs = documents(n * rounds + 1)
        first = parse_data(all_docs[0], issuer.template)
        seal = SealBlock(url=issuer.seal_signer.url(issuer.base_url, issuer.claims(first)),
                         address="verify.example.mn", code="ABCDE-FGHIJ")  # fmt: skip
        unsigned = render_certificate(issuer.template, first, seal)
        rates = []
        try:
            for r in range(rounds):
                run = folder / f"round-{r}"
                run.mkdir()
                jsonl = run / "batch.jsonl"
                lines = all_docs[1 + r * n : 1 + (r + 1) * n]
                jsonl.write_text(
                    "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines),
                    encoding="utf-8",
                )
                summary = run_batch(jsonl, settings(pki, run, 1))
                assert summary.issued == n, summary.results[:3]
                start = time.perf_counter()
                for _ in range(n // 2):
                    issuer.pdf_signer.sign_bytes(unsigned, first.number)
                rates.append((summary.rate, (n // 2) / (time.perf_counter() - start)))
        finally:
            issuer.close()
    print(f"monthly batch path: run_batch, 1 worker process, {rounds} rounds of {n} documents, "
          f"chunks of {CHUNK}, vs B-B signing alone (same key, this process):")  # fmt: skip
    for r, (b, s) in enumerate(rates):
        print(f"  round {r + 1}: batch {b:6.1f} docs/s   signing alone {s:6.1f} docs/s"
              f"   ratio {b / s:4.2f}")  # fmt: skip
    ratios = sorted(b / s for b, s in rates)
    print(f"  ratio {ratios[0]:.2f}-{ratios[-1]:.2f}, median {ratios[len(ratios) // 2]:.2f} "
          f"(issue 13 target: >= 0.5)")  # fmt: skip


def profile(pki: testpki.TestPki, n: int) -> None:
    """The stages of ``CertificateIssuer.issue_to``, timed one by one in this process."""
    with tempfile.TemporaryDirectory(prefix="esign-bench-stages-") as tmp:
        folder = Path(tmp)
        issuer = build_issuer(settings(pki, folder, 1))
        (folder / "out").mkdir()
        template = issuer.template
        stages = dict.fromkeys(("parse", "seal", "render", "sign", "write", "record"), 0.0)
        try:
            for i, raw in enumerate(documents(n + 1)):  # the first warms up, not counted
                t0 = time.perf_counter()
                data = parse_data(raw, template)
                t1 = time.perf_counter()
                url = issuer.seal_signer.url(issuer.base_url, issuer.claims(data))
                doc_id = document_id(template.issuer_code, data.number)
                t2 = time.perf_counter()
                unsigned = render_certificate(
                    template,
                    data,
                    SealBlock(url=url, address=issuer.base_url.split("://")[-1], code=doc_id),
                    created=datetime.now(UTC),
                )
                t3 = time.perf_counter()
                signed = issuer.pdf_signer.sign_bytes(unsigned, data.number)
                t4 = time.perf_counter()
                write_atomic(folder / "out" / f"{doc_id}.pdf", signed)
                t5 = time.perf_counter()
                issuer.registry.record(
                    IssuedDocument(
                        id=doc_id,
                        doc_type=template.doc_type,
                        issuer=template.issuer_code,
                        subject_digest=subject_digest(data.register_number, data.name),
                        issued_on=data.issued,
                        expires_on=data.expires,
                        status=DocumentStatus.ACTIVE,
                        pdf_sha256=hashlib.sha256(signed).hexdigest(),
                    )
                )
                t6 = time.perf_counter()
                if i == 0:
                    continue
                times = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
                for name, dt in zip(stages, times, strict=True):
                    stages[name] += dt
        finally:
            issuer.close()
    total = sum(stages.values())
    print(f"stages, one process, mean of {n} documents:")
    for name, seconds in stages.items():
        print(f"  {name:<7} {seconds / n * 1000:7.2f} ms  {seconds / total * 100:5.1f} %")
    print(f"  {'total':<7} {total / n * 1000:7.2f} ms  = {n / total:.1f} docs/s per process")


def versus_signing(pki: testpki.TestPki, n: int, rounds: int) -> None:
    """Issuance (render, seal, sign, write, record) against B-B signing alone, same key, same
    process, alternating rounds so that both meet the same machine load (issue 13: >= 0.5)."""
    with tempfile.TemporaryDirectory(prefix="esign-bench-versus-") as tmp:
        folder = Path(tmp)
        issuer = build_issuer(settings(pki, folder, 1))
        (folder / "out").mkdir()
        template = issuer.template
        docs = [parse_data(raw, template) for raw in documents(n * rounds + 1)]
        try:
            first = docs.pop()
            issuer.issue_to(first, folder / "out" / "warm.pdf")  # warm-up: compiles the template
            unsigned = render_certificate(
                template,
                first,
                SealBlock(url=issuer.seal_signer.url(issuer.base_url, issuer.claims(first)),
                          address="verify.example.mn", code="ABCDE-FGHIJ"),
            )  # fmt: skip
            seal = SealBlock(url="HTTP://127.0.0.1/V/" + "A" * 300, address="x", code="ABCDE-FGHIJ")
            for name, render in (("fpdf2 (before)", render_certificate_fpdf),
                                 ("compiled", render_certificate)):  # fmt: skip
                start = time.perf_counter()
                for data in docs[:30]:
                    render(template, data, seal)
                print(f"render {name:<15} {(time.perf_counter() - start) / 30 * 1000:6.2f} ms/doc")
            issue_rates, batch_rates, sign_rates = [], [], []
            for r in range(rounds):
                chunk = docs[r * n : (r + 1) * n]
                half = len(chunk) // 2
                start = time.perf_counter()  # one document at a time: two commits each
                for i, data in enumerate(chunk[:half]):
                    issuer.issue_to(data, folder / "out" / f"{r}-{i}.pdf")
                issue_rates.append(half / (time.perf_counter() - start))
                start = time.perf_counter()  # as a batch worker does: two commits per CHUNK
                rest = [(d, folder / "out" / f"{r}-b{i}.pdf") for i, d in enumerate(chunk[half:])]
                for k in range(0, len(rest), CHUNK):
                    for outcome in issuer.issue_many(rest[k : k + CHUNK]):
                        assert not isinstance(outcome, Exception), outcome
                batch_rates.append(len(rest) / (time.perf_counter() - start))
                start = time.perf_counter()
                for _ in range(n):
                    issuer.pdf_signer.sign_bytes(unsigned, first.number)
                sign_rates.append(n / (time.perf_counter() - start))
        finally:
            issuer.close()
    print(
        f"issuance vs B-B signing alone, one process, same P-256 key, durable SQLite commits, "
        f"{rounds} rounds of {n} (half issue_to, half the batch path in chunks of {CHUNK}):"
    )
    for r, (i, b, s) in enumerate(zip(issue_rates, batch_rates, sign_rates, strict=True)):
        print(f"  round {r + 1}: issue_to {i:6.1f} docs/s (ratio {i / s:4.2f})   batch path "
              f"{b:6.1f} docs/s (ratio {b / s:4.2f})   signing alone {s:6.1f} docs/s")  # fmt: skip
    for name, rates in (("issue_to", issue_rates), ("batch path", batch_rates)):
        ratios = sorted(x / s for x, s in zip(rates, sign_rates, strict=True))
        print(f"  {name}: ratio {ratios[0]:.2f}-{ratios[-1]:.2f}, "
              f"median {ratios[len(ratios) // 2]:.2f} (issue 13 target: >= 0.5)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--count", type=int, default=TARGET_DOCS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-docs", type=int, default=50)
    parser.add_argument("--versus-docs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--monthly-docs", type=int, default=600)
    parser.add_argument("--monthly-rounds", type=int, default=3)
    args, _ = parser.parse_known_args()  # bench/run.py passes its own options to every bench
    pki = testpki.build()
    batch(pki, args.count, args.workers)
    if args.monthly_docs > 0:
        batch_versus(pki, args.monthly_docs, args.monthly_rounds)
    if args.profile_docs > 0:
        profile(pki, args.profile_docs)
    if args.versus_docs > 0:
        versus_signing(pki, args.versus_docs, args.rounds)


if __name__ == "__main__":
    main()
