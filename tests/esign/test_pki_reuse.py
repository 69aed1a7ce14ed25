"""The test PKI is built once and never deleted implicitly (issue 10, point 7): a run that wants
another URL reuses it or refuses in one line; concurrent `esign issue` runs without --key
serialise on its lock instead of crashing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esign import testpki
from esign.errors import InputError
from tests.helpers import REPO, run_esign

URL_A = "http://127.0.0.1:9"
URL_B = "http://127.0.0.1:10"


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file's inode, mtime and bytes: what a silent rebuild would change."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pki_a(tmp_path_factory: pytest.TempPathFactory) -> testpki.TestPki:
    return testpki.build(tmp_path_factory.mktemp("reuse") / "test-pki", URL_A)


def test_build_for_other_url_refuses_and_keeps_files(pki_a: testpki.TestPki) -> None:
    before = snapshot(pki_a.root)
    with pytest.raises(InputError, match="--force"):
        testpki.build(pki_a.root, URL_B)
    reused = testpki.build(pki_a.root)
    assert reused.url == URL_A
    assert snapshot(pki_a.root) == before


def test_cli_build_for_other_url_is_one_line_refusal(pki_a: testpki.TestPki) -> None:
    before = snapshot(pki_a.root)
    r = run_esign("pki", "build", "--dir", str(pki_a.root), "--url", URL_B)
    assert r.code != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0] and URL_A in lines[0], r.err
    assert "Traceback" not in r.out + r.err
    assert snapshot(pki_a.root) == before


def test_issue_without_key_reuses_pki_built_for_other_url(
    pki_a: testpki.TestPki, tmp_path: Path
) -> None:
    """`esign issue` would default to http://127.0.0.1:8781; it must use URL A's PKI as is."""
    before = snapshot(pki_a.root)
    r = run_esign(
        "issue", "--template", "residence",
        "--data", str(REPO / "samples" / "data" / "residence.json"),
        "-o", str(tmp_path / "out.pdf"), "--registry", f"sqlite:{tmp_path / 'reg.sqlite3'}",
        env={testpki.DIR_ENV: str(pki_a.root)}, cwd=tmp_path,
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    assert (tmp_path / "out.pdf").is_file()
    assert snapshot(pki_a.root) == before


def test_concurrent_issue_without_key(tmp_path: Path) -> None:
    """Two runs race to build an absent PKI: one builds, the other waits and reuses it."""
    root = tmp_path / "test-pki"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        testpki.DIR_ENV: str(root),
        "ESIGN_REGISTRY": f"sqlite:{tmp_path / 'reg.sqlite3'}",
    }
    env.pop("ESIGN_DEBUG", None)
    data = REPO / "samples" / "data"
    procs = []
    for name in ("residence", "criminal-record"):
        args = ["issue", "--template", name, "--data", str(data / f"{name}.json")]
        args += ["-o", str(tmp_path / f"{name}.pdf")]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cli", *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert "Traceback" not in out + err, err
        assert code == 0 or len(err.strip().splitlines()) == 1, err
    assert all(code == 0 for code, _, _ in results), results  # they took turns
    assert testpki.TestPki.open(root).url == testpki.DEFAULT_URL
