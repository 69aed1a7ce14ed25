"""Hostile input never crashes or hangs the verifier, and never exhausts memory.

Each file is verified in a child process with an address-space limit (RLIMIT_AS) and a wall-clock
timeout, as a verification service would run it; the child reports its verdict and peak memory.
Every input must end in TOTAL-FAILED/FORMAT_FAILURE, or in a clean one-line InputError.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO

ADDRESS_SPACE = 2 * 2**30
"""The child's whole virtual address space: the interpreter, pyHanko, OpenSSL and the input."""
MAX_RSS_MB = 600
"""Peak resident memory allowed for one verification (imports alone take about 100 MB)."""
TIMEOUT = 60

_CHILD = """
import json, resource, sys, time
limit = int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from pathlib import Path
from esign.errors import InputError
from verify import TrustConfig, Verifier, VerifyOptions
trust = TrustConfig.from_paths([Path(sys.argv[2])], intermediates=[Path(sys.argv[3])])
verifier = Verifier(trust, VerifyOptions(online=False))
start = time.monotonic()
try:
    report = verifier.verify_file(Path(sys.argv[1]))
    out = {"indication": report.indication.value, "subindication": report.subindication,
           "explanation": report.explanation.en}
except InputError as e:
    out = {"error": type(e).__name__, "message": str(e)}
out["seconds"] = time.monotonic() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
out["maxrss_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


@dataclass
class Outcome:
    indication: str | None
    subindication: str | None
    error: str | None
    maxrss_mb: float
    raw: dict[str, object]


def judge(path: Path, pki: testpki.TestPki) -> Outcome:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(path),
            str(pki.trust_dir),
            str(pki.intermediates_dir),
            str(ADDRESS_SPACE),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, f"verifier crashed on {path.name}:\n{proc.stderr[-3000:]}"
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return Outcome(
        indication=data.get("indication"),
        subindication=data.get("subindication"),
        error=data.get("error"),
        maxrss_mb=float(data["maxrss_mb"]),
        raw=data,
    )


def assert_format_failure(outcome: Outcome, allow_input_error: bool = False) -> None:
    if allow_input_error and outcome.error is not None:
        assert outcome.error == "InputError", outcome.raw
    else:
        assert (outcome.indication, outcome.subindication) == (
            "TOTAL-FAILED",
            "FORMAT_FAILURE",
        ), outcome.raw
    assert outcome.maxrss_mb < MAX_RSS_MB, outcome.raw


@pytest.fixture(scope="module")
def signed(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    with load_key(str(pki.p12("mn-rsa", "seal")), password=b"esign-test") as key:
        data = (REPO / "samples" / "certificate.pdf").read_bytes()
        return DocumentSigner(key, SignOptions()).sign_bytes(data)


def _startxref(data: bytes) -> int:
    tail = data[data.rindex(b"startxref") :]
    return int(tail.split()[1])


def _append_revision(data: bytes, objects: dict[int, bytes], trailer_extra: bytes = b"") -> bytes:
    """A hand-written incremental update (pyHanko's writer refuses to write nonsense)."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets: dict[int, int] = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for num, off in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (num, off)
    size = max([*offsets, 100]) + 1
    prev = _startxref(data)
    out += b"trailer\n<< /Size %d /Root 2 0 R /Prev %d %s >>\n" % (size, prev, trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.timeout(180)
@pytest.mark.parametrize("fraction", [0.0005, 0.1, 0.5, 0.9, 0.999])
def test_truncated(signed: bytes, pki: testpki.TestPki, tmp_path: Path, fraction: float) -> None:
    cut = signed[: max(16, int(len(signed) * fraction))]
    assert_format_failure(judge(_write(tmp_path, "cut.pdf", cut), pki))


@pytest.mark.timeout(120)
def test_xref_prev_points_to_itself(signed: bytes, pki: testpki.TestPki, tmp_path: Path) -> None:
    data = bytearray(signed + b"\n")
    xref_at = len(data)
    data += b"xref\n0 1\n0000000000 65535 f \n"
    data += b"trailer\n<< /Size 25 /Root 2 0 R /Prev %d >>\n" % xref_at
    data += b"startxref\n%d\n%%%%EOF\n" % xref_at
    assert_format_failure(judge(_write(tmp_path, "self-prev.pdf", bytes(data)), pki))


@pytest.mark.timeout(120)
def test_xref_prev_cycle_of_two(signed: bytes, pki: testpki.TestPki, tmp_path: Path) -> None:
    data = bytearray(signed + b"\n")
    first = len(data)
    second_placeholder = b"%010d" % 0
    data += b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 25 /Root 2 0 R /Prev "
    patch_at = len(data)
    data += second_placeholder + b" >>\n"
    second = len(data)
    data += b"xref\n0 1\n0000000000 65535 f \n"
    data += b"trailer\n<< /Size 25 /Root 2 0 R /Prev %010d >>\n" % first
    data += b"startxref\n%d\n%%%%EOF\n" % second
    data[patch_at : patch_at + 10] = b"%010d" % second
    assert_format_failure(judge(_write(tmp_path, "prev-cycle.pdf", bytes(data)), pki))


@pytest.mark.timeout(120)
def test_objects_referring_to_each_other(
    signed: bytes, pki: testpki.TestPki, tmp_path: Path
) -> None:
    # The catalogue and the signature field each become a chain of bare references in a cycle,
    # and the field's /Kids contains the field itself.
    data = _append_revision(
        signed,
        {
            2: b"101 0 R",
            101: b"102 0 R",
            102: b"2 0 R",
            23: b"<< /FT /Sig /T (Signature1) /Kids [23 0 R] /V 24 0 R /P 3 0 R >>",
        },
    )
    assert_format_failure(judge(_write(tmp_path, "ref-cycle.pdf", data), pki))


@pytest.mark.timeout(120)
def test_page_tree_and_field_tree_cycles(
    signed: bytes, pki: testpki.TestPki, tmp_path: Path
) -> None:
    data = _append_revision(
        signed,
        {
            1: b"<< /Type /Pages /Kids [1 0 R 3 0 R] /Count 2 >>",
            22: b"<< /Fields [101 0 R] /SigFlags 3 >>",
            101: b"<< /T (loop) /Kids [102 0 R] >>",
            102: b"<< /T (pool) /Parent 101 0 R /Kids [101 0 R] >>",
        },
    )
    assert_format_failure(judge(_write(tmp_path, "tree-cycle.pdf", data), pki))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["trailer", "catalog", "field"])
def test_deep_nesting(signed: bytes, pki: testpki.TestPki, tmp_path: Path, where: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    if where == "trailer":
        data = _append_revision(signed, {}, trailer_extra=b"/Deep " + deep)
    elif where == "catalog":
        data = _append_revision(signed, {2: b"<< /Type /Catalog /Pages 1 0 R /Deep %s >>" % deep})
    else:
        dicts = b"<< /A " * 100_000 + b"null" + b" >>" * 100_000
        data = _append_revision(
            signed,
            {23: b"<< /FT /Sig /T (Signature1) /V 24 0 R /P 3 0 R /Deep %s >>" % dicts},
        )
    assert_format_failure(judge(_write(tmp_path, f"deep-{where}.pdf", data), pki))


@pytest.mark.timeout(180)
def test_fifty_megabytes(signed: bytes, pki: testpki.TestPki, tmp_path: Path) -> None:
    # A signed file with 50 MB of incompressible stream appended as new page content.
    blob = random.Random(50).randbytes(50 * 2**20)
    data = _append_revision(
        signed,
        {
            101: b"<< /Length %d >>\nstream\n" % len(blob) + blob + b"\nendstream",
            3: b"<< /Type /Page /Parent 1 0 R /Resources 19 0 R /Contents [4 0 R 101 0 R] "
            b"/Annots [23 0 R] >>",
        },
    )
    path = _write(tmp_path, "fifty.pdf", data)
    try:
        assert path.stat().st_size > 50 * 2**20
        assert_format_failure(judge(path, pki))
    finally:
        path.unlink()


@pytest.mark.timeout(180)
def test_flate_bomb(signed: bytes, pki: testpki.TestPki, tmp_path: Path) -> None:
    # Deflate that expands to 8 GB, appended as page content after signing.
    bomb = _deflate_bomb(8)
    data = _append_revision(
        signed,
        {
            101: b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb)
            + bomb
            + b"\nendstream",
            3: b"<< /Type /Page /Parent 1 0 R /Resources 19 0 R /Contents [4 0 R 101 0 R] "
            b"/Annots [23 0 R] >>",
        },
    )
    assert_format_failure(judge(_write(tmp_path, "bomb.pdf", data), pki))


def _deflate_bomb(gigabytes: int) -> bytes:
    """Deflate data of about ``gigabytes`` MB that expands to ``gigabytes`` GB of zeros."""
    z = zlib.compressobj(9)
    return b"".join(z.compress(b"\0" * 2**24) for _ in range(64 * gigabytes)) + z.flush()


def _xref_stream_revision(data: bytes, *, bomb_in: str) -> bytes:
    """An update with a cross-reference stream; either that stream or an object stream holding
    the new catalogue is a Deflate bomb the reader must decode to open the file."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    bomb = _deflate_bomb(1)
    objstm_at = len(out)
    out += b"101 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\n" % (
        len(bomb)
    )
    out += b"stream\n" + bomb + b"\nendstream\nendobj\n"
    xref_at = len(out)
    rows = [
        (0, 0, 65535),  # 0: free
        (2, 101, 0),  # 2: the catalogue, inside object stream 101
        (1, objstm_at, 0),  # 101
        (1, xref_at, 0),  # 102: this xref stream
    ]
    table = b"".join(
        t.to_bytes(1, "big") + a.to_bytes(4, "big") + b.to_bytes(2, "big") for t, a, b in rows
    )
    prev = _startxref(data)
    head = b"102 0 obj\n<< /Type /XRef /Size 103 /W [1 4 2] /Index [0 1 2 1 101 2] /Root 2 0 R "
    head += b"/Prev %d " % prev
    if bomb_in == "xref":
        body = bomb
        head += b"/Filter /FlateDecode "
    else:
        body = table
    out += head + b"/Length %d >>\nstream\n" % len(body) + body + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("bomb_in", ["xref", "objstm"])
def test_bombs_the_reader_must_decode(
    signed: bytes, pki: testpki.TestPki, tmp_path: Path, bomb_in: str
) -> None:
    data = _xref_stream_revision(signed, bomb_in=bomb_in)
    assert_format_failure(judge(_write(tmp_path, f"bomb-{bomb_in}.pdf", data), pki))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name,data",
    [
        ("empty", b""),
        ("text", "Энэ бол PDF биш.\n".encode() * 100),
        ("png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
        ("zip", b"PK\x03\x04" + bytes(4000)),
    ],
)
def test_not_a_pdf(pki: testpki.TestPki, tmp_path: Path, name: str, data: bytes) -> None:
    assert_format_failure(judge(_write(tmp_path, f"{name}.bin", data), pki), True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_with_pdf_header(pki: testpki.TestPki, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = b"%PDF-1.7\n" + rng.randbytes(rng.choice([100, 10_000, 1_000_000]))
    assert_format_failure(judge(_write(tmp_path, f"random-{seed}.pdf", data), pki))


@pytest.mark.timeout(60)
def test_folder_is_a_clean_input_error(pki: testpki.TestPki, tmp_path: Path) -> None:
    outcome = judge(tmp_path, pki)
    assert outcome.error == "InputError", outcome.raw
