"""A one-file `esign verify` loads only what verification runs: not aiohttp, not pyHanko's
signers (issue 13), and it reaches the same verdicts as the batch path, whose workers load
pyHanko whole. Judged from the outside: Python's own import trace (PYTHONPROFILEIMPORTTIME)
on stderr, the exit code and the JSON report."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.resources import sample_pdf
from esign.services import PkiServices
from tests.helpers import run_esign

IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.M)


@pytest.fixture(scope="module")
def signed(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cli-startup")
    made: dict[str, Path] = {}
    with load_key(str(pki.p12("mn-ec", "official")), password=b"esign-test") as key:
        for level in (PadesLevel.B_B, PadesLevel.B_LT):
            made[level.value] = out / f"{level.value}.pdf"
            opts = SignOptions(level=level, tsa_url=pki.tsa_url("mn-ec"))
            DocumentSigner(key, opts).sign_file(sample_pdf(), made[level.value])
    made["trust"] = out / "trust.toml"
    made["trust"].write_text(
        f'anchors = ["{pki.trust_dir}"]\nintermediates = ["{pki.intermediates_dir}"]\n',
        encoding="utf-8",
    )
    return made


def _imports(stderr: str) -> set[str]:
    return set(IMPORTED.findall(stderr))


def test_one_file_offline_loads_no_aiohttp_and_no_signers(signed: dict[str, Path]) -> None:
    r = run_esign(
        "verify",
        str(signed["B-LT"]),
        "--trust",
        str(signed["trust"]),
        "--offline",
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert r.code == 0, r.out + r.err[-2000:]
    assert "(TOTAL-PASSED)" in r.out
    imported = _imports(r.err)
    assert "pyhanko.sign.validation.ades" in imported, "the trace must show what was loaded"
    assert not {m for m in imported if m.split(".")[0] == "aiohttp"}
    assert "pyhanko.sign.signers" not in imported
    assert "pyhanko.sign.timestamps.aiohttp_client" not in imported


def test_one_shot_reports_equal_the_batch_workers_reports(
    signed: dict[str, Path], tmp_path: Path
) -> None:
    """Deferring pyHanko's package initialisation changes no verdict: each file verified alone
    (deferred) and the folder verified by workers (plain `python -m verify.isolate`)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    for level in ("B-B", "B-LT"):
        shutil.copy(signed[level], folder / f"{level}.pdf")
    trust = str(signed["trust"])
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    at = ["--at", moment.isoformat()]  # one validation time for both runs
    batch = run_esign("verify", str(folder), "--trust", trust, "--offline",
                      "--jsonl", *at)  # fmt: skip
    assert batch.code == 2, batch.out + batch.err  # B-B offline: no revocation data
    by_file = {Path(d["file"]).name: d for d in map(json.loads, batch.out.splitlines())}
    assert set(by_file) == {"B-B.pdf", "B-LT.pdf"}
    for name, expected in by_file.items():
        one = run_esign("verify", str(folder / name), "--trust", trust,
                        "--offline", "--json", *at)  # fmt: skip
        assert one.code == {"B-B.pdf": 2, "B-LT.pdf": 0}[name], one.out + one.err
        report = json.loads(one.out)
        for volatile in ("elapsed_ms", "verified_at"):
            report.pop(volatile, None)
            expected.pop(volatile, None)
        assert report == expected
