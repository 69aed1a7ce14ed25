"""A folder verified by the batch path (worker processes, all busy, each with its own warm
verifier, shared name table and path cache) gets, file for file, the report one-by-one
verification gives (a verifier per file, nothing shared):
on the whole attack corpus (tests/verify/corpus.py), offline and online, at one validation
time, and through the CLI."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import shutil
import sys
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from esign import testpki
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from tests.verify.corpus import CASES, build_corpus
from verify import DocumentReport, TrustConfig, Verifier, VerifyOptions
from verify.isolate import BatchVerifier
from verify.render import to_json


@pytest.fixture(scope="module")
def corpus(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    sample = (REPO / "samples" / "certificate.pdf").read_bytes()
    return build_corpus(pki, services, sample, tmp_path_factory.mktemp("batch-corpus"))


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


def _comparable(report_json: str) -> dict[str, Any]:
    """The report, with each detail line as its sorted words: pyHanko lists some sets (e.g. the
    paths of a changed object) in hash order, which differs between any two processes."""
    report = json.loads(report_json)
    for signature in report["signatures"]:
        signature["details"] = [sorted(re.findall(r"\w+", d)) for d in signature["details"]]
    return cast(dict[str, Any], report)


def _moment() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_batch_reports_equal_one_by_one_on_the_corpus(
    online: bool, pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    options = VerifyOptions(online=online, at=_moment())
    paths = [corpus[c.name] for c in CASES]
    # one by one: a verifier per file, so nothing is shared between documents
    alone = [_comparable(to_json(Verifier(_trust(pki), options).verify_file(p))) for p in paths]
    # one verifier for the corpus, both ways round: its path cache (verify/pathcache.py) warm
    for order in (paths, paths[::-1]):
        shared = Verifier(_trust(pki), options)
        reports = {p: _comparable(to_json(shared.verify_file(p))) for p in order}
        assert [reports[p] for p in paths] == alone
    with BatchVerifier(_trust(pki), options, workers=2) as batch:
        assert batch.workers == 2
        together = list(batch.verify_files(paths))
    assert [p for p, _ in together] == paths, "reports come back in the order given"
    for (path, report), expected in zip(together, alone, strict=True):
        assert not isinstance(report, BaseException), (path, report)
        assert _comparable(to_json(report)) == expected, path.name
    verdicts = {r["indication"] for r in alone}
    assert {"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"} <= verdicts, verdicts


def test_an_offline_folder_run_is_judged_as_of_its_start(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """Without --at, an offline folder run validates every file at one "now" (so the workers'
    path caches are keyed by one time), each report equal to a lone verifier's at that now."""
    paths = [corpus[c.name] for c in CASES]
    with BatchVerifier(_trust(pki), VerifyOptions(online=False), workers=2) as batch:
        together = list(batch.verify_files(paths))
    reports = [r for _, r in together if isinstance(r, DocumentReport)]
    assert len(reports) == len(paths)
    moments = {r.validation_time for r in reports}
    assert len(moments) == 1, moments
    options = VerifyOptions(online=False, run_moment=moments.pop())
    for path, report in zip(paths, reports, strict=True):
        alone = Verifier(_trust(pki), options).verify_file(path)
        assert _comparable(to_json(report)) == _comparable(to_json(alone)), path.name


