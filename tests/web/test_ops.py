"""What an operator watches of the running `esign serve` (a real process on loopback):
/healthz, /readyz with each check named, Prometheus /metrics, and the JSON access log, which must
carry route templates and never a seal payload, a query string or a client address."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.services import PkiServices
from tests.conftest import free_port
from tests.web.conftest import WebServer, sample_data, start_server, stop_server, write_config


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{", 1)[0] == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_healthz_answers_alive(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def ready(client: httpx.Client, within: float = 60) -> httpx.Response:
    """/readyz once it says ready (keys load in the background after start), else its last
    answer, as a load balancer polls it."""
    deadline = time.monotonic() + within
    while True:
        r = client.get("/readyz")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_readyz_names_every_check(client: httpx.Client) -> None:
    r = ready(client)
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"registry", "trust", "signing_keys", "tsa"}
    assert all(c["ok"] for c in body["checks"].values()), body
    assert body["checks"]["signing_keys"]["detail"] == "seal-a, seal-b"
    assert body["checks"]["tsa"]["detail"] == "2 reachable"


def test_metrics_count_requests_verdicts_issuance_and_rejections(
    server: WebServer, client: httpx.Client
) -> None:
    before = client.get("/metrics").text
    issued = client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data("residence")},
        headers=server.auth_a,
    )
    assert issued.status_code == 200, issued.text
    payload = issued.headers["X-Seal-Url"].split("/V/", 1)[1]
    page = client.get(f"/V/{payload}")
    assert page.status_code == 200
    too_big = client.post("/api/v1/verify", content=b"%PDF" + b"0" * (2 * 1024 * 1024))
    assert too_big.status_code == 413

    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("esign_http_requests_total", method="GET", route="/V/{payload}", status="200") == 1
    assert grew("esign_verdicts_total", kind="seal", indication="TOTAL-PASSED") == 1
    assert grew("esign_issuances_total", template="residence", outcome="ok") == 1
    assert grew("esign_issuance_duration_seconds_count", template="residence") == 1
    assert grew("esign_rejections_total", route="/api/v1/verify", status="413") == 1
    assert "esign_registry_errors_total" in after
    assert payload not in after  # route templates only


def test_access_log_is_json_without_personal_data(server: WebServer, client: httpx.Client) -> None:
    issued = client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data("residence")},
        headers=server.auth_a,
    )
    assert issued.status_code == 200, issued.text
    payload = issued.headers["X-Seal-Url"].split("/V/", 1)[1]
    assert client.get(f"/v/{payload}", params={"lang": "en"}).status_code == 200
    log = server.config_path.parent / "server.log"
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        lines = [json.loads(x) for x in text.splitlines() if x.startswith('{"time"')]
        if any(x.get("route") == "/v/{payload}" for x in lines):
            break
        time.sleep(0.1)
    requests = [x for x in lines if x.get("event") == "request"]
    seal = [x for x in requests if x["route"] == "/v/{payload}"]
    assert seal and seal[-1]["status"] == 200 and seal[-1]["method"] == "GET", requests[-5:]
    assert all(set(x) == {"time", "event", "method", "route", "status", "ms", "bytes", "pid"}
               for x in requests)  # fmt: skip
    assert payload not in text and "lang=en" not in text
    assert server.key_a not in text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_ops_routes_are_not_in_the_public_api_description(client: httpx.Client, path: str) -> None:
    assert path not in client.get("/openapi.json").json()["paths"]


def test_metrics_sum_all_worker_processes(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    """With --workers 2 every process counts its own requests; /metrics, answered by either,
    reports the sum (prometheus-client's multiprocess mode)."""
    port = free_port()
    config, _ = write_config(pki, tmp_path, port, "key-a-" + "1" * 24, "key-b-" + "2" * 24)
    config.write_text(config.read_text() + "\n[limits]\nupload_workers = 1\n", encoding="utf-8")
    server = start_server(config, port, workers=2, log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            base = metric(client.get("/metrics").text, "esign_http_requests_total",
                          route="/healthz", status="200")  # fmt: skip
            for _ in range(40):  # a new connection each: both workers take some
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
            totals = {
                metric(client.get("/metrics").text, "esign_http_requests_total",
                       route="/healthz", status="200") - base
                for _ in range(6)
            }  # fmt: skip
        pids = {
            json.loads(x)["pid"]
            for x in (tmp_path / "server.log").read_text().splitlines()
            if x.startswith('{"time"') and '"/healthz"' in x
        }
    finally:
        stop_server(server)
    assert totals == {40.0}, totals  # the same sum whichever worker answers
    assert len(pids) == 2, pids
