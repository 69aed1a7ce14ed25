"""A simulated year of seal-key rotation, judged by `esign seal verify` as an offline verifier
holding only the root and the trust list of the day (and, online, the registry):

- UBEG seals with K1 (January-March), K2 (April-June), K3 (July-September) and K4 (from 20
  August); each certificate expires a month after its sealing period, long before the documents
  it sealed, which still verify: the certificate is judged on the seal's issue day.
- K3 is compromised on 20 August: lists built from 22 August revoke it from that day; its seal
  of July stays valid, a seal dated 25 August with it fails.
- A retired key's seal dated after its period is not accepted; a document expires at midnight
  in Ulaanbaatar on its last day.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from esign.issue import document_id
from esign.registry import IssuedDocument, open_registry
from esign.seal import SealClaims, SealSigner, fields_digest
from tests.conftest import REPO, free_port
from tests.helpers import run_esign
from tests.verify.trustpki import SEAL_EKU, Issued, SmallPki, issue, small_pki

BASE = "https://verify.e-mongolia.mn"
PASSED = ("TOTAL-PASSED", None)
KEY_REVOKED = ("TOTAL-FAILED", "REVOKED")
EXPIRED = ("INDETERMINATE", "EXPIRED")


@dataclass(frozen=True)
class Key:
    name: str
    issued: Issued
    cert_file: Path
    seal_from: date
    seal_until: date


@dataclass
class Year:
    folder: Path
    pki: SmallPki
    root: Path
    signer: tuple[str, ...]
    keys: dict[str, Key]
    seals: dict[str, str]
    lists: dict[str, Path]


def _key(folder: Path, pki: SmallPki, name: str, first: date, last: date) -> Key:
    """A seal certificate valid from two days before its sealing period to a month after it."""
    start = datetime.combine(first - timedelta(days=2), datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=31), datetime.min.time(), UTC)
    issued = issue(f"UBEG seal {name}", start, end, pki.issuing, eku=SEAL_EKU, agency="UBEG")
    _, cert = issued.write(folder, f"seal-{name}")
    return Key(name, issued, cert, first, last)


def _seal(key: Key, number: str, issued: date, expires: date | None = None) -> str:
    claims = SealClaims(
        issuer="UBEG",
        doc_type="residence",
        number=number,
        issued=issued,
        expires=expires,
        subject_name="Должинсүрэнгийн Гантулга",
        subject_id="УБ85031512",
        fields_digest=fields_digest({"Хаяг": "Сүхбаатар дүүрэг"}),
    )
    return SealSigner(key.issued.key, key.issued.cert).url(BASE, claims)


def _register(year: Year, name: str, keys: list[str], revoked: dict[str, date]) -> Path:
    lines = [f'intermediates = ["{year.folder / "issuing.pem"}"]', ""]
    for k in keys:
        key = year.keys[k]
        lines += [
            "[[key]]",
            'agency = "UBEG"',
            f'certificate = "{key.cert_file}"',
            f"seal_from = {key.seal_from.isoformat()}",
            f"seal_until = {key.seal_until.isoformat()}",
        ]
        if k in revoked:
            lines.append(f"revoked_from = {revoked[k].isoformat()}")
        lines.append("")
    path = year.folder / f"{name}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _build(year: Year, name: str, at: str, keys: list[str], revoked: dict[str, date]) -> None:
    register = _register(year, name, keys, revoked)
    out = year.folder / f"{name}.cose"
    result = run_esign(
        "trust-list", "build", "-o", str(out), "--seals", str(register),
        "--registry", f"sqlite:{year.folder / 'empty.sqlite3'}", "--at", at, *year.signer,
    )  # fmt: skip
    assert result.code == 0, result.err
    year.lists[name] = out


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Year:
    folder = tmp_path_factory.mktemp("rotation")
    pki = small_pki()
    root = pki.root.write(folder, "root")[1]
    pki.issuing.write(folder, "issuing")
    signer_key, signer_cert = pki.list_signer.write(folder, "list-signer")
    keys = {
        "K1": _key(folder, pki, "K1", date(2026, 1, 1), date(2026, 3, 31)),
        "K2": _key(folder, pki, "K2", date(2026, 4, 1), date(2026, 6, 30)),
        "K3": _key(folder, pki, "K3", date(2026, 7, 1), date(2026, 9, 30)),
        "K4": _key(folder, pki, "K4", date(2026, 8, 20), date(2026, 12, 31)),
    }
    seals = {
        "d1": _seal(keys["K1"], "ОСХ-2026-000001", date(2026, 2, 10)),
        "d2": _seal(keys["K2"], "ОСХ-2026-000002", date(2026, 5, 5), date(2026, 11, 30)),
        "d3": _seal(keys["K3"], "ОСХ-2026-000003", date(2026, 7, 20)),
        # made with the stolen K3 after the compromise, dated after it
        "d4": _seal(keys["K3"], "ОСХ-2026-000004", date(2026, 8, 25)),
        "d5": _seal(keys["K4"], "ОСХ-2026-000005", date(2026, 10, 1)),
        # the retired K1 used after its sealing period
        "d6": _seal(keys["K1"], "ОСХ-2026-000006", date(2026, 6, 1)),
    }
    signer = (
        "--key", str(signer_key), "--cert", str(signer_cert),
        "--chain", str(folder / "issuing.pem"),
    )  # fmt: skip
    y = Year(folder, pki, root, signer, keys, seals, {})
    compromise = {"K3": date(2026, 8, 20)}
    _build(y, "feb", "2026-02-15T02:00:00Z", ["K1", "K2"], {})
    _build(y, "may", "2026-05-10T02:00:00Z", ["K1", "K2"], {})
    _build(y, "aug", "2026-08-01T02:00:00Z", ["K1", "K2", "K3"], {})
    _build(y, "after", "2026-08-22T02:00:00Z", ["K1", "K2", "K3", "K4"], compromise)
    _build(y, "nov", "2026-11-30T02:00:00Z", ["K1", "K2", "K3", "K4"], compromise)
    _build(y, "dec", "2026-12-20T02:00:00Z", ["K1", "K2", "K3", "K4"], compromise)
    return y


def verdict(year: Year, seal: str, trust_list: str, at: str) -> tuple[str, str | None]:
    result = run_esign(
        "seal", "verify", year.seals[seal], "--trust", str(year.root),
        "--trust-list", str(year.lists[trust_list]), "--at", at, "--json",
        env={"ESIGN_REGISTRY": ""},
    )  # fmt: skip
    report = json.loads(result.out)
    expected_code = {"TOTAL-PASSED": 0, "TOTAL-FAILED": 1, "INDETERMINATE": 2}
    assert result.code == expected_code[report["indication"]], result.out
    return report["indication"], report["subindication"]


CHECKS = [
    # (seal, list, when, expected)
    ("d1", "feb", "2026-02-15T03:00:00Z", PASSED),
    ("d1", "may", "2026-05-10T03:00:00Z", PASSED),  # K1's certificate expired on 1 May
    ("d2", "may", "2026-05-10T03:00:00Z", PASSED),
    ("d1", "aug", "2026-08-01T03:00:00Z", PASSED),
    ("d2", "aug", "2026-08-01T03:00:00Z", PASSED),
    ("d3", "aug", "2026-08-01T03:00:00Z", PASSED),
    ("d3", "after", "2026-08-22T03:00:00Z", PASSED),  # K3's seal from before the compromise
    ("d4", "after", "2026-08-22T03:00:00Z", KEY_REVOKED),  # after it
    ("d2", "nov", "2026-11-30T15:59:59Z", PASSED),  # 23:59:59 on its last day in Ulaanbaatar
    ("d2", "nov", "2026-11-30T16:00:00Z", EXPIRED),  # 00:00 the day after, there
    ("d5", "nov", "2026-11-30T03:00:00Z", PASSED),
    ("d1", "dec", "2026-12-20T03:00:00Z", PASSED),  # every certificate but K4's has expired
    ("d3", "dec", "2026-12-20T03:00:00Z", PASSED),
    ("d4", "dec", "2026-12-20T03:00:00Z", KEY_REVOKED),
    ("d5", "dec", "2026-12-20T03:00:00Z", PASSED),
    ("d6", "dec", "2026-12-20T03:00:00Z", ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")),
    ("d3", "aug", "2026-12-20T03:00:00Z", ("INDETERMINATE", "TRY_LATER")),  # a stale list
]


@pytest.mark.parametrize(("seal", "trust_list", "at", "expected"), CHECKS)
def test_year_of_rotation(
    year: Year, seal: str, trust_list: str, at: str, expected: tuple[str, str | None]
) -> None:
    assert verdict(year, seal, trust_list, at) == expected


def test_revoked_key_message(year: Year) -> None:
    result = run_esign(
        "seal", "verify", year.seals["d4"], "--trust", str(year.root),
        "--trust-list", str(year.lists["dec"]), "--at", "2026-12-20T03:00:00Z", "--lang", "en",
        env={"ESIGN_REGISTRY": ""},
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert "The seal is dated on or after the day its key was revoked" in result.out
    assert "revoked from 2026-08-20; the seal is dated 2026-08-25" in result.out


@dataclass(frozen=True)
class Online:
    trust: Path
    registry: str


@pytest.fixture(scope="module")
def online(year: Year) -> Online:
    """The published seal certificates in a trust configuration, and a registry recording d1
    (its true issue date) and d3 (another issue date than its seal's)."""
    folder = year.folder
    (folder / "seals").mkdir(exist_ok=True)
    for key in year.keys.values():
        (folder / "seals" / key.cert_file.name).write_bytes(key.cert_file.read_bytes())
    trust = folder / "trust.toml"
    trust.write_text(
        'anchors = ["root.pem"]\nintermediates = ["issuing.pem"]\nseal_certificates = ["seals"]\n',
        encoding="utf-8",
    )
    registry = f"sqlite:{folder / 'registry.sqlite3'}"
    with open_registry(registry) as reg:
        for number, day in (
            ("ОСХ-2026-000001", date(2026, 2, 10)),
            ("ОСХ-2026-000003", date(2026, 7, 21)),
        ):
            reg.record(
                IssuedDocument(
                    id=document_id("UBEG", number),
                    doc_type="residence",
                    issuer="UBEG",
                    subject_digest="c" * 64,
                    issued_on=day,
                    expires_on=None,
                    pdf_sha256="d" * 64,
                )
            )
    return Online(trust, registry)


def test_registry_proves_the_issue_date_online(year: Year, online: Online) -> None:
    """Without a list, the expired K1 certificate makes d1 INDETERMINATE, as before; online, the
    registry's record of d1 (same issue date) proves when it was sealed, and d1 passes. A record
    with another issue date proves nothing (and says the seal is not what was issued)."""

    def run(seal: str, *extra: str) -> dict[str, object]:
        result = run_esign(
            "seal", "verify", year.seals[seal], "--trust", str(online.trust),
            "--at", "2026-12-20T03:00:00Z", "--json", *extra, env={"ESIGN_REGISTRY": ""},
        )  # fmt: skip
        report: dict[str, object] = json.loads(result.out)
        codes = {"TOTAL-PASSED": 0, "TOTAL-FAILED": 1, "INDETERMINATE": 2}
        assert result.code == codes[str(report["indication"])], result.out
        return report

    offline = run("d1")
    assert (offline["indication"], offline["subindication"]) == (
        "INDETERMINATE",
        "OUT_OF_BOUNDS_NO_POE",
    )
    proven = run("d1", "--registry", online.registry)
    assert (proven["indication"], proven["subindication"]) == PASSED
    assert "recorded in the registry" in json.dumps(proven["details"])
    other_day = run("d3", "--registry", online.registry)
    assert other_day["indication"] != "TOTAL-PASSED"


def test_verification_page_proves_the_issue_date(year: Year, online: Online) -> None:
    """The same online, through `esign serve` (its clock is now: K1 expired in May 2026)."""
    port = free_port()
    config = year.folder / "server.toml"
    config.write_text(
        f'base_url = "http://127.0.0.1:{port}"\nregistry = "{online.registry}"\n'
        f'trust = ["{online.trust}"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "ESIGN_REGISTRY": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        def seal(name: str) -> dict[str, object]:
            payload = year.seals[name].rsplit("/V/", 1)[1]
            answer = httpx.get(f"{url}/api/v1/seals/{payload}", timeout=30)
            assert answer.status_code == 200, answer.text
            report: dict[str, object] = answer.json()
            return report

        d1 = seal("d1")
        assert (d1["indication"], d1["subindication"]) == PASSED, d1
        assert d1["registry_status"] == "active"
        d3 = seal("d3")
        assert d3["indication"] != "TOTAL-PASSED", d3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
