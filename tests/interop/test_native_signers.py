"""PDFs signed by native tools other than esign, with the test PKI, verified by `esign verify`.

Each file carries the verdict a careful expert gives; the test asserts esign's exit code and
verdict and adds a row (with pdfsig's and pyHanko's judgement) to the interop matrix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from tests.helpers import REPO
from tests.interop.matrix import Matrix, esign_verify

SAMPLE = REPO / "samples" / "certificate.pdf"
PASSWORD = b"esign-test"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native")


def test_pyhanko_baseline(
    pki: testpki.TestPki, services: PkiServices, nssdb: str, matrix: Matrix, work: Path
) -> None:
    """The reference row: pyHanko (through esign's signer) at B-T, verified online."""
    out = work / "pyhanko-B-T.pdf"
    with load_key(str(pki.p12("mn-rsa", "official")), password=PASSWORD) as key:
        opts = SignOptions(level=PadesLevel.B_T, tsa_url=pki.tsa_url("mn-rsa"))
        DocumentSigner(key, opts).sign_file(SAMPLE, out)
    r = esign_verify(out, pki)
    matrix.add(
        out,
        signer="pyHanko",
        sequence="sign B-T",
        expected="TOTAL-PASSED",
        esign=r,
        pki=pki,
        nssdb=nssdb,
    )
    assert r.code == 0 and r.indication == "TOTAL-PASSED", r.out + r.err
