"""Online batch verification shares its fetches (issue 13): one verifier (one worker) asks the
state's OCSP responder once per certificate and a CRL repository once per URL while the answer is
fresh, with reports equal to one-by-one online verification; a certificate revoked mid-run is seen
once the kept answer expires; a responder that does not answer costs one timeout per URL, not one
per document.

Real services on loopback: the session test PKI's OCSP responders and CRL repositories (certomancer
over HTTP), counted where they answer; a listener that accepts and never answers plays the outage.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from tests.verify.corpus import CASES, build_corpus
from verify import DocumentReport, TrustConfig, Verifier, VerifyOptions
from verify.fetch import FetchPolicy, RunFetchCache
from verify.isolate import BatchVerifier, batch_workers
from verify.render import to_json

SAMPLE = (REPO / "samples" / "certificate.pdf").read_bytes()

SIGNERS = (("mn-ec", "seal"), ("mn-ec", "seal-shsg"), ("mn-rsa", "official"))
"""Three certificates: two under one issuing CA (one CRL, two OCSP questions), one under another."""


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


def _sign(pki: testpki.TestPki, arch: str, label: str, count: int, tag: str) -> list[bytes]:
    key_file = str(pki.p12(arch, label))
    with load_key(key_file, password=testpki.P12_PASSWORD.encode()) as key:
        signer = DocumentSigner(key, SignOptions(level=PadesLevel.B_B))
        return [signer.sign_bytes(SAMPLE + f"\n% {tag} {i}\n".encode()) for i in range(count)]


@pytest.fixture(scope="module")
def inbox(pki: testpki.TestPki, services: PkiServices) -> list[bytes]:
    """B-B documents (no embedded revocation data: online, every one needs OCSP and CRLs), four
    per signer, interleaved as an inbox would have them."""
    per_signer = [_sign(pki, arch, label, 4, label) for arch, label in SIGNERS]
    return [doc for group in zip(*per_signer, strict=True) for doc in group]


def _comparable(report: DocumentReport | BaseException) -> dict[str, Any]:
    """The report without its validation time (each online document is judged at its own now)."""
    assert not isinstance(report, BaseException), report
    data: dict[str, Any] = json.loads(to_json(report))
    data.pop("validation_time")
    data.pop("file")
    return data


def _without_cause(report: dict[str, Any]) -> dict[str, Any]:
    """The report with why each fetch failed cut from its detail lines (the URLs stay)."""
    for signature in report["signatures"]:
        signature["details"] = [re.sub(r" failed: .*", " failed", d) for d in signature["details"]]
    return report


def _online(**policy: Any) -> VerifyOptions:
    return VerifyOptions(online=True, fetch_policy=FetchPolicy(**policy))


def test_a_batch_asks_once_per_certificate_with_the_reports_of_one_by_one(
    pki: testpki.TestPki, services: PkiServices, inbox: list[bytes], tmp_path: Path
) -> None:
    trust = _trust(pki)
    per_doc: list[int] = []
    alone = []
    for doc in inbox:  # a verifier per document: nothing shared
        before = services.requests_served
        alone.append(_comparable(Verifier(trust, _online()).verify_bytes(doc)))
        per_doc.append(services.requests_served - before)
    assert all(n >= 2 for n in per_doc), per_doc  # the signer's OCSP and its CA's CRL at least
    assert {r["indication"] for r in alone} == {"TOTAL-PASSED"}

    shared = Verifier(trust, _online())
    before = services.requests_served
    together = [_comparable(shared.verify_bytes(doc)) for doc in inbox]
    asked = services.requests_served - before
    assert together == alone
    # the first document of each signer asks what one-by-one asks; later ones ask nothing
    first_of_each = sum(per_doc[: len(SIGNERS)])
    assert asked <= first_of_each < sum(per_doc), (asked, per_doc)
    assert asked < len(inbox)
    assert shared.fetch_cache is not None and shared.fetch_cache.hits >= 2 * (
        len(inbox) - len(SIGNERS)
    )

    # a folder through worker processes: each worker keeps its own, so at most twice that
    folder = tmp_path / "inbox"
    folder.mkdir()
    paths = []
    for i, doc in enumerate(inbox):
        paths.append(folder / f"{i:02d}.pdf")
        paths[-1].write_bytes(doc)
    before = services.requests_served
    with BatchVerifier(trust, _online(), workers=2) as batch:
        reports = [r for _, r in batch.verify_files(paths)]
    assert services.requests_served - before <= 2 * first_of_each
    assert [_comparable(r) for r in reports] == alone


def test_esign_verify_online_folder_asks_once_per_certificate_per_worker(
    pki: testpki.TestPki, services: PkiServices, inbox: list[bytes], tmp_path: Path
) -> None:
    """`esign verify --online FOLDER` in a child process: its workers ask the responders at
    most once per certificate each, not once per file, and every file passes."""
    trust = _trust(pki)
    first_of_each = 0
    for doc in inbox[: len(SIGNERS)]:
        before = services.requests_served
        Verifier(trust, _online()).verify_bytes(doc)
        first_of_each += services.requests_served - before
    for i, doc in enumerate(inbox):
        (tmp_path / f"{i:02d}.pdf").write_bytes(doc)
    before = services.requests_served
    run = run_esign("verify", str(tmp_path), "--online", "--trust", str(pki.trust_dir), "--jsonl")
    asked = services.requests_served - before
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [line["indication"] for line in lines] == ["TOTAL-PASSED"] * len(inbox), run.err
    workers = batch_workers()  # the child's: one per CPU, at most 8
    assert asked <= workers * first_of_each, (asked, workers, first_of_each)
    if workers * len(SIGNERS) < len(inbox):  # some worker meets a signer twice
        assert asked < len(inbox) * first_of_each / len(SIGNERS)


def test_without_reuse_every_document_asks(
    pki: testpki.TestPki, services: PkiServices, inbox: list[bytes]
) -> None:
    """reuse_seconds=0 is one-by-one fetching inside one verifier (what bench compares)."""
    verifier = Verifier(_trust(pki), _online(reuse_seconds=0))
    before = services.requests_served
    for doc in inbox[:3]:
        verifier.verify_bytes(doc)
    assert services.requests_served - before >= 2 * 3
    assert verifier.fetch_cache is not None and len(verifier.fetch_cache) == 0


@pytest.fixture(scope="module")
def corpus(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    return build_corpus(pki, services, SAMPLE, tmp_path_factory.mktemp("fetch-corpus"))


def test_online_reports_equal_one_by_one_on_the_corpus(
    pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    """The whole attack corpus online, each file at its own now: one verifier for all (both
    orders, so every file meets a warm cache) gives each file's lone report."""
    trust = _trust(pki)
    paths = [corpus[c.name] for c in CASES]
    alone = [_comparable(Verifier(trust, _online()).verify_file(p)) for p in paths]
    for order in (paths, paths[::-1]):
        shared = Verifier(trust, _online())
        reports = {p: _comparable(shared.verify_file(p)) for p in order}
        assert [reports[p] for p in paths] == alone
        assert shared.fetch_cache is not None and shared.fetch_cache.hits > len(paths)
    verdicts = {r["indication"] for r in alone}
    assert {"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"} <= verdicts, verdicts


