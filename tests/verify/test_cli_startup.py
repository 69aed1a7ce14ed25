"""A one-file `esign verify` loads only what verification runs: not aiohttp, not pyHanko's
signers (issue 13), and it reaches the same verdicts as the batch path, whose workers load
pyHanko whole. Judged from the outside: Python's own import trace (PYTHONPROFILEIMPORTTIME)
on stderr, the exit code and the JSON report."""

from __future__ import annotations

import json
import marshal
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
    (deferred) and the folder verified by workers (which import pyHanko whole: isolate._WORKER)."""
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


def test_one_file_offline_loads_no_pkcs12_x509_or_local_time_zone(signed: dict[str, Path]) -> None:
    """Modules imported whole but only called to decrypt or write a PDF load on first use,
    which a verification never makes (esign.lazyimports.LAZY_MODULES)."""
    r = run_esign("verify", str(signed["B-LT"]), "--trust", str(signed["trust"]), "--offline",
                  env={"PYTHONPROFILEIMPORTTIME": "1"})  # fmt: skip
    assert r.code == 0 and "(TOTAL-PASSED)" in r.out, r.out + r.err[-2000:]
    imported = _imports(r.err)
    assert "pyhanko.pdf_utils.crypt.pubkey" in imported, "the trace must show what was loaded"
    assert not imported & {
        "cryptography.hazmat.primitives.serialization.pkcs12",
        "cryptography.x509",
        "tzlocal",
    }


def test_dataclass_code_cache_is_written_once_and_changes_no_report(
    signed: dict[str, Path], tmp_path: Path
) -> None:
    """The compiled dataclass methods kept in the user's cache folder (esign.codecache): the
    first run writes the file, later runs read it and reach the same report; a damaged file
    is compiled over, and nothing is written under PYTHONDONTWRITEBYTECODE."""
    cache = tmp_path / "cache"
    moment = (datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)).isoformat()
    args = ("verify", str(signed["B-LT"]), "--trust", str(signed["trust"]), "--offline",
            "--json", "--at", moment)  # fmt: skip

    def run(**env: str) -> dict[str, object]:
        r = run_esign(*args, env={"XDG_CACHE_HOME": str(cache), **env})
        assert r.code == 0 and "Traceback" not in r.err, r.out + r.err[-2000:]
        report: dict[str, object] = json.loads(r.out)
        for volatile in ("elapsed_ms", "verified_at"):
            report.pop(volatile, None)
        return report

    first = run(PYTHONDONTWRITEBYTECODE="1")
    assert not cache.exists(), "written under PYTHONDONTWRITEBYTECODE"
    assert run(PYTHONDONTWRITEBYTECODE="") == first
    files = list((cache / "esign").glob("dataclass-code-*.marshal"))
    assert len(files) == 1 and files[0].stat().st_size > 10_000
    assert files[0].stat().st_mode & 0o077 == 0, "owner-only, like the data folder"
    written = files[0].stat().st_mtime_ns
    assert run(PYTHONDONTWRITEBYTECODE="") == first
    assert files[0].stat().st_mtime_ns == written, "nothing new compiled: not rewritten"
    files[0].write_bytes(b"\x00damaged")
    assert run(PYTHONDONTWRITEBYTECODE="") == first
    assert files[0].stat().st_size > 10_000, "a damaged file is replaced"


def test_dataclass_code_cache_does_not_grow_without_bound(
    signed: dict[str, Path], tmp_path: Path
) -> None:
    """Texts of dataclasses no run defines any more (edited or upgraded code) are dropped once
    the file holds more than esign.codecache.MAX_ENTRIES."""
    cache = tmp_path / "cache"
    r = run_esign("verify", str(signed["B-LT"]), "--trust", str(signed["trust"]), "--offline",
                  env={"XDG_CACHE_HOME": str(cache), "PYTHONDONTWRITEBYTECODE": ""})  # fmt: skip
    assert r.code == 0, r.out + r.err[-2000:]
    (path,) = (cache / "esign").glob("dataclass-code-*.marshal")
    used = marshal.loads(path.read_bytes())
    stale = {f"def __create_fn__():\n def old_{i}(self):\n  return {i}\n return old_{i}": i
             for i in range(6000)}  # fmt: skip
    path.write_bytes(marshal.dumps({t: compile(t, "<string>", "exec") for t in stale}))
    r = run_esign("verify", str(signed["B-LT"]), "--trust", str(signed["trust"]), "--offline",
                  env={"XDG_CACHE_HOME": str(cache), "PYTHONDONTWRITEBYTECODE": ""})  # fmt: skip
    assert r.code == 0 and "(TOTAL-PASSED)" in r.out, r.out + r.err[-2000:]
    assert set(marshal.loads(path.read_bytes())) == set(used)
