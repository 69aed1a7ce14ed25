"""GET /trust-list from the real `esign serve`: the file `esign trust-list build` wrote, cacheable
(ETag, Last-Modified, max-age up to the next update) and conditional (304); a verifier that
downloads it verifies seals offline with it; a rebuilt list is served at once, a broken one never.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.seal import SealClaims, SealSigner, fields_digest
from tests.conftest import REPO, free_port
from tests.helpers import run_esign

MEDIA_TYPE = "application/esign-trust-list+cbor"


@dataclass(frozen=True)
class Served:
    url: str
    folder: Path
    trust_list: Path
    build: tuple[str, ...]


@pytest.fixture(scope="module")
def served(pki: testpki.TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("trust-list-http")
    trust_list = folder / "trust-list.cose"
    build = (
        "trust-list", "build", "-o", str(trust_list),
        "--registry", f"sqlite:{folder / 'registry.sqlite3'}",
        "--key", str(pki.key("mn-ec", "trust-list")),
        "--cert", str(pki.cert("mn-ec", "trust-list")),
        "--chain", str(pki.chain("mn-ec", "trust-list")),
    )  # fmt: skip
    env = {"ESIGN_TEST_PKI": str(pki.root), "ESIGN_REGISTRY": ""}
    built = run_esign(*build, env=env)
    assert built.code == 0, built.err
    trust = folder / "trust.toml"
    trust.write_text(
        f"anchors = [{json.dumps(str(pki.trust_dir))}]\n"
        f"intermediates = [{json.dumps(str(pki.intermediates_dir))}]\n"
        f"seal_certificates = [{json.dumps(str(pki.seals_dir))}]\n",
        encoding="utf-8",
    )
    port = free_port()
    config = folder / "server.toml"
    config.write_text(
        f'base_url = "http://127.0.0.1:{port}"\n'
        f"registry = {json.dumps('sqlite:' + str(folder / 'registry.sqlite3'))}\n"
        f"trust = [{json.dumps(str(trust))}]\n"
        f"trust_list = {json.dumps(str(trust_list))}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"esign serve exited: {out}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Served(url, folder, trust_list, (*build,))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_served_list_is_the_built_file_with_cache_headers(served: Served) -> None:
    r = httpx.get(f"{served.url}/trust-list")
    assert r.status_code == 200
    assert r.content == served.trust_list.read_bytes()
    assert r.headers["content-type"] == MEDIA_TYPE
    assert r.headers["etag"].startswith('"') and len(r.headers["etag"]) == 34
    assert parsedate_to_datetime(r.headers["last-modified"]).year >= 2026
    cache = r.headers["cache-control"]
    assert "public" in cache
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 3600


def test_conditional_requests_get_304(served: Served) -> None:
    first = httpx.get(f"{served.url}/trust-list")
    etag = first.headers["etag"]
    again = httpx.get(f"{served.url}/trust-list", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    since = httpx.get(
        f"{served.url}/trust-list", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert since.status_code == 304
    other = httpx.get(f"{served.url}/trust-list", headers={"If-None-Match": '"0000"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_downloaded_list_verifies_a_seal_offline(served: Served, pki: testpki.TestPki) -> None:
    downloaded = served.folder / "downloaded.cose"
    downloaded.write_bytes(httpx.get(f"{served.url}/trust-list").content)
    signer = SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))
    claims = SealClaims(
        issuer="UBEG",
        doc_type="residence",
        number="ОСХ-2026-000777",
        issued=date(2026, 1, 5),
        expires=None,
        subject_name="Батын Сараа",
        subject_id="УБ92010101",
        fields_digest=fields_digest({}),
    )
    result = run_esign(
        "seal", "verify", signer.url(served.url, claims),
        "--trust", str(pki.cert("mn-ec", "root")), "--trust-list", str(downloaded),
        env={"ESIGN_REGISTRY": ""},
    )  # fmt: skip
    assert result.code == 0, result.out + result.err


def test_rebuilt_list_is_served_and_a_broken_one_is_not(
    served: Served, pki: testpki.TestPki
) -> None:
    old = httpx.get(f"{served.url}/trust-list")
    time.sleep(1.1)  # a new issue time, so a new file
    built = run_esign(*served.build, env={"ESIGN_TEST_PKI": str(pki.root), "ESIGN_REGISTRY": ""})
    assert built.code == 0, built.err
    new = httpx.get(f"{served.url}/trust-list", headers={"If-None-Match": old.headers["etag"]})
    assert new.status_code == 200
    assert new.content == served.trust_list.read_bytes() != old.content
    good = served.trust_list.read_bytes()
    broken = bytearray(good)
    broken[-10] ^= 0xFF
    served.trust_list.write_bytes(bytes(broken))
    try:
        refused = httpx.get(f"{served.url}/trust-list")
        assert refused.status_code == 503
        assert refused.content != bytes(broken)
    finally:
        served.trust_list.write_bytes(good)
    assert httpx.get(f"{served.url}/trust-list").content == good
