"""Coverage-guided fuzzing (atheris/libFuzzer) of the PDF verification path and the QR seal decoder.

Property: ``Verifier.verify_bytes`` returns a DocumentReport, ``verify_seal`` a SealReport, or
either raises an ``esign.errors.EsignError``; any other exception, a memory bomb (address space
limited to 2 GiB; a verdict naming that limit counts too) or an input taking more than
``-timeout`` seconds is a finding.

    .venv/bin/python bench/fuzz_verify.py -max_total_time=600            # PDF verification
    .venv/bin/python bench/fuzz_verify.py --target seal -max_total_time=120
    .venv/bin/python bench/fuzz_verify.py --keep-going -max_total_time=600  # log, don't stop

The seed corpus (the sample certificate as it is, with an xref stream and encrypted, signed B-B,
certified, twice-signed and B-LT copies, the fuzz regressions; the committed seal vectors) is
written into ``--work`` (default /tmp/esign-fuzz) with a test PKI on first use. Other arguments
go to libFuzzer (``-timeout=10 -rss_limit_mb=2048`` are added unless given); files given are
run once instead of fuzzing (a folder given becomes the corpus; libFuzzer writes into it).
With ``--keep-going`` an exception is logged once per class (type, innermost frame, innermost
frame in esign/verify) into ``WORK/findings-TARGET/`` with the input and its traceback, and
fuzzing goes on; timeouts and memory limits still stop libFuzzer, which then writes the input as
``crash-*``/``timeout-*``/``oom-*``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import resource
import sys
import traceback
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ADDRESS_SPACE = 2 * 2**30
REGRESSIONS = REPO / "tests" / "verify" / "fuzz-regressions"
SEAL_VECTORS = REPO / "samples" / "seal-vectors"
PDF_SEEDS = (
    "sample.pdf",
    "xref-stream.pdf",
    "b-b.pdf",
    "xref-stream-b-b.pdf",
    "encrypted.pdf",
    "encrypted-b-b.pdf",
    "twice.pdf",
    "certified.pdf",
    "b-lt-ec.pdf",
)
COSE_MODE = b"\x00"
SEAL_AT = datetime(2026, 12, 1, tzinfo=UTC)
"""The validation time of the committed seal vectors."""

with atheris.instrument_imports(
    include=["verify", "esign", "pyhanko", "pyhanko_certvalidator", "asn1crypto", "cbor2"]
):
    from pyhanko.pdf_utils.reader import PdfFileReader

    from esign import testpki
    from esign.errors import EsignError
    from verify import TrustConfig, Verifier, VerifyOptions
    from verify.limits import memory_limit
    from verify.seal import load_seal_certs, verify_seal


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pki(work: Path) -> testpki.TestPki:
    root = work / "test-pki"
    if (root / testpki.MANIFEST).is_file():
        return testpki.TestPki.open(root)
    return testpki.build(root, f"http://127.0.0.1:{_free_port()}")


def _pdf_seeds(work: Path, corpus: Path) -> None:
    """Real documents: the unsigned sample and signed variants (one per signature shape)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from esign.keysource import load_key
    from esign.pades import DocumentSigner, PadesLevel, SignOptions
    from esign.services import PkiServices

    if all((corpus / name).is_file() for name in PDF_SEEDS) and all(
        (corpus / f"regression-{found.name}").is_file() for found in REGRESSIONS.glob("*.pdf")
    ):
        return
    pki = _pki(work)
    sample = (REPO / "samples" / "certificate.pdf").read_bytes()
    seeds = {"sample.pdf": sample, "xref-stream.pdf": _rewritten(sample, encrypt=False)}
    p12 = str(pki.p12("mn-rsa", "seal"))
    with load_key(p12, password=b"esign-test") as key:
        plain = DocumentSigner(key, SignOptions(check_certificate=False))
        seeds["b-b.pdf"] = plain.sign_bytes(sample)
        seeds["xref-stream-b-b.pdf"] = plain.sign_bytes(seeds["xref-stream.pdf"])
        seeds["encrypted.pdf"] = _rewritten(sample, encrypt=True)
        # sign_bytes refuses encrypted input; the verifier opens it (empty user password).
        update = IncrementalPdfFileWriter(BytesIO(seeds["encrypted.pdf"]))
        update.encrypt("")
        seeds["encrypted-b-b.pdf"] = plain._sign_writer(update, "encrypted.pdf")
        seeds["twice.pdf"] = plain.sign_bytes(seeds["b-b.pdf"])
        certify = SignOptions(certify=True, check_certificate=False)
        seeds["certified.pdf"] = DocumentSigner(key, certify).sign_bytes(sample)
    with load_key(str(pki.p12("mn-ec", "seal")), password=b"esign-test") as key:
        services = PkiServices(pki).start()
        try:
            lt = SignOptions(level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-ec"))
            seeds["b-lt-ec.pdf"] = DocumentSigner(key, lt).sign_bytes(sample)
        finally:
            services.stop()
    assert set(seeds) == set(PDF_SEEDS)
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)
    # Past findings: small hand-made files that mutate into parser edge cases much faster.
    for found in REGRESSIONS.glob("*.pdf"):
        (corpus / f"regression-{found.name}").write_bytes(found.read_bytes())


