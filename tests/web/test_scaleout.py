"""Scale-out, proven with the deployment of docs/deploy.md: two real `esign serve` processes
started with its sample configuration (read from the document), sharing one PostgreSQL registry
(a schema of this test's own) and one PKCS#11 token (SoftHSM standing in for the HSM).

- Issue on one server, revoke on the other: both answer "revoked" at once.
- Rolling restart: a load loop alternates between the two servers, retrying on the other one
  when a server refuses the connection, as the reverse proxy does; one server gets SIGTERM
  while an issuance is in flight (the TSA is slowed to one second so it surely is), exits 0,
  and starts again. No request fails, the in-flight issuance completes and is recorded, and the
  restarted server takes its share of the load again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from esign import testpki
from esign.registry import open_registry
from esign.services import PkiServices
from tests.conftest import REPO, free_port
from tests.web.conftest import sample_data

pytestmark = pytest.mark.slow

POSTGRES = os.environ.get("ESIGN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"
API_KEY = "change-me-ubeg"  # the sample's digest is of this key
SAMPLE_MARK = "<!-- sample: esign.toml"
AGENCY = "UBEG"


def sample_configuration() -> str:
    """The TOML block that follows the sample marker in docs/deploy.md, as written there."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    after = text[text.index(SAMPLE_MARK) :]
    found = re.search(r"```toml\n(.*?)```", after, re.S)
    assert found, "docs/deploy.md has no sample configuration block"
    return found.group(1)


class SlowProxy:
    """TCP forwarding to ``target`` that waits ``delay`` seconds before each connection's first
    byte goes upstream: a timestamp authority one second away."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        with contextlib.suppress(OSError):
            upstream = socket.create_connection(self.target)
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    schema = f"esign_scaleout_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.Error as e:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}: {e}", pytrace=False)
    sep = "&" if "?" in POSTGRES else "?"
    yield f"{POSTGRES}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def token(pki: testpki.TestPki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A SoftHSM token "ubeg" holding the test PKI's UBEG seal key and certificate ("seal")."""
    for tool in ("softhsm2-util", "pkcs11-tool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (run `make system-deps`)")
    folder = tmp_path_factory.mktemp("hsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")  # fmt: skip
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    label = testpki.AGENCY_SEALS[AGENCY]
    der = folder / "seal.der"
    subprocess.run(["openssl", "x509", "-in", str(pki.cert("mn-ec", label)), "-outform", "DER",
                    "-out", str(der)], check=True)  # fmt: skip
    for cmd in (
        ["softhsm2-util", "--init-token", "--free", "--label", "ubeg", "--so-pin", "87654321",
         "--pin", PIN],
        ["softhsm2-util", "--import", str(pki.key("mn-ec", label)), "--token", "ubeg",
         "--label", "seal", "--id", "01", "--pin", PIN],
        ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "ubeg", "--login", "--pin",
         PIN, "--write-object", str(der), "--type", "cert", "--label", "seal", "--id", "01"],
    ):  # fmt: skip
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    return {"SOFTHSM2_CONF": str(conf)}


@dataclass
class Deployment:
    config: Path
    env: dict[str, str]
    registry_url: str
    ports: tuple[int, int]
    logs: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def start(self, i: int) -> None:
        log = open(self.logs / f"server-{i}.log", "ab")  # noqa: SIM115
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--config", str(self.config),
             "--port", str(self.ports[i]), "--workers", "1"],
            cwd=self.config.parent, env=self.env, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()

    def wait_ready(self, i: int, within: float = 120) -> None:
        deadline = time.monotonic() + within
        last = ""
        while time.monotonic() < deadline:
            proc = self.procs[i]
            if proc.poll() is not None:
                log = (self.logs / f"server-{i}.log").read_text(errors="replace")
                raise AssertionError(f"server {i} exited with {proc.returncode}: {log[-2000:]}")
            try:
                r = httpx.get(self.url(i) + "/readyz", timeout=10)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.TransportError as e:
                last = repr(e)
            time.sleep(0.3)
        raise AssertionError(f"server {i} not ready within {within} s: {last}")

    def stop(self, i: int, timeout: float = 90) -> int:
        proc = self.procs[i]
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