def test_cli_folder_lines_equal_one_file_runs(
    pki: testpki.TestPki, corpus: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    picked = [c.name for c in CASES][:: max(1, len(CASES) // 6)]
    for name in picked:
        shutil.copy(corpus[name], folder / f"{name}.pdf")
    (folder / "unreadable.pdf").mkdir()  # a folder named .pdf: an error line, not a crash
    at = ["--at", _moment().isoformat(), "--offline", "--trust", str(pki.trust_dir)]
    batch = run_esign("verify", str(folder), *at, "--jsonl")
    lines = [json.loads(line) for line in batch.out.splitlines()]
    assert [Path(d["file"]).stem for d in lines] == sorted(picked), batch.err
    for expected in lines:
        one = run_esign("verify", expected["file"], *at, "--json")
        assert _comparable(one.out) == _comparable(json.dumps(expected)), expected["file"]


def _same_named_forgery(genuine: Any, folder: Path) -> tuple[Path, Path]:
    """A key and a certificate that copies the genuine seal certificate's subject, issuer,
    serial number, validity and extensions (key identifiers included), signed by a key of our
    own: equal to the genuine one by every name, different in content."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    real = cx509.load_der_x509_certificate(genuine.dump())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        cx509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.issuer)
        .serial_number(real.serial_number)
        .not_valid_before(real.not_valid_before_utc)
        .not_valid_after(real.not_valid_after_utc)
        .public_key(key.public_key())
    )
    for ext in real.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    forged = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    key_path, cert_path = folder / "forged.key.pem", folder / "forged.cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_a_same_named_certificate_gets_its_own_verdict_not_the_cached_one(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    """Validations are cached by content (verify/pathcache.py): a B-LT batch from one signer
    shares its path and revocation data (the signer reuses them, esign/pades.py), and a
    document whose certificate has the genuine one's names, serial number and key identifiers,
    carrying the genuine documents' OCSP response and CRLs, is still judged on its own."""
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.ades import _dss_to_local_knowledge
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    from esign.keysource import load_key
    from esign.pades import DocumentSigner, PadesLevel, SignOptions

    base = (REPO / "samples" / "certificate.pdf").read_bytes()
    seal = load_key(str(pki.p12("mn-ec", "seal")), password=testpki.P12_PASSWORD.encode())
    genuine = DocumentSigner(seal, SignOptions(level=PadesLevel.B_LT, tsa_url=pki.tsa_url("mn-ec")))
    files = []
    for i in range(3):
        files.append(tmp_path / f"genuine-{i}.pdf")
        files[-1].write_bytes(genuine.sign_bytes(base + f"\n% item {i}\n".encode()))
    key_path, cert_path = _same_named_forgery(seal.signing_cert, tmp_path)
    rogue = DocumentSigner(
        load_key(str(key_path), cert=cert_path),
        SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url("mn-ec"), check_certificate=False),
    )
    forged = rogue.sign_bytes(base + b"\n% forged\n")
    dss = _dss_to_local_knowledge(PdfFileReader(BytesIO(files[0].read_bytes())))
    signature = PdfFileReader(BytesIO(forged)).embedded_signatures[0]
    out = BytesIO(forged)
    DocumentSecurityStore.add_dss(
        out,
        signature.pkcs7_content,
        certs=list(dss.known_certs),
        ocsps=[o.ocsp_response_data for o in dss.known_ocsps],
        crls=[c.crl_data for c in dss.known_crls],
    )
    files.append(tmp_path / "forged.pdf")
    files[-1].write_bytes(out.getvalue())
    options = VerifyOptions(online=False, at=_moment())

    def fresh(path: Path) -> dict[str, Any]:
        return _comparable(to_json(Verifier(_trust(pki), options).verify_file(path)))

    alone = {p: fresh(p) for p in files}
    assert [alone[p]["indication"] for p in files[:3]] == ["TOTAL-PASSED"] * 3
    assert alone[files[3]]["indication"] != "TOTAL-PASSED", alone[files[3]]
    for order in (files, files[::-1], [files[0], files[3], files[1], files[3]]):
        verifier = Verifier(_trust(pki), options)
        for path in order:
            assert _comparable(to_json(verifier.verify_file(path))) == alone[path], path.name
        assert verifier.path_cache.hits > 0, "the genuine documents share their validations"


def test_a_verifier_collects_each_documents_garbage_when_it_is_done(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """A document's reader and everything it parsed are cycles; the verifier collects them when
    the document is done (verify/pdf.py _document_garbage), instead of leaving them to wait in
    the oldest generation for a full collection, and leaves the collector's thresholds as found."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    verifier = Verifier(_trust(pki), VerifyOptions(online=False, at=_moment()))
    threshold = gc.get_threshold()
    gc.collect()
    for _ in range(3):
        assert verifier.verify_file(corpus["valid-B-LT"]).indication.value == "TOTAL-PASSED"
    assert gc.get_threshold() == threshold
    assert not [o for o in gc.get_objects() if isinstance(o, PdfFileReader)]


def test_a_verifier_reports_the_same_from_another_thread(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """Documents run on one kept event loop in the thread that built the verifier; any other
    thread gets a loop of its own per document (asyncio.run), with the same reports."""
    verifier = Verifier(_trust(pki), VerifyOptions(online=False, at=_moment()))
    paths = [corpus[c.name] for c in CASES[:: max(1, len(CASES) // 8)]]
    here = [_comparable(to_json(verifier.verify_file(p))) for p in paths]
    with ThreadPoolExecutor(2) as pool:
        there = list(pool.map(lambda p: _comparable(to_json(verifier.verify_file(p))), paths))
    assert there == here
    assert [_comparable(to_json(verifier.verify_file(p))) for p in paths] == here


def test_a_verifier_dropped_inside_another_event_loop_goes_quietly(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """The kept event loop is closed when its verifier is collected, wherever that happens:
    here inside another loop, where running the kept one (to end it as asyncio.run does) is
    not allowed."""
    verifiers = [Verifier(_trust(pki), VerifyOptions(online=False, at=_moment()))]
    verifiers[0].verify_file(corpus["valid-B-LT"])
    gone = weakref.ref(verifiers[0])
    unraisable: list[Any] = []

    async def drop() -> None:
        verifiers.clear()
        gc.collect()

    hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        asyncio.run(drop())
    finally:
        sys.unraisablehook = hook
    assert gone() is None
    assert not unraisable, [u.exc_value for u in unraisable]


def test_a_batch_stopped_early_serves_the_next_one(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """The folder path keeps a window of files in flight; a caller that stops reading the
    reports has the rest cancelled, and the same batch verifier then serves a new run in full."""
    paths = [corpus[c.name] for c in CASES]
    options = VerifyOptions(online=False, at=_moment())
    with BatchVerifier(_trust(pki), options, workers=2) as batch:
        reports = batch.verify_files(paths)
        first = next(reports)
        reports.close()
        again = list(batch.verify_files(paths[:6]))
    assert first[0] == paths[0] and isinstance(first[1], DocumentReport)
    assert [p for p, _ in again] == paths[:6]
    for path, report in again:
        assert isinstance(report, DocumentReport), (path, report)
        alone = Verifier(_trust(pki), options).verify_file(path)
        assert _comparable(to_json(report)) == _comparable(to_json(alone)), path.name
