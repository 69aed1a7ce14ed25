"""`esign serve` under attack over real sockets (issue 9): bodies are capped while they stream and
agency routes refuse before reading; per-client rate limits; uploads have their own bounded lane
in killable worker processes, so the citizens' seal page keeps answering; a client that leaves
stops its verification.

One server of its own, with small limits: 10 MiB uploads, 5 uploads and 5 API calls a minute per
client, one upload worker and one waiting place. Each test speaks from its own loopback address
(127.0.0.x), so the per-address limits of one test do not spill into another.
"""

from __future__ import annotations

import os
import select
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.errors import InputError
from esign.keysource import load_key
from esign.pades import DocumentSigner, SignOptions
from esign.services import PkiServices
from tests.conftest import REPO, free_port
from tests.web.conftest import WebServer, sample_data, start_server, stop_server, write_config
from verify.web.config import load_config

MiB = 2**20
BODY = 300 * 10**6
"""What the attacker sends: generated while sending, never held in memory on either side."""

LIMITS = """
[limits]
upload_rate = "5/minute"
api_rate = "5/minute"
upload_workers = 1
upload_queue = 1
"""


@dataclass(frozen=True)
class Served:
    web: WebServer
    pid: int
    port: int


def serve(pki: testpki.TestPki, folder: Path, limits: str) -> Iterator[Served]:
    port = free_port()
    key_a, key_b = "key-a-" + os.urandom(12).hex(), "key-b-" + os.urandom(12).hex()
    config, registry_url = write_config(pki, folder, port, key_a, key_b)
    text = config.read_text(encoding="utf-8").replace("max_upload_mb = 1\n", "max_upload_mb = 10\n")
    config.write_text(text + limits, encoding="utf-8")
    proc = start_server(config, port, log=folder / "server.log")
    try:
        yield Served(WebServer(f"http://127.0.0.1:{port}", registry_url, config, key_a, key_b),
                     proc.pid, port)  # fmt: skip
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def served(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    yield from serve(pki, tmp_path_factory.mktemp("web-security"), LIMITS)


@pytest.fixture(scope="module")
def served_1s_cpu(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A server whose upload worker may use 1 s of CPU per upload."""
    limits = LIMITS + "upload_cpu_seconds = 1\n"
    yield from serve(pki, tmp_path_factory.mktemp("web-security-cpu"), limits)


@pytest.fixture(scope="module")
def signed_pdf(pki: testpki.TestPki, services: PkiServices) -> bytes:
    with load_key(str(pki.p12("mn-rsa", "seal")), password=testpki.P12_PASSWORD.encode()) as key:
        return DocumentSigner(key, SignOptions()).sign_bytes(
            (REPO / "samples" / "certificate.pdf").read_bytes()
        )


@pytest.fixture(scope="module")
def hostile_pdf(signed_pdf: bytes) -> bytes:
    """A signed PDF plus one incremental update of 200,000 tiny objects (9.9 MiB, under the
    10 MiB cap, within the reading limits): over 2 s of a warm worker's CPU per upload."""
    return hostile_update(signed_pdf, 200_000)


def hostile_update(signed: bytes, count: int) -> bytes:
    tail = signed[signed.rindex(b"startxref") :]
    prev = int(tail.split()[1])
    out = bytearray(signed if signed.endswith(b"\n") else signed + b"\n")
    offsets = []
    for i in range(count):
        offsets.append(len(out))
        out += b"%d 0 obj\n[%d 0 R]\nendobj\n" % (1000 + i, 1001 + i)
    xref_at = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n%d %d\n" % (1000, count)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 2 0 R /Prev %d >>\n" % (1000 + count, prev)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


# --- raw HTTP: what an attacker's socket does ---------------------------------------------------


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(sock: socket.socket, timeout: float = 10) -> tuple[int, str]:
    """The status and head of the response, or (0, reason) if the connection died first."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, TimeoutError) as e:
        return 0, type(e).__name__
    if not data.startswith(b"HTTP/1.1 "):
        return 0, data[:100].decode(errors="replace")
    return int(data.split()[1]), data.decode(errors="replace")


@dataclass
class Probe:
    status: int
    sent: int
    peak_rss: int


def probe(served: Served, source: str, path: str, chunked: bool, multipart: bool) -> Probe:
    """POST a 300 MB body from a generator; stop sending once the server answers or closes."""
    headers = {"Content-Type": "application/pdf"}
    prefix = b""
    if multipart:
        headers["Content-Type"] = "multipart/form-data; boundary=xx"
        prefix = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(BODY)
    sock = connect(served.port, source)
    sent, peak = 0, rss(served.pid)[0]
    block = b"0" * (64 * 1024)
    try:
        sock.sendall(head(path, headers))
        first = True
        while sent < BODY:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = prefix + block if first else block
            first = False
            frame = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
            if sent % (16 * MiB) < len(data):
                peak = max(peak, rss(served.pid)[0])
        status, _ = status_of(sock)
    finally:
        sock.close()
    return Probe(status, sent, max(peak, rss(served.pid)[0]))


def rss(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (the peak) of ``pid``, in bytes."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


# --- body limits --------------------------------------------------------------------------------


ROUTES = [
    ("/api/v1/issue", False, 401),
    ("/api/v1/documents/AAAAA-AAAAA/revoke", False, 401),
    ("/api/v1/verify", False, 413),
    ("/verify", True, 413),
]


def test_300_mb_bodies_cost_the_server_under_50_mb(served: Served) -> None:
    """Each route, with a declared Content-Length and chunked (no length to refuse by): the
    answer comes long before 300 MB are sent, and the server's memory barely moves."""
    httpx.get(f"{served.web.url}/healthz")
    rss_before, hwm_before = rss(served.pid)
    results = {}
    for n, (path, multipart, status) in enumerate(ROUTES):
        for chunked in (False, True):
            source = f"127.0.0.{10 + 2 * n + chunked}"
            got = probe(served, source, path, chunked, multipart)
            results[path, chunked] = got
            assert got.status == status, (path, chunked, got)
            assert got.sent < 64 * MiB, (path, chunked, got)
    rss_after, hwm_after = rss(served.pid)
    peak = max(p.peak_rss for p in results.values())
    assert peak - rss_before < 50 * 10**6, (rss_before, results)
    assert hwm_after - hwm_before < 50 * 10**6, (hwm_before, hwm_after)
    assert rss_after - rss_before < 50 * 10**6


@pytest.mark.parametrize(
    ("path", "auth", "status"),
    [
        ("/api/v1/issue", None, 401),
        ("/api/v1/issue", "Bearer not-a-key", 401),
        ("/api/v1/documents/X/revoke", None, 401),
        ("/api/v1/sign?key=seal-a", "Basic YWdlbmN5LWE6eA==", 401),
        ("/api/v1/verify", None, 413),  # declared over the cap: refused on the headers alone
        ("/api/v1/issue", "agency-a", 413),  # a JSON route: 1 MiB
    ],
)
def test_refused_on_headers_before_any_body_byte(
    served: Served, path: str, auth: str | None, status: int
) -> None:
    """The body never comes: a server that waited for it before answering would time out."""
    headers = {"Content-Type": "application/json", "Content-Length": str(BODY)}
    if auth == "agency-a":
        headers["Authorization"] = f"Bearer {served.web.key_a}"
    elif auth:
        headers["Authorization"] = auth
    sock = connect(served.port, "127.0.0.30")
    try:
        sock.sendall(head(path, headers))
        got, text = status_of(sock, timeout=5)
    finally:
        sock.close()
    assert got == status, text
    if status == 401:
        assert "www-authenticate: bearer" in text.lower()


# --- rate limits --------------------------------------------------------------------------------


def test_uploads_rate_limited_per_client_seal_pages_not(served: Served) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.40")
    with httpx.Client(base_url=served.web.url, transport=transport, timeout=60) as c:
        answers = [c.post("/api/v1/verify", content=b"not a pdf") for _ in range(6)]
        codes = [r.status_code for r in answers]
        assert 429 not in codes[:5] and codes[5] == 429, codes
        retry = int(answers[-1].headers["retry-after"])
        assert 1 <= retry <= 60
        form = c.post("/verify", files={"file": ("a.pdf", b"%PDF-1.7", "application/pdf")})
        assert form.status_code == 429  # one budget for both upload routes
        seals = [c.get("/api/v1/seals/not-a-seal").status_code for _ in range(30)]
        assert set(seals) == {200}, seals
        assert c.get("/healthz").status_code == 200
    other = httpx.HTTPTransport(local_address="127.0.0.41")
    with httpx.Client(base_url=served.web.url, transport=other, timeout=60) as c:
        assert c.post("/api/v1/verify", content=b"not a pdf").status_code == 200


def test_api_rate_limited_per_api_key(served: Served) -> None:
    auth = served.web.auth_b
    body = {"template": "residence", "key": "seal-b", "data": sample_data()}
    with httpx.Client(base_url=served.web.url, timeout=60) as c:
        codes = [c.post("/api/v1/issue", json=body, headers=auth).status_code for _ in range(6)]
        assert codes == [403] * 5 + [429]
        # Guessing keys is limited by address.
        transport = httpx.HTTPTransport(local_address="127.0.0.42")
        with httpx.Client(base_url=served.web.url, transport=transport, timeout=60) as guess:
            wrong = {"Authorization": "Bearer guess"}
            codes = [guess.post("/api/v1/issue", json=body, headers=wrong).status_code
                     for _ in range(6)]  # fmt: skip
        assert codes == [401] * 5 + [429]


# --- the upload lane ----------------------------------------------------------------------------


def send_upload(served: Served, source: str, data: bytes, form: bool = False) -> socket.socket:
    """A whole POST /api/v1/verify (or the upload form's POST /verify), its answer not read:
    the upload is now the server's."""
    sock = connect(served.port, source)
    if form:
        data = (
            b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n" + data + b"\r\n--xx--\r\n"
        )
        headers = {"Content-Type": "multipart/form-data; boundary=xx"}
    else:
        headers = {"Content-Type": "application/pdf"}
    headers["Content-Length"] = str(len(data))
    sock.sendall(head("/verify" if form else "/api/v1/verify", headers) + data)
    return sock


def workers(pid: int) -> dict[int, int]:
    """The server's child processes and the CPU ticks each has used."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    ticks = {}
    for child in children:
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks[child] = int(fields[11]) + int(fields[12])
    return ticks


def settled(pid: int, within: float = 20) -> None:
    """Wait until the upload workers are up and idle (a replaced worker warms up for a while:
    taken for the busy one, it would fool the tests below)."""
    deadline = time.monotonic() + within
    before = workers(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = workers(pid)
        if now and all(t - before.get(c, 0) <= 1 for c, t in now.items()):
            return
        before = now
    raise AssertionError(f"the upload workers did not settle: {workers(pid)}")


def busy_worker(pid: int, within: float = 10) -> int:
    """The child process that is burning CPU now (an idle worker uses none)."""
    deadline = time.monotonic() + within
    before = workers(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = workers(pid)
        busy = [c for c, t in now.items() if t - before.get(c, t) >= 3]  # 10% of a core
        if busy:
            return busy[0]
        before = now
    raise AssertionError(f"no upload worker got busy: {workers(pid)}")


def test_cpu_limit_is_a_verdict_naming_it_and_the_worker_is_replaced(
    served_1s_cpu: Served, hostile_pdf: bytes, signed_pdf: bytes
) -> None:
    with httpx.Client(base_url=served_1s_cpu.web.url, timeout=60) as c:
        started = time.monotonic()
        r = c.post("/api/v1/verify", content=hostile_pdf)
        assert r.status_code == 200, r.text
        report = r.json()
        assert (report["indication"], report["subindication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE")
        assert "CPU time limit 1 s" in str(report), report
        assert time.monotonic() - started < 10
        good = c.post("/api/v1/verify", content=signed_pdf)
        assert good.status_code == 200 and good.json()["indication"] == "TOTAL-PASSED", good.text


@pytest.mark.parametrize("form", [False, True], ids=["api", "upload-form"])
def test_client_leaving_kills_its_verification(
    served: Served, hostile_pdf: bytes, form: bool
) -> None:
    settled(served.pid)
    sock = send_upload(served, f"127.0.0.{50 + form}", hostile_pdf, form)
    worker = busy_worker(served.pid)
    sock.close()
    deadline = time.monotonic() + 5
    while worker in workers(served.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker not in workers(served.pid), "the worker kept running after the client left"


def test_full_upload_queue_is_503_and_seal_page_keeps_answering(
    served: Served, hostile_pdf: bytes
) -> None:
    """One worker busy with a hostile upload, one more waiting: a third upload is 503 with
    Retry-After at once, and the seal page answers as fast as ever."""
    issued = httpx.post(
        f"{served.web.url}/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data()},
        headers=served.web.auth_a,
        timeout=120,
    )
    assert issued.status_code == 200, issued.text
    seal = "/V/" + issued.headers["x-seal-url"].split("/V/", 1)[1]
    with httpx.Client(base_url=served.web.url, timeout=30) as c:
        assert "ЖИНХЭНЭ" in c.get(seal).text
        quiet = timed_gets(c, seal, 20)
        settled(served.pid)
        running = [send_upload(served, f"127.0.0.{60 + i}", hostile_pdf) for i in range(2)]
        try:
            busy_worker(served.pid)
            transport = httpx.HTTPTransport(local_address="127.0.0.62")
            with httpx.Client(base_url=served.web.url, transport=transport, timeout=30) as third:
                started = time.monotonic()
                r = third.post("/api/v1/verify", content=hostile_pdf)
                assert r.status_code == 503, r.text
                assert time.monotonic() - started < 5
                assert int(r.headers["retry-after"]) >= 1
            loaded = timed_gets(c, seal, 20)
            page = c.get(seal)
            assert page.status_code == 200 and "ЖИНХЭНЭ" in page.text
        finally:
            for sock in running:
                sock.close()
    assert max(loaded) < 2.0, (quiet, loaded)
    assert statistics.median(loaded) < max(0.1, 5 * statistics.median(quiet)), (quiet, loaded)


def timed_gets(c: httpx.Client, path: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.monotonic()
        assert c.get(path).status_code == 200
        times.append(time.monotonic() - started)
    return times


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('upload_rate = "lots"', "[limits] upload_rate: 'lots' is not a rate"),
        ("upload_workers = 0", "[limits] upload_workers: Input should be greater than or equal"),
        ("upload_qeue = 3", "unknown setting [limits] upload_qeue"),
    ],
)
def test_limits_misconfigured_stop_the_server_at_start(
    tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f"[limits]\n{table}\n", encoding="utf-8")
    with pytest.raises(InputError) as refused:
        load_config(config)
    assert message in str(refused.value)


def test_sample_configuration_sets_the_limits() -> None:
    config = load_config(REPO / "samples" / "server.toml")
    assert (config.upload_rate, config.upload_workers, config.upload_queue) == (
        "60/minute;600/hour", 2, 8,
    )  # fmt: skip
    assert config.max_json_bytes == 1024 * 1024


def test_upload_workers_yield_the_cpu_to_the_server(served: Served) -> None:
    """The verification workers run at a lower priority than the process serving seal pages."""
    settled(served.pid)
    time.sleep(1.2)  # the priority is re-applied every second
    nice = {}
    for child in workers(served.pid):
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        nice[child] = int(fields[16])
    own = int(Path(f"/proc/{served.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert nice and all(n >= own + 10 for n in nice.values()), (own, nice)
