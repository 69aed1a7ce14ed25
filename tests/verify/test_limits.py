"""Reading limits and the isolated worker: every hostile file ends in a verdict naming the limit.

The generator below writes the attacks of issue 9 as incremental updates to a genuinely signed
PDF. Each file is verified in a child process with a 1 GiB address space (RLIMIT_AS) and must
answer TOTAL-FAILED/FORMAT_FAILURE naming the limit within 10 s; the same files go through
`esign verify` (exit code 1 and the printed line). The isolated worker is then driven past its
memory, CPU and wall-clock limits, and cancelled, and must still answer a genuine file.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from verify import DocumentReport, Indication, TrustConfig, Verifier, VerifyOptions
from verify.isolate import IsolatedVerifier
from verify.limits import CpuTimeExceeded, ReadingLimits, cpu_time_limit

GiB = 2**30
SECONDS = 10.0
"""Every hostile file must be answered within this, under a 1 GiB address space."""

# ---------------------------------------------------------------------------------------------
# The hostile-input generator


def _startxref(data: bytes) -> int:
    return int(data[data.rindex(b"startxref") :].split()[1])


def _refs(signed: bytes) -> dict[str, int]:
    """Object numbers of the signed file's catalogue, page tree and first signature value."""
    reader = PdfFileReader(BytesIO(signed), strict=False)
    root = reader.trailer.raw_get("/Root")
    field = reader.root["/AcroForm"]["/Fields"][0].get_object()
    value = field.raw_get("/V")
    pages = reader.root.raw_get("/Pages")
    assert isinstance(root, generic.IndirectObject)
    assert isinstance(value, generic.IndirectObject)
    assert isinstance(pages, generic.IndirectObject)
    return {"root": root.idnum, "value": value.idnum, "pages": pages.idnum}


def _table_update(
    data: bytes, objects: dict[int, bytes], *, root: int, size: int | None = None
) -> bytes:
    """An incremental update with a classic cross-reference table."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets: dict[int, int] = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for num, off in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (num, off)
    size = size if size is not None else max([*offsets, 1000]) + 1
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (size, root, _startxref(data))
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _stream_update(
    data: bytes, *, index: bytes, widths: bytes, table: bytes, root: int, flate: bool = False
) -> bytes:
    """An incremental update whose cross-reference stream says ``index``/``widths`` over
    ``table`` (Deflate-compressed when ``flate``)."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    xref_at = len(out)
    body = zlib.compress(table, 9) if flate else table
    out += b"5000 0 obj\n<< /Type /XRef /Size 5001 /W %s /Index %s /Root %d 0 R /Prev %d " % (
        widths,
        index,
        root,
        _startxref(data),
    )
    out += b"/Filter /FlateDecode " if flate else b""
    out += b"/Length %d >>\nstream\n" % len(body) + body + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def index_bomb(signed: bytes) -> bytes:
    """Issue 9's critical file: /Index [0 2147483647] over a 7-byte table."""
    refs = _refs(signed)
    return _stream_update(
        signed,
        index=b"[0 2147483647]",
        widths=b"[1 4 2]",
        table=b"\x00\x00\x00\x00\x00\xff\xff",
        root=refs["root"],
    )


def huge_size_table(signed: bytes) -> bytes:
    """A classic table whose trailer declares two billion objects."""
    return _table_update(signed, {}, root=_refs(signed)["root"], size=2147483647)


def many_entries(signed: bytes) -> bytes:
    """1,000,100 free entries really present, in a Deflate stream of about one kilobyte."""
    n = 1_000_100
    return _stream_update(
        signed,
        index=b"[0 %d]" % n,
        widths=b"[1 0 0]",
        table=bytes(n),
        root=_refs(signed)["root"],
        flate=True,
    )


def many_revisions(signed: bytes, count: int = 2000) -> bytes:
    """``count`` empty incremental updates, each a cross-reference table pointing at the last."""
    root = _refs(signed)["root"]
    out = bytearray(signed if signed.endswith(b"\n") else signed + b"\n")
    prev = _startxref(signed)
    for _ in range(count):
        at = len(out)
        out += b"xref\n0 1\n0000000000 65535 f \n"
        out += b"trailer\n<< /Size 1001 /Root %d 0 R /Prev %d >>\n" % (root, prev)
        out += b"startxref\n%d\n%%%%EOF\n" % at
        prev = at
    return bytes(out)


