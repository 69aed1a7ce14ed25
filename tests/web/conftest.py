"""The real `esign serve` in a child process, configured with the session's test PKI: two agency
clients, two signing keys, a SQLite registry and a 1 MiB upload limit. Its base URL is its own
address, so the QR seals it issues point back at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.services import PkiServices
from tests.conftest import REPO, free_port
from verify.web.config import hash_api_key

ARTIFACTS = REPO / "test-artifacts" / "web"
PASSWORD_ENV = "ESIGN_WEB_TEST_P12_PASSWORD"
DOC_TYPES = ["residence", "criminal-record", "social-insurance"]


@dataclass(frozen=True)
class WebServer:
    url: str
    registry_url: str
    config_path: Path
    key_a: str
    key_b: str

    def headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @property
    def auth_a(self) -> dict[str, str]:
        return self.headers(self.key_a)

    @property
    def auth_b(self) -> dict[str, str]:
        return self.headers(self.key_b)


def write_config(
    pki: testpki.TestPki, folder: Path, port: int, key_a: str, key_b: str
) -> tuple[Path, str]:
    """The server TOML and its trust TOML; returns the config path and the registry URL."""
    folder.mkdir(parents=True, exist_ok=True)
    trust = folder / "trust.toml"
    trust.write_text(
        f"anchors = [{json.dumps(str(pki.trust_dir))}]\n"
        f"intermediates = [{json.dumps(str(pki.intermediates_dir))}]\n"
        f"seal_certificates = [{json.dumps(str(pki.seals_dir))}]\n",
        encoding="utf-8",
    )
    registry_url = f"sqlite:///{folder / 'registry.sqlite3'}"
    doc_types = json.dumps(DOC_TYPES)
    config = folder / "server.toml"
    config.write_text(
        f"""base_url = "http://127.0.0.1:{port}"
registry = {json.dumps(registry_url)}
trust = [{json.dumps(str(trust))}]
max_upload_mb = 1

[signing_keys.seal-a]
key = {json.dumps(str(pki.p12("mn-ec", "seal")))}
password_env = "{PASSWORD_ENV}"
level = "B-T"
tsa = {json.dumps(pki.tsa_url("mn-ec"))}

[signing_keys.seal-b]
key = {json.dumps(str(pki.p12("mn-rsa", "seal")))}
password_env = "{PASSWORD_ENV}"
level = "B-T"
tsa = {json.dumps(pki.tsa_url("mn-rsa"))}

[[clients]]
name = "agency-a"
api_key_sha256 = "{hash_api_key(key_a)}"
keys = ["seal-a"]
doc_types = {doc_types}
revoke_issuers = ["UBEG", "SHSG", "NDEG"]

[[clients]]
name = "agency-b"
api_key_sha256 = "{hash_api_key(key_b)}"
keys = ["seal-b"]
doc_types = ["criminal-record"]
revoke_issuers = ["SHSG"]
""",
        encoding="utf-8",
    )
    return config, registry_url


def start_server(
    config: Path, port: int, workers: int = 1, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`esign serve` as a user runs it; returns once /healthz answers."""
    env = {**os.environ, PASSWORD_ENV: testpki.P12_PASSWORD, "PYTHONPATH": str(REPO)}
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config), "--workers", str(workers)],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"esign serve exited with {proc.returncode}: {detail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("esign serve did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    folder = tmp_path_factory.mktemp("web")
    port = free_port()
    key_a, key_b = "key-a-" + os.urandom(12).hex(), "key-b-" + os.urandom(12).hex()
    config, registry_url = write_config(pki, folder, port, key_a, key_b)
    proc = start_server(config, port, log=folder / "server.log")
    try:
        yield WebServer(f"http://127.0.0.1:{port}", registry_url, config, key_a, key_b)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def client(server: WebServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def sample_data(template: str = "residence") -> dict[str, object]:
    """The sample data of ``template`` with a number unique to this run (the registry refuses a
    number twice) and today as the issue date (so the seal is not yet expired)."""
    data = json.loads((REPO / "samples" / "data" / f"{template}.json").read_text(encoding="utf-8"))
    prefix = str(data["number"]).rsplit("-", 1)[0]
    data["number"] = f"{prefix}-{uuid.uuid4().int % 10**9:09d}"
    data["issued"] = time.strftime("%Y-%m-%d", time.gmtime())
    return data


def tamper_pdf(signed: bytes) -> bytes:
    """Flip one byte inside the first signature's signed range: in the first stream's data,
    so the file still parses and only the digest gives the change away."""
    start = signed.index(b"/ByteRange")
    numbers = signed[signed.index(b"[", start) + 1 : signed.index(b"]", start)].split()
    first_len = int(numbers[1])
    at = signed.index(b"stream", signed.index(b"/Length")) + len(b"stream") + 16
    assert at < first_len, "no stream data inside the signed range"
    tampered = bytearray(signed)
    tampered[at] ^= 0x01
    return bytes(tampered)


def tamper_seal(url: str) -> str:
    """The seal URL with one base32 character of the signature (the payload's tail) changed."""
    head, payload = url.split("/V/")
    i = len(payload) - 20
    swapped = "B" if payload[i] == "A" else "A"
    return f"{head}/V/{payload[:i]}{swapped}{payload[i + 1 :]}"
