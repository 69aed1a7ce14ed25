"""Property-based tests of the served OpenAPI document with schemathesis: whatever it sends, the
server answers without a 5xx and every answer matches the schema it declares."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import WebServer, sample_data

ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module")
def issued_id(server: WebServer, client: httpx.Client) -> str:
    r = client.post(
        "/api/v1/issue",
        json={"template": "residence", "key": "seal-a", "data": sample_data()},
        headers=server.auth_a,
    )
    assert r.status_code == 200, r.text
    return r.headers["x-document-id"]


def test_openapi_document_declares_what_is_served(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    sign = doc["paths"]["/api/v1/sign"]["post"]
    assert "application/pdf" in sign["requestBody"]["content"]
    assert {"401", "403", "413"} <= set(sign["responses"])
    verify = doc["paths"]["/api/v1/verify"]["post"]["responses"]["200"]
    assert verify["content"]["application/json"]["schema"]["$ref"].endswith("/VerifyReport")


@pytest.mark.parametrize("as_client", [False, True], ids=["anonymous", "agency-a"])
def test_schemathesis(server: WebServer, issued_id: str, tmp_path: Path, as_client: bool) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"query.key" = "seal-a"\n"path.doc_id" = "{issued_id}"\n')
    auth = ["-H", f"Authorization: Bearer {server.key_a}"] if as_client else []
    proc = subprocess.run(
        [str(ST), "--no-color", "--config-file", str(config), "run", f"{server.url}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "80", "--workers", "1", "--request-timeout", "60", *auth],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # Every operation the service declares was exercised, none skipped.
    declared = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in declared.values())
    assert operations >= 6
    assert f"{operations} selected / {operations} total" in out
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts is not None and counts[1] == counts[2] and int(counts[1]) > 100, out[-3000:]
