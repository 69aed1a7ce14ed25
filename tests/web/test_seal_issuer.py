"""`POST /api/v1/issue` refuses a template of another agency than the key's seal certificate
(issue 10, point 3): one line naming both agencies, nothing signed or recorded."""

from __future__ import annotations

import httpx
import pytest

from esign.registry import open_registry
from tests.web.conftest import WebServer, sample_data


@pytest.mark.parametrize(
    ("template", "agency"), [("criminal-record", "SHSG"), ("social-insurance", "NDEG")]
)
def test_issue_with_another_agencys_seal_key_is_refused(
    server: WebServer, client: httpx.Client, template: str, agency: str
) -> None:
    """agency-a holds the UBEG seal key (seal-a) and a grant for every document type: the
    grant does not make UBEG's key speak for SHSG or NDEG."""
    with open_registry(server.registry_url) as registry:
        before = registry.audit_entries(limit=1000)
    r = client.post(
        "/api/v1/issue",
        json={"template": template, "key": "seal-a", "data": sample_data(template)},
        headers=server.auth_a,
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f"issuer is {agency}" in detail and "is for UBEG" in detail, detail
    assert "\n" not in detail
    with open_registry(server.registry_url) as registry:
        assert registry.audit_entries(limit=1000) == before