def test_a_certificate_revoked_mid_run_is_seen_once_the_kept_answer_expires(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    """The state revokes seal-ndeg while a run is under way: documents verified while the kept
    "good" answer is fresh pass, the first one after it expires asks again and is revoked."""
    docs = _sign(pki, "mn-ec", "seal-ndeg", 3, "ndeg")
    # building the services takes ~4 s (certomancer re-derives the PKI); the revocation follows
    revoked_since = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    copy = tmp_path / "pki"
    shutil.copytree(pki.root, copy)
    spec = copy / testpki.SPEC_FILE
    raw = yaml.safe_load(spec.read_text(encoding="utf-8"))
    certs = raw["pki-architectures"]["mn-rsa"]["certs"]
    certs["seal-ndeg"] = {  # its own dict: the YAML shares one with seal (an alias)
        **certs["seal-ndeg"],
        "revocation": {
            "revoked-since": revoked_since.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "reason": "key_compromise",
        },
    }
    spec.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    trust = _trust(pki)
    verifier = Verifier(trust, _online(reuse_seconds=1.5))
    revoking = PkiServices(testpki.TestPki(root=copy, url=pki.url))
    services.stop()
    try:
        revoking.start()
        first = verifier.verify_bytes(docs[0])
        assert datetime.now(UTC) < revoked_since - timedelta(seconds=1), "too slow to test"
        asked = revoking.requests_served
        second = verifier.verify_bytes(docs[1])
        assert revoking.requests_served == asked, "the second document is answered from the run"
        assert first.indication.value == second.indication.value == "TOTAL-PASSED"
        time.sleep(max(0.0, (revoked_since - datetime.now(UTC)).total_seconds()) + 0.3)
        third = verifier.verify_bytes(docs[2])
        assert revoking.requests_served > asked, "the expired answer is asked for again"
        assert third.indication.value == "INDETERMINATE"
        assert third.signatures[0].subindication == "REVOKED_NO_POE"
        assert _comparable(third) == _comparable(Verifier(trust, _online()).verify_bytes(docs[2]))
    finally:
        revoking.stop()
        services.start()


class _BlackHole:
    """A loopback listener that accepts connections and never answers (a hung responder)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self.sock.close()


def test_a_responder_outage_costs_one_timeout_per_url_not_per_document(
    pki: testpki.TestPki, services: PkiServices, inbox: list[bytes]
) -> None:
    """Every document gets the verdict a lone verifier gives during the outage (INDETERMINATE,
    its detail naming the URL and the timeout), but only the first to need a URL asks it; the
    rest are told at once, so the run takes a timeout per URL, not one per document."""
    trust = _trust(pki)
    policy: dict[str, Any] = {"per_request_timeout": 0.5}
    services.stop()
    hole = _BlackHole(services.host, services.port)
    try:
        # a lone verifier per signer (each pays its timeout), twice for the first signer
        lone = [
            _comparable(Verifier(trust, _online(**policy)).verify_bytes(d))
            for d in [*inbox[: len(SIGNERS)], inbox[len(SIGNERS)]]
        ]
        hole.connections = 0
        verifier = Verifier(trust, _online(**policy))
        started = time.monotonic()
        reports = [_comparable(verifier.verify_bytes(d)) for d in inbox]
        elapsed = time.monotonic() - started
        connections = hole.connections
    finally:
        hole.close()
        services.start()
    for report in [*lone, *reports]:
        assert report["indication"] == "INDETERMINATE"
        detail = " ".join(report["signatures"][0]["details"])
        assert f"{pki.url}/" in detail and re.search(r"timed out|no answer within", detail), detail
    # which timeout fires first (the socket's, the thread's) varies on a busy machine, alone too
    lone = [_without_cause(r) for r in lone]
    assert lone[0] == lone[-1]
    assert [_without_cause(r) for r in reports] == [
        lone[i % len(SIGNERS)] for i in range(len(inbox))
    ]
    # each distinct URL once (the two roots' CRLs, perhaps an OCSP URL), not once per document
    assert 1 <= connections <= len(SIGNERS) < len(inbox), connections
    one_timeout = 2 * policy["per_request_timeout"]
    assert elapsed < connections * one_timeout + 0.25 * len(inbox), elapsed


def test_a_quick_failure_is_not_remembered(
    pki: testpki.TestPki, services: PkiServices, inbox: list[bytes]
) -> None:
    """A refused connection costs nothing to repeat, so it is not remembered: the document
    verified while the services are down gets the lone verdict, the next one, after they are
    back, passes, as one-by-one verification would."""
    trust = _trust(pki)
    verifier = Verifier(trust, _online())
    services.stop()
    try:
        down = _comparable(verifier.verify_bytes(inbox[0]))
        lone = _comparable(Verifier(trust, _online()).verify_bytes(inbox[0]))
    finally:
        services.start()
    back = verifier.verify_bytes(inbox[1])
    assert down == lone and down["indication"] == "INDETERMINATE"
    assert back.indication.value == "TOTAL-PASSED"
    assert verifier.fetch_cache is not None and verifier.fetch_cache.failure_hits == 0


def test_answers_are_kept_while_fresh_and_within_bounds() -> None:
    """RunFetchCache alone: nextUpdate, the caps, the size bounds and the failure memo."""
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    cache = RunFetchCache(FetchPolicy(reuse_seconds=10, reuse_without_next_update=0.3))
    cache.keep(("crl", "a"), "fresh", soon, 10)
    cache.keep(("crl", "b"), "no next update", None, 10)
    cache.keep(("crl", "c"), "stale", datetime.now(UTC) - timedelta(seconds=1), 10)
    cache.keep(("crl", "d"), "long", datetime.now(UTC) + timedelta(days=7), 10)
    assert cache.answer(("crl", "a")) == "fresh"
    assert cache.answer(("crl", "b")) == "no next update"
    assert cache.answer(("crl", "c")) is None
    time.sleep(0.35)
    assert cache.answer(("crl", "a")) is None
    assert cache.answer(("crl", "b")) is None
    assert cache.answer(("crl", "d")) == "long"  # until reuse_seconds, not its nextUpdate

    small = RunFetchCache(FetchPolicy(), max_entries=2, max_bytes=100)
    week = datetime.now(UTC) + timedelta(days=7)
    for name in "xyz":
        small.keep(("crl", name), name, week, 10)
    assert len(small) == 2 and small.answer(("crl", "x")) is None  # least recently used went
    small.keep(("crl", "big"), "big", week, 95)
    assert small.answer(("crl", "big")) == "big" and len(small) == 1
    small.keep(("crl", "huge"), "huge", week, 101)
    assert small.answer(("crl", "huge")) is None

    failures = RunFetchCache(FetchPolicy(failure_seconds=0.2))
    failures.failed("http://ocsp.example/", "Read timed out.")
    assert failures.failure("http://ocsp.example/") == "Read timed out."
    assert failures.failure("http://other.example/") is None
    time.sleep(0.25)
    assert failures.failure("http://ocsp.example/") is None
    never = RunFetchCache(FetchPolicy(failure_seconds=0))
    never.failed("http://ocsp.example/", "Read timed out.")
    assert never.failure("http://ocsp.example/") is None