@pytest.fixture(scope="module")
def deployment(
    pki: testpki.TestPki,
    services: PkiServices,
    registry_url: str,
    token: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("deploy")
    tsa = urlsplit(pki.tsa_url("mn-ec"))
    slow_tsa = SlowProxy((tsa.hostname or "127.0.0.1", tsa.port or 80), delay=1.0)
    sample = sample_configuration()
    assert 'tsa = "http://tsa.internal/tsa"' in sample
    text = sample.replace("http://tsa.internal/tsa", f"http://127.0.0.1:{slow_tsa.port}{tsa.path}")
    config = folder / "esign.toml"
    config.write_text(text, encoding="utf-8")
    (folder / "trust.toml").write_text(
        f'anchors = ["{pki.trust_dir}"]\nintermediates = ["{pki.intermediates_dir}"]\n'
        f'seal_certificates = ["{pki.seals_dir}"]\nfetch_allow = ["{pki.url}/"]\n',
        encoding="utf-8",
    )
    shutil.copy(pki.chain("mn-ec", testpki.AGENCY_SEALS[AGENCY]), folder / "ubeg-seal-chain.pem")
    env = {
        **os.environ, **token, "PYTHONPATH": str(REPO), "ESIGN_UBEG_SEAL_PIN": PIN,
        "ESIGN_REGISTRY": registry_url, "ESIGN_CONFIG": "", "XDG_DATA_HOME": str(folder / "data"),
    }  # fmt: skip
    dep = Deployment(config, env, registry_url, (free_port(), free_port()), folder)
    try:
        for i in (0, 1):
            dep.start(i)
        for i in (0, 1):
            dep.wait_ready(i)
        yield dep
    finally:
        for i, proc in dep.procs.items():
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    dep.stop(i, timeout=60)
        slow_tsa.close()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def issue(client: httpx.Client, base: str) -> httpx.Response:
    return client.post(
        base + "/api/v1/issue",
        json={"template": "residence", "key": "ubeg-seal", "data": sample_data("residence")},
        headers=auth(),
    )


def seal_state(client: httpx.Client, base: str, payload: str) -> tuple[str, str | None, str]:
    """(indication, registry status) from the JSON API, and the verdict class of the page."""
    data = client.get(f"{base}/api/v1/seals/{payload}").json()
    page = client.get(f"{base}/V/{payload}", params={"lang": "en"})
    assert page.status_code == 200, page.text
    verdict = re.search(r'class="verdict ([a-z]+)', page.text)
    return data["indication"], data["registry_status"], verdict.group(1) if verdict else page.text


def test_issue_on_one_revoke_on_the_other_both_agree_at_once(deployment: Deployment) -> None:
    a, b = deployment.url(0), deployment.url(1)
    with httpx.Client(timeout=60) as client:
        r = issue(client, a)
        assert r.status_code == 200, r.text
        # The base URL of the sample, the proxy's (upper case: the QR code's alphanumeric mode).
        assert r.headers["X-Seal-Url"].startswith("HTTPS://VERIFY.ESIGN.GOV.MN/V/")
        doc_id, payload = r.headers["X-Document-Id"], r.headers["X-Seal-Url"].split("/V/", 1)[1]
        assert seal_state(client, a, payload)[:2] == ("TOTAL-PASSED", "active")
        assert seal_state(client, b, payload)[:2] == ("TOTAL-PASSED", "active")

        revoked = client.post(f"{b}/api/v1/documents/{quote(doc_id, safe='')}/revoke",
                              json={"reason": "issued in error"}, headers=auth())  # fmt: skip
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        # At once: no wait between the revocation on B and the next look on A.
        state_a, state_b = seal_state(client, a, payload), seal_state(client, b, payload)
    assert state_a[:2] == state_b[:2] == ("TOTAL-FAILED", "revoked")
    assert state_a[2] == state_b[2], (state_a, state_b)
    with open_registry(deployment.registry_url) as registry:
        doc = registry.get(doc_id)
    assert doc is not None and doc.status.value == "revoked"


@dataclass
class Load:
    """Counts of the load loop, per outcome and per server that answered."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    retried: int = 0
    served_by: Counter[str] = field(default_factory=Counter)
    issued: list[str] = field(default_factory=list)
    answered_after: dict[str, int] = field(default_factory=dict)


def test_rolling_restart_loses_no_request(deployment: Deployment) -> None:
    urls = [deployment.url(0), deployment.url(1)]
    with httpx.Client(timeout=60) as client:
        first = issue(client, urls[1])
        assert first.status_code == 200, first.text
    payload = first.headers["X-Seal-Url"].split("/V/", 1)[1]
    load = Load()
    stop = threading.Event()
    restarted = threading.Event()
    lock = threading.Lock()

    def one(client: httpx.Client, n: int, kind: int) -> None:
        """Request n as the proxy would pass it: to server n % 2, else to the other one if
        that server refuses the connection (nothing was sent, so nothing can be done twice),
        or, for the idempotent GETs only, resets it before any response (nginx's
        ``proxy_next_upstream error``: a restarting server closes connections still waiting
        in its listen queue). Kind 0 issues a certificate, 1 reads the seal page, 2 the seal API."""
        for attempt in range(2):
            i = (n + attempt) % 2
            base = urls[i]
            try:
                if kind == 0:
                    r = issue(client, base)
                elif kind == 1:
                    r = client.get(f"{base}/V/{payload}")
                else:
                    r = client.get(f"{base}/api/v1/seals/{payload}")
            except httpx.ConnectError:
                with lock:
                    load.retried += 1
                continue
            except (httpx.ReadError, httpx.RemoteProtocolError) as e:
                with lock:
                    if kind == 0:  # a POST is never sent twice (nginx's default): it failed
                        load.failed.append(f"{base} kind {kind}: {e!r}")
                        return
                    load.retried += 1
                continue
            except httpx.HTTPError as e:
                with lock:
                    load.failed.append(f"{base} kind {kind}: {e!r}")
                return
            with lock:
                if r.status_code == 200:
                    load.ok += 1
                    load.served_by[base] += 1
                    if restarted.is_set() and i == 0:
                        load.answered_after[base] = load.answered_after.get(base, 0) + 1
                    if kind == 0:
                        load.issued.append(r.headers["X-Document-Id"])
                else:
                    load.failed.append(f"{base} kind {kind}: HTTP {r.status_code} {r.text[:200]}")
            return
        with lock:
            load.failed.append(f"kind {kind}: both servers refused")

    def loop(kinds: tuple[int, ...]) -> None:
        # No keep-alive: a new connection per request, like nginx's default to its upstreams.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=60, limits=limits) as client:
            for n in itertools.count():
                if stop.is_set():
                    return
                one(client, n, kinds[(n // 2) % len(kinds)])

    # Two loops issue certificates (each signing waits a second on the TSA), three read.
    workers = [
        threading.Thread(target=loop, args=(k,)) for k in [(0,), (0,), (1, 2), (1, 2), (2, 1)]
    ]
    for w in workers:
        w.start()
    in_flight: dict[str, httpx.Response] = {}
    try:
        time.sleep(3)

        def slow_issue() -> None:
            with httpx.Client(timeout=60) as client:
                in_flight["response"] = issue(client, urls[0])

        sender = threading.Thread(target=slow_issue)
        sender.start()
        time.sleep(0.4)  # sent, and waiting on the one-second TSA
        began = time.monotonic()
        code = deployment.stop(0)
        stopped_in = time.monotonic() - began
        sender.join(60)
        deployment.start(0)
        deployment.wait_ready(0)
        restarted.set()
        time.sleep(4)
    finally:
        stop.set()
        for w in workers:
            w.join(120)

    total = load.ok + len(load.failed)
    print(f"rolling restart: {total} requests, {load.ok} ok, {len(load.failed)} failed, "
          f"{load.retried} retried on the other server, served by {dict(load.served_by)}, "
          f"{len(load.issued)} issued, server A stopped in {stopped_in:.1f} s, "
          f"{load.answered_after.get(urls[0], 0)} answered by A after its restart")  # fmt: skip
    # uvicorn, once shut down gracefully, ends by the signal it got: what systemd counts as a
    # clean stop. Killed at a timeout would be -9.
    assert code in (0, -signal.SIGTERM), f"exit status {code} after SIGTERM"
    assert load.failed == [], load.failed[:5]
    assert total >= 500 and len(load.issued) >= 4, (total, len(load.issued))
    assert load.retried > 0  # the loop did hit A while it was down
    assert load.answered_after.get(urls[0], 0) > 0  # and A took its share again
    slow = in_flight.get("response")
    assert slow is not None and slow.status_code == 200, slow.text if slow else "no answer"
    ids = [*load.issued, slow.headers["X-Document-Id"]]
    with open_registry(deployment.registry_url) as registry:
        for doc_id in ids:
            doc = registry.get(doc_id)
            assert doc is not None and doc.status.value == "active", doc_id
    assert hashlib.sha256(slow.content).hexdigest() == registry_sha(deployment, ids[-1])


def registry_sha(deployment: Deployment, doc_id: str) -> str | None:
    """The PDF digest the registry holds for ``doc_id`` (the server recorded what it answered)."""
    with open_registry(deployment.registry_url) as registry:
        doc = registry.get(doc_id)
    return doc.pdf_sha256 if doc else None
