"""Session fixtures that build real things once: the test PKI, its HTTP services, an NSS database
trusting the test roots (for poppler's pdfsig), and helpers to run the `esign` command."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from esign import testpki
from esign.services import PkiServices

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "certificate.pdf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def _own_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """State (default registry, default test PKI) lives in the user's data folder: the tests get
    their own, inherited by every `esign` they start, and never read or litter ~/.local/share."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> testpki.TestPki:
    root = tmp_path_factory.mktemp("pki")
    return testpki.build(root / "test-pki", f"http://127.0.0.1:{free_port()}")


@pytest.fixture(scope="session")
def services(pki: testpki.TestPki) -> Iterator[PkiServices]:
    svc = PkiServices(pki).start()
    yield svc
    svc.stop()


@pytest.fixture()
def sample_pdf() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def nssdb(pki: testpki.TestPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database that trusts the two test roots, for `pdfsig -nssdir`."""
    d = tmp_path_factory.mktemp("nss")
    subprocess.run(["certutil", "-N", "-d", f"sql:{d}", "--empty-password"], check=True)
    for root in sorted(pki.trust_dir.glob("*.pem")):
        subprocess.run(
            ["certutil", "-A", "-d", f"sql:{d}", "-n", root.stem, "-t", "CT,C,C", "-i", str(root)],
            check=True,
        )
    return f"sql:{d}"
