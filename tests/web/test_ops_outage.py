"""/readyz and /metrics when the registry goes away: PostgreSQL is reached through a TCP proxy
that the test cuts, as a network failure would. /readyz turns 503 naming the registry check
(and no host, port or database), /healthz stays 200 (the process is alive), the registry errors
are counted, and /readyz is 200 again once the database is back."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from esign import testpki
from esign.services import PkiServices
from tests.conftest import free_port
from tests.verify.test_registry_outage import POSTGRES, TcpProxy, _url, proxy, schema
from tests.web.conftest import start_server, stop_server, write_config
from tests.web.test_ops import metric

__all__ = ["proxy", "schema"]  # pytest fixtures, used by name


def readiness(client: httpx.Client, status: int, within: float = 60) -> dict[str, object]:
    """The /readyz body once it answers ``status``."""
    deadline = time.monotonic() + within
    while True:
        r = client.get("/readyz")
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            body: dict[str, object] = r.json()
            return body
        time.sleep(0.5)


def test_readyz_names_the_registry_while_it_is_down(
    pki: testpki.TestPki, services: PkiServices, proxy: TcpProxy, schema: str, tmp_path: Path
) -> None:
    port = free_port()
    config, _ = write_config(pki, tmp_path, port, "key-a-" + "1" * 24, "key-b-" + "2" * 24)
    assert POSTGRES.startswith("postgresql://")
    through_proxy = _url(f"postgresql://postgres:pw@127.0.0.1:{proxy.port}/test", schema)
    text = re.sub(
        r"(?m)^registry = .*$", f"registry = {json.dumps(through_proxy)}", config.read_text()
    )
    config.write_text(text, encoding="utf-8")
    server = start_server(config, port, log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            ready = readiness(client, 200)
            assert ready["status"] == "ready"
            errors_before = metric(client.get("/metrics").text, "esign_registry_errors_total")

            proxy.cut()
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "not ready"
            checks = body["checks"]
            assert checks["registry"] == {"ok": False, "detail": "unreachable"}
            assert all(checks[n]["ok"] for n in ("trust", "signing_keys", "tsa")), checks
            for leak in (str(proxy.port), "postgres", "search_path", schema, "127.0.0.1"):
                assert leak not in r.text, leak
            assert client.get("/healthz").status_code == 200
            errors_after = metric(client.get("/metrics").text, "esign_registry_errors_total")
            assert errors_after >= errors_before + 1

            proxy.restore()
            assert readiness(client, 200)["status"] == "ready"
    finally:
        stop_server(server)
    # Where and why went to the log: a JSON line, the server's own warning.
    logged = [json.loads(x) for x in (tmp_path / "server.log").read_text().splitlines()
              if x.startswith('{"time"')]  # fmt: skip
    warnings = [x for x in logged if x["event"] == "log" and x["level"] == "WARNING"]
    assert any(x["message"].startswith("readiness: ") for x in warnings), logged[-10:]
