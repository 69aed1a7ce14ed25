"""Strict seal input: one seal, one text. Over-long and non-ASCII input is refused before any
trimming or case folding ('ſ'.upper() is 'S', 'ı'.upper() is 'I'), the web service answers 414
instead of cutting a long payload, and "today" is the date in Ulaanbaatar for the verdict and for
the server's verdict cache alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from esign import testpki
from esign.issue import document_id
from esign.registry import IssuedDocument, open_registry, subject_digest
from esign.seal import SealClaims, SealSigner, fields_digest
from tests.conftest import free_port
from tests.web.conftest import write_config
from verify.seal import (
    MAX_INPUT_CHARS,
    MONGOLIA,
    SealFormatError,
    canonical_payload,
    decode_seal,
    verify_seal,
)
from verify.trust import TrustConfig
from verify.web import app as web_app
from verify.web.config import load_config

BASE = "HTTPS://VERIFY.E-MONGOLIA.MN/V/"
UB_TODAY = datetime.now(MONGOLIA).date()
D = UB_TODAY + timedelta(days=2)
"""The last valid day of the test document: two days ahead, so every clock below is plausible."""
LAST_MINUTE = datetime(D.year, D.month, D.day, 15, 59, tzinfo=UTC)  # D 23:59 in Ulaanbaatar
MIDNIGHT_UB = datetime(D.year, D.month, D.day, 16, 0, tzinfo=UTC)  # D+1 00:00 in Ulaanbaatar


def _claims(expires: date | None) -> SealClaims:
    return SealClaims(
        issuer="UBEG",  # the agency code its seal certificate binds (GV:MN-UBEG)
        doc_type="RESIDENCE",
        number="ОСХ-2026-000777",
        issued=UB_TODAY - timedelta(days=1),
        expires=expires,
        subject_name="Батбаярын Энх-Амгалан",
        subject_id="УБ99112233",
        fields_digest=fields_digest({"number": "ОСХ-2026-000777"}),
    )


@pytest.fixture(scope="module")
def trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths(
        [pki.trust_dir], intermediates=[pki.intermediates_dir], seal_certs=[pki.seals_dir]
    )


@pytest.fixture(scope="module")
def payload(pki: testpki.TestPki) -> str:
    """A genuine seal of a document valid until day D (inclusive)."""
    signer = SealSigner.from_pem_files(pki.key("mn-ec", "seal"), pki.cert("mn-ec", "seal"))
    return signer.sign(_claims(D))


def _verdict(text: str, trust: TrustConfig, at: datetime = LAST_MINUTE) -> tuple[str, str | None]:
    report = verify_seal(text, trust, trust.seal_certs, at=at)
    return report.indication.value, report.subindication


def _unicode_variants(payload: str) -> list[str]:
    """The lower-case seal with one 's' written 'ſ' or one 'i' written 'ı': the old decoder
    upper-cased these into the genuine payload."""
    lower = payload.lower()
    out = []
    for ascii_ch, other in (("s", "ſ"), ("i", "ı")):
        at = lower.index(ascii_ch)
        out.append(lower[:at] + other + lower[at + 1 :])
        out.append((BASE + lower).replace(ascii_ch, other))  # every occurrence, in a URL
    return out


def test_lower_case_is_the_same_seal(payload: str, trust: TrustConfig) -> None:
    assert _verdict(payload.lower(), trust) == ("TOTAL-PASSED", None)
    assert canonical_payload((BASE + payload).lower() + "/?lang=en") == payload


def test_look_alike_unicode_letters_are_refused(payload: str, trust: TrustConfig) -> None:
    assert "S" in payload and "I" in payload
    for variant in _unicode_variants(payload):
        assert variant.upper().endswith(payload)  # what str.upper() would have made of it
        with pytest.raises(SealFormatError, match="non-ASCII character at position"):
            decode_seal(variant)
        with pytest.raises(SealFormatError):
            canonical_payload(variant)
        assert _verdict(variant, trust) == ("TOTAL-FAILED", "FORMAT_FAILURE")


def test_length_limit_counts_the_text_as_given(payload: str, trust: TrustConfig) -> None:
    url = BASE + payload + "?"
    exactly = url + "x" * (MAX_INPUT_CHARS - len(url))
    assert len(exactly) == MAX_INPUT_CHARS
    assert _verdict(exactly, trust) == ("TOTAL-PASSED", None)
    for over in (exactly + "x", " " + exactly, "A" * (MAX_INPUT_CHARS + 1)):
        with pytest.raises(SealFormatError, match=f"4097 characters, more than {MAX_INPUT_CHARS}"):
            decode_seal(over)
        assert _verdict(over, trust) == ("TOTAL-FAILED", "FORMAT_FAILURE")


def test_expiry_turns_at_midnight_in_ulaanbaatar(payload: str, trust: TrustConfig) -> None:
    assert _verdict(payload, trust, LAST_MINUTE) == ("TOTAL-PASSED", None)
    assert _verdict(payload, trust, MIDNIGHT_UB - timedelta(microseconds=1))[0] == "TOTAL-PASSED"
    assert _verdict(payload, trust, MIDNIGHT_UB) == ("INDETERMINATE", "EXPIRED")


# --- the served page and API (the real application, in process, with its clock moved) --------


class Clock:
    def __init__(self) -> None:
        self.now = LAST_MINUTE

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def served(
    pki: testpki.TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Clock]]:
    """The application of `esign serve` with the document of ``payload`` in its registry. The
    lifespan (upload workers) is not started: seal pages do not use it."""
    config, registry_url = write_config(
        pki, tmp_path, free_port(), "key-a-" + "1" * 24, "key-b-" + "2" * 24
    )
    claims = _claims(D)
    with open_registry(registry_url) as registry:
        registry.record(
            IssuedDocument(
                id=document_id(claims.issuer, claims.number),
                doc_type=claims.doc_type,
                issuer=claims.issuer,
                subject_digest=subject_digest(claims.subject_id, claims.subject_name),
                issued_on=claims.issued,
                expires_on=claims.expires,
                pdf_sha256="a" * 64,  # issued ("0" * 64 marks a number still being signed)
            )
        )
    clock = Clock()
    monkeypatch.setattr(web_app, "_utcnow", clock)
    app = web_app.create_app(load_config(config))
    yield TestClient(app), clock
    if app.state.registry is not None:
        app.state.registry.close()


def test_cache_is_keyed_on_the_ulaanbaatar_date(
    served: tuple[TestClient, Clock], payload: str
) -> None:
    client, clock = served
    seal = f"/api/v1/seals/{payload}"
    first = client.get(seal).json()
    assert (first["indication"], first["registry_status"]) == ("TOTAL-PASSED", "active"), first
    assert client.get(seal.lower()).json()["indication"] == "TOTAL-PASSED"
    # Still the same UTC date D, but already D+1 in Ulaanbaatar: the cached verdict of D must
    # not be served (a cache keyed by the UTC date showed the expired document as valid).
    clock.now = MIDNIGHT_UB
    after = client.get(seal).json()
    assert (after["indication"], after["subindication"]) == ("INDETERMINATE", "EXPIRED")
    page = client.get(f"/v/{payload}?lang=en")
    assert page.status_code == 200 and "EXPIRED" in page.text
    clock.now = LAST_MINUTE  # and the verdict of day D is still D's
    assert client.get(seal).json()["indication"] == "TOTAL-PASSED"


def test_served_input_limits(served: tuple[TestClient, Clock], payload: str) -> None:
    client, _ = served
    for variant in _unicode_variants(payload)[::2]:  # bare payloads fit in a path segment
        api = client.get(f"/api/v1/seals/{variant}")
        assert api.json()["subindication"] == "FORMAT_FAILURE", api.text
        page = client.get(f"/v/{variant}")
        assert page.status_code == 400 and "ЖИНХЭНЭ БАРИМТ" not in page.text
    too_long = payload + "A" * (MAX_INPUT_CHARS + 1 - len(payload))
    for path in (f"/api/v1/seals/{too_long}", f"/V/{too_long}"):
        r = client.get(path)
        assert r.status_code == 414, r.text
        assert "4097 characters, more than 4096" in r.json()["detail"]
    at_limit = client.get(f"/api/v1/seals/{too_long[:-1]}")
    assert at_limit.status_code == 200  # 4096 characters: read (and found malformed), not cut
    assert at_limit.json()["subindication"] == "FORMAT_FAILURE"
