"""The citizens' seal page while hostile uploads run (issue 9): `wrk` on GET /V/<payload>, alone
and while 8 clients, each from its own address, keep uploading a PDF that burns a verification
worker's CPU for seconds (a signed file plus one incremental update of 150,000 objects, 9 MB,
under the upload cap and the reading limits). Target: the seal page's p99 under hostile load
within 3x of its p99 alone. Prints figures; never fails a build.

    python bench/web_hostile.py [--duration 15s] [--connections 32] [--workers 2] [--hostile 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from web_load import (  # noqa: E402
    PASSWORD_ENV,
    figures,
    free_port,
    issue_one,
    run_wrk,
    wait_healthy,
    write_config,
)

from esign import testpki  # noqa: E402
from esign.errors import ServiceError  # noqa: E402
from esign.keysource import load_key  # noqa: E402
from esign.pades import DocumentSigner, SignOptions  # noqa: E402
from esign.services import PkiServices  # noqa: E402


def hostile_pdf(pki: testpki.TestPki, count: int = 150_000) -> bytes:
    """A signed certificate plus an incremental update of ``count`` one-reference objects."""
    with load_key(str(pki.p12("mn-rsa", "seal")), password=testpki.P12_PASSWORD.encode()) as key:
        signed = DocumentSigner(key, SignOptions()).sign_bytes(
            (REPO / "samples" / "certificate.pdf").read_bytes()
        )
    prev = int(signed[signed.rindex(b"startxref") :].split()[1])
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


class Hostile(threading.Thread):
    """One attacker: uploads ``data`` to /api/v1/verify over and over until stopped; stopping
    closes its connection, which must stop its verification on the server."""

    def __init__(self, port: int, source: str, data: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.source, self.data = port, source, data
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.sock: socket.socket | None = None

    def run(self) -> None:
        request = (
            b"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/pdf\r\nContent-Length: %d\r\n\r\n" % len(self.data)
        ) + self.data
        while not self.stop.is_set():
            with contextlib.suppress(OSError), socket.socket() as sock:
                self.sock = sock
                sock.bind((self.source, 0))
                sock.connect(("127.0.0.1", self.port))
                sock.sendall(request)
                head = sock.recv(64)
                if head.startswith(b"HTTP/1.1 "):
                    self.answers.append(int(head.split()[1]))

    def halt(self) -> None:
        self.stop.set()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


def descendants_cpu(pid: int) -> float:
    """CPU seconds used so far by the live descendants of ``pid`` (the verification workers)."""
    total, todo = 0.0, [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
            if parent != pid:
                fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hostile", type=int, default=8)
    parser.add_argument("--warmup", default="3s")
    args, _ = parser.parse_known_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk); skipped")
        return
    pki = testpki.build()
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ServiceError):  # already served, e.g. by `esign pki serve`
            stack.enter_context(PkiServices(pki))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esign-hostile-")))
        data = hostile_pdf(pki)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = write_config(pki, folder, port)
        env = {**os.environ, PASSWORD_ENV: testpki.P12_PASSWORD, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--config", str(config),
             "--workers", str(args.workers)],
            cwd=REPO, env=env,
        )  # fmt: skip
        attackers: list[Hostile] = []
        try:
            wait_healthy(url, proc)
            seal = issue_one(url)
            target = f"{url}/V/{seal.split('/V/', 1)[1]}"
            page = httpx.get(target, timeout=30)
            verdict = "authentic" if "ЖИНХЭНЭ БАРИМТ" in page.text else "NOT authentic"
            print(f"seal page: HTTP {page.status_code}, {len(page.content)} bytes, {verdict}")
            started = time.monotonic()
            one = httpx.post(f"{url}/api/v1/verify", content=data, timeout=120)
            print(
                f"hostile upload: {len(data) / 2**20:.1f} MiB, HTTP {one.status_code}, "
                f"{one.json().get('indication')}, {time.monotonic() - started:.1f} s alone"
            )
            run_wrk(target, args.threads, args.connections, args.warmup, folder)  # warm caches
            alone = figures(run_wrk(target, args.threads, args.connections, args.duration, folder))
            attackers = [Hostile(port, f"127.0.0.{2 + i}", data) for i in range(args.hostile)]
            for a in attackers:
                a.start()
            time.sleep(3)  # the workers are busy now
            cpu_before, t0 = descendants_cpu(proc.pid), time.monotonic()
            loaded = figures(run_wrk(target, args.threads, args.connections, args.duration, folder))
            busy = (descendants_cpu(proc.pid) - cpu_before) / (time.monotonic() - t0)
        finally:
            for a in attackers:
                a.halt()
            proc.terminate()
            proc.wait(timeout=15)
    answers = [code for a in attackers for code in a.answers]
    print(f"verification workers used {busy:.2f} CPU cores during the hostile run")
    for name, f in (("alone", alone), (f"with {args.hostile} hostile uploads", loaded)):
        print(
            f"GET /V/<payload> {name}: {f['rps']:.0f} req/s; p50 {f['p50_us'] / 1000:.1f} ms, "
            f"p99 {f['p99_us'] / 1000:.1f} ms, max {f['max_us'] / 1000:.1f} ms; "
            f"errors {f['errors']:.0f}, non-2xx {f['non2xx']:.0f}"
        )
    print(f"hostile uploads answered during the run: {len(answers)} ({sorted(set(answers))})")
    ratio = loaded["p99_us"] / alone["p99_us"]
    met = "met" if ratio <= 3 else "NOT met"
    print(f"p99 ratio (hostile / alone): {ratio:.2f}x; target <= 3x: {met}")


if __name__ == "__main__":
    main()