def _rewritten(pdf: bytes, encrypt: bool) -> bytes:
    """The same document written with a cross-reference stream (the sample has an xref table),
    optionally AES-256 encrypted with an empty user password."""
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(BytesIO(pdf)))
    writer.stream_xrefs = True
    if encrypt:
        writer.encrypt("fuzz-owner", "")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _seal_seeds(corpus: Path) -> None:
    """Each vector twice: as the text a QR holds, and as the COSE bytes behind its base32."""
    for vector in sorted(SEAL_VECTORS.glob("*.json")):
        text = json.loads(vector.read_text(encoding="utf-8"))["input"]
        (corpus / f"{vector.stem}.txt").write_text(text, encoding="ascii")
        payload = text.rsplit("/", 1)[-1].upper()
        try:
            cose = base64.b32decode(payload + "=" * (-len(payload) % 8))
        except binascii.Error:
            continue
        (corpus / f"{vector.stem}.cose").write_bytes(COSE_MODE + cose)


def _seal_text(data: bytes) -> str:
    """A fuzz input as seal text. After a COSE_MODE byte the rest is COSE bytes, sent as the
    base32 payload of a seal URL: random text almost never gets past base32 into CBOR."""
    if data.startswith(COSE_MODE):
        payload = base64.b32encode(data[1:]).decode("ascii").rstrip("=")
        return f"https://verify.e-mongolia.mn/v/{payload}"
    return data.decode("utf-8", "replace")  # what a web form or QR reader hands over


class MemoryBomb(Exception):
    """The verifier answered "memory limit exceeded": no reading limit stopped this input before
    it filled the address space (the verifier turns MemoryError into that verdict itself)."""


class Findings:
    """Logs each distinct exception class once, with the input that raised it. A class is the
    exception type, where it was raised and the innermost frame of our own code on the way."""

    def __init__(self, folder: Path, keep_going: bool) -> None:
        self.folder = folder
        self.keep_going = keep_going
        self.seen: set[str] = set()

    def report(self, data: bytes, error: BaseException) -> None:
        if not self.keep_going:
            raise error
        tb = traceback.extract_tb(error.__traceback__)
        ours = [f for f in tb if Path(f.filename).parent.name in ("verify", "esign")]
        where = [f"{Path(f.filename).name}:{f.lineno}" for f in (ours[-1:] + tb[-1:])]
        key = f"{type(error).__name__}@{' via '.join(reversed(where)) or '?'}"
        if key in self.seen:
            return
        self.seen.add(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        stem = self.folder / f"{type(error).__name__}-{digest}"
        stem.with_suffix(".bin").write_bytes(data)
        text = "".join(traceback.format_exception(error))
        stem.with_suffix(".txt").write_text(f"{key}\n{text}", encoding="utf-8")
        print(f"\n== FINDING {key} -> {stem}.bin\n{text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["pdf", "seal"], default="pdf")
    parser.add_argument("--work", type=Path, default=Path("/tmp/esign-fuzz"))
    parser.add_argument("--keep-going", action="store_true")
    args, libfuzzer = parser.parse_known_args()

    work: Path = args.work
    corpus = work / f"corpus-{args.target}"
    corpus.mkdir(parents=True, exist_ok=True)
    if args.target == "pdf":
        _pdf_seeds(work, corpus)
    else:
        _seal_seeds(corpus)
    findings = Findings(work / f"findings-{args.target}", args.keep_going)

    if args.target == "pdf":
        pki = _pki(work)
        trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
        verifier = Verifier(trust, VerifyOptions(online=False))

        def one_input(data: bytes) -> None:
            try:
                report = verifier.verify_bytes(data, "fuzz.pdf")
                if memory_limit() in report.explanation.en:
                    raise MemoryBomb(report.explanation.en)
            except EsignError:
                pass
            except Exception as e:
                findings.report(data, e)

    else:
        vector_trust = TrustConfig.from_paths([SEAL_VECTORS / "pki" / "root.pem"])
        # The vector seal certificate hangs below an issuing CA: publish both, as verifiers do.
        seal_certs = load_seal_certs(
            [SEAL_VECTORS / "pki" / "seal.pem", SEAL_VECTORS / "pki" / "intermediate.pem"]
        )

        def one_input(data: bytes) -> None:
            text = _seal_text(data)
            try:
                verify_seal(text, vector_trust, seal_certs, SEAL_AT)
            except EsignError:
                pass
            except Exception as e:
                findings.report(data, e)

    logging.disable(logging.CRITICAL)  # pyHanko logs every rejected input with its traceback
    # Set after the seeds are made: a memory bomb then ends in MemoryError, not a dead machine.
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    defaults = ["-timeout=10", "-rss_limit_mb=2048"]
    given = {a.split("=")[0] for a in libfuzzer}
    flags = [d for d in defaults if d.split("=")[0] not in given]
    # Given input files or folders (e.g. a crash to re-run or minimise) replace the corpus.
    inputs = [] if any(not a.startswith("-") for a in libfuzzer) else [str(corpus)]
    atheris.Setup([sys.argv[0], *flags, *libfuzzer, *inputs], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
