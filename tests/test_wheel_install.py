"""Install esign as an agency would: build the wheel, install it into a fresh virtualenv outside
the checkout, and run it from another folder with poppler absent from PATH.

What a user sees is judged: exit codes, the command's output, HTTP responses. Nothing from the
checkout is importable in the child processes (no PYTHONPATH, cwd elsewhere), the PATH holds only
the virtualenv's bin folder, and the state (test PKI, registry) must land in the data folder given
by XDG_DATA_HOME. poppler's pdftotext judges the issued PDF from the test process only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.helpers import REPO, Run, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

POPPLER = ("pdftoppm", "pdftotext", "pdfsig", "pdfinfo", "zbarimg")


@dataclass(frozen=True)
class Installed:
    venv: Path
    work: Path
    """The folder the commands run from: outside the checkout, empty at first."""
    data: Path
    """XDG_DATA_HOME of the child processes."""
    env: dict[str, str]
    pki_url: str

    @property
    def esign(self) -> str:
        return str(self.venv / "bin" / "esign")

    def run(self, *args: str, timeout: float = 300) -> Run:
        proc = subprocess.run(
            [self.esign, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.work,
            timeout=timeout,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.esign, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.work,
        )


def _copy_checkout(dest: Path) -> None:
    """The files a clean clone would have (plus uncommitted ones not ignored), links kept."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def _timed(label: str, started: float) -> None:
    print(f"{label}: {time.monotonic() - started:.1f} s", file=sys.stderr)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    src, dist, venv = base / "src", base / "dist", base / "venv"
    work, home, data, config = base / "elsewhere", base / "home", base / "data", base / "config"
    for d in (work, home, data, config):
        d.mkdir()
    _copy_checkout(src)

    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        check=True,
        timeout=600,
    )
    (wheel,) = dist.glob("esign-*.whl")
    _timed("wheel built", started)

    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # Dependencies come from the index (pip's cache makes a second run fast); no --find-links to
    # the checkout, no --system-site-packages: only what the wheel declares.
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    _timed("wheel installed", started)

    env = {
        "PATH": str(venv / "bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(config),
        "TMPDIR": str(base),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    for tool in POPPLER:
        assert shutil.which(tool, path=env["PATH"]) is None, tool
    url = f"http://127.0.0.1:{free_port()}"
    return Installed(venv, work, data, env, url)


def _wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def test_installed_package_is_not_the_checkout(installed: Installed) -> None:
    proc = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import cli, esign, verify; print(cli.__file__, esign.__file__, verify.__file__)"],
        capture_output=True, text=True, env=installed.env, cwd=installed.work, check=True,
    )  # fmt: skip
    for path in proc.stdout.split():
        assert Path(path).is_relative_to(installed.venv), path
        assert not Path(path).is_relative_to(REPO), path
    r = installed.run("--help")
    assert r.code == 0 and "demo" in r.out and "serve" in r.out, r


def test_demo_from_another_folder_without_poppler(installed: Installed) -> None:
    r = installed.run("pki", "build", "--url", installed.pki_url)
    pki_root = installed.data / "esign" / "test-pki"
    assert r.code == 0 and f"test PKI in {pki_root}" in r.out, r
    started = time.monotonic()
    r = installed.run("demo", "--out", "demo-out")
    _timed("esign demo", started)
    assert r.code == 0, r
    assert "Traceback" not in r.err and str(REPO) not in r.out, r
    lines = [line for line in r.out.splitlines() if line.startswith(("TOTAL-", "INDETERMINATE"))]
    # 2 signers x 4 levels online, the 3 sample certificates' QR seals, 4 offline re-checks.
    assert len(lines) == 15 and all(line.startswith("TOTAL-PASSED") for line in lines), r.out
    assert sum(" QR " in line for line in lines) == 3, r.out
    made = sorted(p.name for p in (installed.work / "demo-out").iterdir())
    assert "certificate-mn-ec-official-B-LTA.pdf" in made and "issued-residence.pdf" in made
    # State went to the data folder, nothing into the working folder besides what was asked for.
    assert sorted(p.name for p in installed.work.iterdir()) == ["demo-out"]


@pytest.fixture(scope="module")
def issued(installed: Installed) -> tuple[Path, str]:
    """`esign issue` with a built-in template and its shipped sample data; the PDF and its QR."""
    if not (installed.data / "esign" / "test-pki").is_dir():
        r = installed.run("pki", "build", "--url", installed.pki_url)
        assert r.code == 0, r
    out = installed.work / "residence.pdf"
    r = installed.run("issue", "--template", "residence", "--sample", "-o", out.name)
    assert r.code == 0, r
    assert f"as {out.name}" in r.out and "QR: " in r.out, r
    qr = r.out.split("QR: ", 1)[1].split()[0]
    assert out.is_file() and out.read_bytes().startswith(b"%PDF-")
    assert not (installed.work / "esign-registry.sqlite3").exists()
    assert (installed.data / "esign" / "esign-registry.sqlite3").is_file()
    return out, qr


def test_issue_then_seal_verify_the_pdf(installed: Installed, issued: tuple[Path, str]) -> None:
    pdf, _ = issued
    require_tool("pdftotext")  # the judge runs here, never inside the installed esign
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "УБ99112233" in text and "ОРШИН СУУГАА ХАЯГИЙН ТОДОРХОЙЛОЛТ" in text

    # Issued at B-LT: the PDF carries its revocation data, so the README's offline check passes
    # with no service running.
    r = installed.run("seal", "verify", str(pdf), "--offline", "--lang", "en")
    assert r.code == 0 and r.out.startswith("VALID (TOTAL-PASSED)"), r

    services = installed.start("pki", "serve")  # OCSP/CRL/TSA for the online check
    try:
        _wait_for(installed.pki_url + "/", services)
        r = installed.run("seal", "verify", str(pdf), "--json")
        assert r.code == 0, r  # the QR read from the rendered page (PDFium), matched to the text
        report = json.loads(r.out)
        assert report["indication"] == "TOTAL-PASSED", report
        assert report["claims"]["subject_id"] == "УБ99112233"
        assert report["claims"]["doc_type"] == "residence"
        r = installed.run("seal", "verify", str(pdf), "--lang", "en")
        assert r.code == 0 and r.out.startswith("VALID (TOTAL-PASSED)"), r
        assert "(УБ99112233)" in r.out and "PDF: " not in r.out, r  # PDF line: only if not valid
    finally:
        _stop(services)

    forged = installed.work / "not-a-pdf.pdf"
    forged.write_bytes(b"%PDF-1.7\n" + b"garbage" * 100)
    r = installed.run("seal", "verify", str(forged))
    assert r.code != 0 and "Traceback" not in r.err and r.err.count("\n") <= 1, r
    forged.unlink()


def test_serve_seal_page_and_operations(installed: Installed, issued: tuple[Path, str]) -> None:
    _, qr = issued
    payload = qr.rsplit("/", 1)[1]
    shown = installed.run("config", "show")
    registry = installed.data / "esign" / "esign-registry.sqlite3"
    assert shown.code == 0 and f'registry = "sqlite://{registry}"' in shown.out, shown
    port = free_port()
    server = installed.start("serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/healthz", server, seconds=120)
        r = httpx.get(base + "/healthz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        page = httpx.get(f"{base}/v/{payload}", timeout=30)
        assert page.status_code == 200, page.text
        assert "ЖИНХЭНЭ БАРИМТ" in page.text, page.text
        assert "ОСХ-2026-000123" in page.text
        english = httpx.get(f"{base}/v/{payload}", params={"lang": "en"}, timeout=30)
        assert "AUTHENTIC" in english.text, english.text
        ready = _ready(base)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready", ready.text
        assert set(ready.json()["checks"]) >= {"registry", "trust", "signing_keys", "tsa"}
        metrics = httpx.get(base + "/metrics", timeout=10)
        assert metrics.status_code == 200, metrics.text
        assert metrics.headers["content-type"].startswith("text/plain")
        verdicts = {
            (s.labels["kind"], s.labels["indication"]): s.value
            for family in text_string_to_metric_families(metrics.text)
            for s in family.samples
            if s.name == "esign_verdicts_total"
        }
        assert verdicts == {("seal", "TOTAL-PASSED"): 2.0}, verdicts  # the two seal pages
    finally:
        out = _stop(server)
    assert "Traceback" not in out, out
    assert not (installed.work / "esign-registry.sqlite3").exists()


def _ready(base: str, seconds: float = 60) -> httpx.Response:
    """/readyz once the signing keys have loaded (503 "still loading" until then)."""
    deadline = time.monotonic() + seconds
    while True:
        r = httpx.get(base + "/readyz", timeout=30)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)