def fields_sharing_one_value(signed: bytes, count: int) -> bytes:
    """``count`` signature fields whose /V all point at the one genuine signature value."""
    refs = _refs(signed)
    first = 2000
    fields = {
        first + i: b"<< /FT /Sig /T (Sig%d) /V %d 0 R /Type /Annot /Subtype /Widget "
        b"/Rect [0 0 0 0] >>" % (i, refs["value"])
        for i in range(count)
    }
    kids = b" ".join(b"%d 0 R" % n for n in fields)
    objects = {
        refs["root"]: b"<< /Type /Catalog /Pages %d 0 R /AcroForm 1999 0 R >>" % refs["pages"],
        1999: b"<< /Fields [%s] /SigFlags 3 >>" % kids,
        **fields,
    }
    return _table_update(signed, objects, root=refs["root"])


@functools.cache
def _deflate_bomb(megabytes: int) -> bytes:
    z = zlib.compressobj(9)
    return b"".join(z.compress(bytes(2**20)) for _ in range(megabytes)) + z.flush()


def xref_stream_bomb(signed: bytes) -> bytes:
    """A cross-reference stream that inflates to 128 MiB while it declares three rows."""
    refs = _refs(signed)
    out = bytearray(signed + b"\n")
    at = len(out)
    bomb = _deflate_bomb(128)
    out += (
        b"5000 0 obj\n<< /Type /XRef /Size 5001 /W [1 4 2] /Index [0 3] /Root %d 0 R "
        % (refs["root"])
    )
    out += b"/Prev %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
        _startxref(signed),
        len(bomb),
    )
    out += bomb + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at
    return bytes(out)


def object_stream_bomb(signed: bytes) -> bytes:
    """The catalogue moved into an object stream that inflates to 128 MiB."""
    refs = _refs(signed)
    out = bytearray(signed + b"\n")
    objstm_at = len(out)
    bomb = _deflate_bomb(128)
    out += b"4999 0 obj\n<< /Type /ObjStm /N 1 /First 6 /Filter /FlateDecode /Length %d >>\n" % (
        len(bomb)
    )
    out += b"stream\n" + bomb + b"\nendstream\nendobj\n"
    xref_at = len(out)
    rows = [(2, 4999, 0), (1, objstm_at, 0), (1, xref_at, 0)]
    table = b"".join(
        t.to_bytes(1, "big") + a.to_bytes(4, "big") + b.to_bytes(2, "big") for t, a, b in rows
    )
    out += b"5000 0 obj\n<< /Type /XRef /Size 5001 /W [1 4 2] /Index [%d 1 4999 2] " % refs["root"]
    out += b"/Root %d 0 R /Prev %d /Length %d >>\nstream\n" % (
        refs["root"],
        _startxref(signed),
        len(table),
    )
    out += table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


HOSTILE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "index-bomb": (
        index_bomb,
        "limit: cross-reference stream declares 2147483647 entries but holds data for 1",
    ),
    "huge-size": (huge_size_table, "limit: the trailer declares 2147483647 objects"),
    "many-entries": (many_entries, "limit: the cross-references declare more than 1000000"),
    "revisions": (many_revisions, "limit: the file has more than 300 revisions"),
    "fields-200": (
        lambda s: fields_sharing_one_value(s, 200),
        "limit: the document has more than 50 signature fields",
    ),
    "fields-20": (
        lambda s: fields_sharing_one_value(s, 20),
        "share one signature value",
    ),
    "xref-bomb": (xref_stream_bomb, "limit: decoded stream data exceeds the limit"),
    "objstm-bomb": (object_stream_bomb, "limit: decoded stream data exceeds the limit"),
}


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def signed(pki: testpki.TestPki, services: PkiServices) -> bytes:
    with load_key(str(pki.p12("mn-rsa", "seal")), password=b"esign-test") as key:
        data = (REPO / "samples" / "certificate.pdf").read_bytes()
        return DocumentSigner(key, SignOptions()).sign_bytes(data)


