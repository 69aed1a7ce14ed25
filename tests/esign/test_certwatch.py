"""The serving signer's certificate watch against the test PKI's real OCSP responders: a good
certificate signs and is re-checked on its interval, a revoked or expired one is refused, and a
certificate revoked while the server runs stops signing at the next check, in the library and
through `esign serve` (the CLI is unaffected: it checks once per run)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.certfiles import load_cert_paths
from esign.certwatch import CertificateWatch
from esign.errors import CertificateRefused, UsageError
from esign.services import PkiServices
from tests.conftest import SAMPLE, free_port
from tests.web.conftest import start_server, stop_server, write_config

BEFORE_REVOCATION = datetime(2025, 5, 1, tzinfo=UTC)
"""The test PKI's "revoked" certificate is revoked since 2025-06-01: answered as of this day,
its OCSP responder says it is good."""


def _watch(pki: testpki.TestPki, label: str, **kw: object) -> CertificateWatch:
    (cert,) = load_cert_paths([pki.cert("mn-rsa", label)])
    chain = load_cert_paths([pki.chain("mn-rsa", label)])
    anchors = load_cert_paths([pki.trust_dir])
    return CertificateWatch(cert, chain, trust_roots=anchors, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def responders_before_revocation(
    pki: testpki.TestPki, services: PkiServices
) -> Iterator[PkiServices]:
    """The session's PKI services replaced, on the same port, by ones answering as of
    BEFORE_REVOCATION; the test flips back by stopping them and restarting the session's."""
    services.stop()
    past = PkiServices(pki, at_time=BEFORE_REVOCATION).start()
    try:
        yield past
    finally:
        past.stop()
        services.start()


def test_good_certificate_is_rechecked_on_its_interval(services: PkiServices) -> None:
    watch = _watch(services.pki, "seal", interval=0.5)
    served = services.requests_served
    watch.check()
    assert watch.checks == 1 and services.requests_served > served  # a real OCSP round trip
    watch.check()
    assert watch.checks == 1  # not due yet: dates only
    time.sleep(0.6)
    watch.check()
    assert watch.checks == 2


def test_revoked_certificate_is_refused(services: PkiServices) -> None:
    watch = _watch(services.pki, "revoked")
    with pytest.raises(CertificateRefused, match="signing certificate is revoked"):
        watch.check()
    served = services.requests_served
    with pytest.raises(CertificateRefused, match="revoked"):
        watch.check()  # final: refused again without asking
    assert watch.checks == 1 and services.requests_served == served


def test_expired_certificate_is_refused(services: PkiServices) -> None:
    with pytest.raises(CertificateRefused, match="expired on 2025-01-01"):
        _watch(services.pki, "expired").check()


def test_expiry_while_running_needs_no_recheck(services: PkiServices) -> None:
    now = [datetime.now(UTC)]
    watch = _watch(services.pki, "seal", interval=3600, clock=lambda: now[0])
    watch.check()
    now[0] = datetime(2045, 1, 1, tzinfo=UTC) + timedelta(seconds=1)  # the seal's not_after
    with pytest.raises(CertificateRefused, match="expired on 2045-01-01"):
        watch.check()
    assert watch.checks == 1


def test_interval_must_be_positive(pki: testpki.TestPki) -> None:
    with pytest.raises(UsageError):
        _watch(pki, "seal", interval=0)


def test_revoked_while_running(
    services: PkiServices, responders_before_revocation: PkiServices
) -> None:
    watch = _watch(services.pki, "revoked", interval=0.5)
    watch.check()  # the responder still calls it good
    responders_before_revocation.stop()
    services.start()  # now it answers as of today: revoked
    watch.check()  # within the interval: no new OCSP request, still signing
    time.sleep(0.6)
    with pytest.raises(CertificateRefused, match="signing certificate is revoked"):
        watch.check()
    assert watch.checks == 2


def _serve_revoked_key(pki: testpki.TestPki, folder: Path) -> tuple[str, str, Path]:
    """`esign serve` with one more key: the PKI's "revoked" certificate, re-checked every
    second, signing B-B (no TSA). Returns its URL, the API key and the log."""
    port = free_port()
    key_a = "key-a-" + "3" * 24
    config, _ = write_config(pki, folder, port, key_a, "key-b-" + "4" * 24)
    text = config.read_text(encoding="utf-8")
    text = text.replace('keys = ["seal-a"]', 'keys = ["seal-a", "officer"]', 1)
    text = re.sub(
        r"(?m)^\[\[clients\]\]",
        "[signing_keys.officer]\n"
        f"key = {json.dumps(str(pki.p12('mn-rsa', 'revoked')))}\n"
        'password_env = "ESIGN_WEB_TEST_P12_PASSWORD"\n'
        'level = "B-B"\n'
        "certificate_recheck_seconds = 1\n\n[[clients]]",
        text,
        count=1,
    )
    config.write_text(text, encoding="utf-8")
    return f"http://127.0.0.1:{port}", key_a, config


def test_server_stops_signing_when_its_certificate_is_revoked(
    pki: testpki.TestPki,
    services: PkiServices,
    responders_before_revocation: PkiServices,
    tmp_path: Path,
) -> None:
    url, api_key, config = _serve_revoked_key(pki, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    server = start_server(config, port, log=tmp_path / "server.log")
    pdf = SAMPLE.read_bytes()
    auth = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            first = client.post("/api/v1/sign?key=officer", content=pdf, headers=auth)
            assert first.status_code == 200, first.text
            assert first.content.startswith(b"%PDF")
            responders_before_revocation.stop()
            services.start()  # the certificate is now revoked, the server still running
            time.sleep(1.2)
            refused = client.post("/api/v1/sign?key=officer", content=pdf, headers=auth)
            assert refused.status_code == 422, refused.text
            assert "signing certificate is revoked" in refused.json()["detail"]
            again = client.post("/api/v1/sign?key=officer", content=pdf, headers=auth)
            assert again.status_code == 422
    finally:
        stop_server(server)