@pytest.fixture(scope="module")
def hostile(signed: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, (make, _) in HOSTILE.items():
        paths[name] = folder / f"{name}.pdf"
        paths[name].write_bytes(make(signed))
    return paths


@pytest.fixture(scope="module")
def trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


# ---------------------------------------------------------------------------------------------
# The library, in a child with a 1 GiB address space

_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
from pathlib import Path
from verify import TrustConfig, Verifier, VerifyOptions
trust = TrustConfig.from_paths([Path(sys.argv[1])], intermediates=[Path(sys.argv[2])])
verifier = Verifier(trust, VerifyOptions(online=False))
for path in sys.argv[3:]:
    start = time.monotonic()
    report = verifier.verify_file(Path(path))
    print(json.dumps({"file": Path(path).stem, "indication": report.indication.value,
                      "subindication": report.subindication, "explanation": report.explanation.en,
                      "seconds": time.monotonic() - start}), flush=True)
"""


@pytest.mark.timeout(180)
def test_hostile_files_end_in_a_verdict_naming_the_limit(
    hostile: dict[str, Path], pki: testpki.TestPki
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(pki.trust_dir),
            str(pki.intermediates_dir),
            *map(str, hostile.values()),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    outcomes = {o["file"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert proc.returncode == 0, f"{sorted(outcomes)} then:\n{proc.stderr[-3000:]}"
    for name, (_, limit) in HOSTILE.items():
        got = outcomes[name]
        assert (got["indication"], got["subindication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE"), got
        assert limit in got["explanation"], got
        assert got["seconds"] < SECONDS, got


_RAW_CHILD = """
import json, sys
from pathlib import Path
from verify import TrustConfig, Verifier, VerifyOptions
from verify.limits import ReadingLimits, cap_address_space
raw = ReadingLimits(xref_shortfall=2**62, max_xref_entries=2**62)
trust = TrustConfig.from_paths([Path(sys.argv[1])])
verifier = Verifier(trust, VerifyOptions(online=False, limits=raw))
cap_address_space(384 * 2**20)
report = verifier.verify_file(Path(sys.argv[2]))
print(json.dumps({"subindication": report.subindication, "explanation": report.explanation.en}))
"""


@pytest.mark.timeout(120)
def test_out_of_memory_in_process_is_a_verdict_naming_the_limit(
    hostile: dict[str, Path], pki: testpki.TestPki
) -> None:
    # Reading limits off, so that the index bomb really exhausts the address space.
    proc = subprocess.run(
        [sys.executable, "-c", _RAW_CHILD, str(pki.trust_dir), str(hostile["index-bomb"])],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["subindication"] == "FORMAT_FAILURE"
    assert got["explanation"].endswith("(memory limit 384 MiB exceeded)"), got


def test_a_genuine_file_is_within_the_limits(signed: bytes, trust: TrustConfig) -> None:
    # Tight limits that a one-signature, one-revision document still meets.
    tight = ReadingLimits(max_revisions=5, max_signatures=1, max_decoded_bytes=2**20)
    report = Verifier(trust, VerifyOptions(online=False, limits=tight)).verify_bytes(signed)
    assert report.subindication != "FORMAT_FAILURE", report.explanation.en
    assert len(report.signatures) == 1


def test_the_signature_cap_is_a_limit_not_a_bug(signed: bytes, trust: TrustConfig) -> None:
    none = ReadingLimits(max_signatures=0)
    report = Verifier(trust, VerifyOptions(online=False, limits=none)).verify_bytes(signed)
    assert report.indication is Indication.TOTAL_FAILED
    assert "limit: the document has more than 0 signature fields" in report.explanation.en


def test_cpu_time_limit_is_not_swallowed_by_except_exception() -> None:
    # `esign verify FILE` runs under this; pyHanko's `except Exception` must not eat it.
    start = time.process_time()
    limit = pytest.raises(CpuTimeExceeded, match=r"CPU time limit 0\.3 s exceeded")
    with limit, cpu_time_limit(0.3):
        while True:
            try:
                sum(range(10_000))
            except Exception:  # the shape of pyHanko's catch-alls
                continue
    assert time.process_time() - start < 2


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["index-bomb", "revisions", "fields-200", "objstm-bomb"])
def test_cli_one_hostile_file(hostile: dict[str, Path], pki: testpki.TestPki, name: str) -> None:
    start = time.monotonic()
    run = run_esign(
        "verify", str(hostile[name]), "--trust", str(pki.trust_dir), "--offline", "--lang", "en"
    )
    assert time.monotonic() - start < SECONDS
    assert run.code == 1, run
    first = run.out.splitlines()[0]
    assert first == f"{hostile[name]}: NOT VALID (TOTAL-FAILED / FORMAT_FAILURE)", run.out
    assert HOSTILE[name][1] in run.out
    assert "Traceback" not in run.err


@pytest.mark.timeout(120)
def test_cli_folder_of_hostile_files_and_a_genuine_one(
    hostile: dict[str, Path], signed: bytes, pki: testpki.TestPki, tmp_path: Path
) -> None:
    (tmp_path / "genuine.pdf").write_bytes(signed)
    for name in ("index-bomb", "many-entries", "xref-bomb"):
        (tmp_path / f"{name}.pdf").write_bytes(hostile[name].read_bytes())
    run = run_esign("verify", str(tmp_path), "--trust", str(pki.trust_dir), "--offline", "--jsonl")
    reports = {Path(r["file"]).stem: r for r in map(json.loads, run.out.splitlines())}
    assert run.code == 1, run
    for name in ("index-bomb", "many-entries", "xref-bomb"):
        assert reports[name]["subindication"] == "FORMAT_FAILURE"
        assert HOSTILE[name][1] in reports[name]["explanation"]["en"]
    assert reports["genuine"]["subindication"] != "FORMAT_FAILURE"
    assert len(reports["genuine"]["signatures"]) == 1
    assert "Traceback" not in run.err


# ---------------------------------------------------------------------------------------------
# The isolated worker

RAW = ReadingLimits(xref_shortfall=2**62, max_xref_entries=2**62)
"""Reading limits off: the index bomb then really eats memory and CPU, as an unknown attack
would, and only the worker's limits stand in its way."""


def _expected(signed: bytes, trust: TrustConfig) -> DocumentReport:
    return Verifier(trust, VerifyOptions(online=False)).verify_bytes(signed, "signed.pdf")


def _same_verdict(got: DocumentReport, want: DocumentReport) -> None:
    assert (got.indication, got.subindication) == (want.indication, want.subindication)
    assert got.signatures[0].signer == want.signatures[0].signer
    assert got.signatures[0].claimed_signing_time == want.signatures[0].claimed_signing_time


@pytest.mark.timeout(120)
def test_worker_memory_limit_and_the_other_worker_unaffected(
    hostile: dict[str, Path], signed: bytes, trust: TrustConfig
) -> None:
    bomb = hostile["index-bomb"].read_bytes()
    want = _expected(signed, trust)

    async def scenario() -> tuple[DocumentReport, DocumentReport, DocumentReport]:
        iv = IsolatedVerifier(
            trust, VerifyOptions(online=False, limits=RAW), workers=2, memory_bytes=256 * 2**20
        )
        try:
            await iv.start()
            hit, beside = await asyncio.gather(
                iv.verify(bomb, "bomb.pdf"), iv.verify(signed, "signed.pdf")
            )
            return hit, beside, await iv.verify(signed, "signed.pdf")
        finally:
            await iv.aclose()

    hit, beside, after = asyncio.run(scenario())
    assert (hit.indication, hit.subindication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert "(memory limit 256 MiB exceeded)" in hit.explanation.en
    _same_verdict(beside, want)
    _same_verdict(after, want)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "limits,named",
    [
        ({"cpu_seconds": 2}, "(CPU time limit 2 s exceeded)"),
        ({"wall_seconds": 1.5}, "(time limit 1.5 s exceeded)"),
    ],
)
def test_worker_time_limits_then_a_genuine_file(
    hostile: dict[str, Path],
    signed: bytes,
    trust: TrustConfig,
    limits: dict[str, Any],
    named: str,
) -> None:
    bomb = hostile["index-bomb"].read_bytes()
    want = _expected(signed, trust)

    async def scenario() -> tuple[DocumentReport, float, DocumentReport]:
        iv = IsolatedVerifier(trust, VerifyOptions(online=False, limits=RAW), workers=1, **limits)
        try:
            await iv.verify(signed, "signed.pdf")  # a warm worker, so only the job is timed
            start = time.monotonic()
            hit = await iv.verify(bomb, "bomb.pdf")
            took = time.monotonic() - start
            return hit, took, await iv.verify(signed, "signed.pdf")
        finally:
            await iv.aclose()

    hit, took, after = asyncio.run(scenario())
    assert (hit.indication, hit.subindication) == (Indication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert named in hit.explanation.en
    if "wall_seconds" in limits:  # CPU seconds stretch on a loaded machine; the wall clock not
        assert took < limits["wall_seconds"] + 2
    _same_verdict(after, want)


@pytest.mark.timeout(120)
def test_cancelling_the_caller_kills_its_worker(
    hostile: dict[str, Path], signed: bytes, trust: TrustConfig
) -> None:
    bomb = hostile["index-bomb"].read_bytes()
    want = _expected(signed, trust)

    async def scenario() -> tuple[int, bool, DocumentReport]:
        iv = IsolatedVerifier(trust, VerifyOptions(online=False, limits=RAW), workers=1)
        try:
            await iv.start()
            job = asyncio.create_task(iv.verify(bomb, "bomb.pdf"))
            while not iv.busy_pids:
                await asyncio.sleep(0.01)
            (pid,) = iv.busy_pids
            await asyncio.sleep(0.5)  # the worker is busy allocating entries
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            gone = not Path(f"/proc/{pid}").exists()
            return pid, gone, await iv.verify(signed, "signed.pdf")
        finally:
            await iv.aclose()

    pid, gone, after = asyncio.run(scenario())
    assert gone, f"worker {pid} still exists after its caller was cancelled"
    _same_verdict(after, want)


@pytest.mark.timeout(120)
def test_a_worker_is_kept_warm_until_it_has_used_half_its_headroom(
    signed: bytes, trust: TrustConfig
) -> None:
    """A worker answers with its address space: one well within its cap serves the next job (a
    restart costs an interpreter start and cold caches); one that has used half the headroom it
    had at its leanest (fragmentation after a large file) is replaced before it meets the cap,
    and the replacement gives the same verdict."""
    want = _expected(signed, trust)

    async def scenario() -> tuple[list[set[int]], list[DocumentReport]]:
        iv = IsolatedVerifier(trust, VerifyOptions(online=False), workers=1)
        pids, reports = [], []
        try:
            for cap in (iv.memory_bytes, iv.memory_bytes, 2**20, iv.memory_bytes):
                iv.memory_bytes = cap  # what the parent holds the answer against
                reports.append(await iv.verify(signed, "signed.pdf"))
                pids.append(iv.pids)
                iv.memory_bytes = 2**30
            return pids, reports
        finally:
            await iv.aclose()

    pids, reports = asyncio.run(scenario())
    assert pids[0] == pids[1], "a worker well within its cap is kept"
    assert pids[2] != pids[1], "a worker without headroom is replaced"
    for report in reports:
        _same_verdict(report, want)


def test_a_workers_headroom_is_measured_from_its_leanest() -> None:
    """Growth, not size, decides: a worker that needs 80 MiB under a 256 MiB cap may grow by a
    thread's arena and stack (~72 MiB) and stay; past half its headroom (88 MiB) it goes."""
    from verify.isolate import _Worker

    mib = 2**20
    worker = _Worker(cast(Any, None))
    assert worker.fresh(80 * mib, 256 * mib)
    assert worker.fresh(152 * mib, 256 * mib)
    assert not worker.fresh(169 * mib, 256 * mib)
    big = _Worker(cast(Any, None))
    assert big.fresh(120 * mib, 2**30) and big.fresh(100 * mib, 2**30)
    assert big.fresh(562 * mib, 2**30)
    assert not big.fresh(563 * mib, 2**30)
