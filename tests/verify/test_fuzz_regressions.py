"""Every input the fuzzer (bench/fuzz_verify.py) found ends in a verdict or an EsignError.

Each file in fuzz-regressions/ is verified in a child process with a 2 GiB address space, as the
fuzzer ran it; the child reports the verdict, or the error's type. Any other exception (a traceback
for a user, HTTP 500 for the service), running out of memory, a crash or a time-out fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esign import testpki
from tests.helpers import REPO

CASES = sorted((Path(__file__).parent / "fuzz-regressions").glob("*.pdf"))
ADDRESS_SPACE = 2 * 2**30
TIMEOUT = 60

_CHILD = """
import json, resource, sys
from pathlib import Path
from esign.errors import EsignError
from verify import TrustConfig, Verifier, VerifyOptions
trust = TrustConfig.from_paths([Path(sys.argv[2])], intermediates=[Path(sys.argv[3])])
verifier = Verifier(trust, VerifyOptions(online=False))
data = Path(sys.argv[1]).read_bytes()
limit = int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    report = verifier.verify_bytes(data, "fuzz.pdf")
    out = {"indication": report.indication.value, "subindication": report.subindication,
           "explanation": report.explanation.en}
except EsignError as e:
    out = {"error": type(e).__name__, "message": str(e)}
print(json.dumps(out))
"""


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_fuzz_regression(case: Path, pki: testpki.TestPki) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(case),
            str(pki.trust_dir),
            str(pki.intermediates_dir),
            str(ADDRESS_SPACE),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, f"{case.name}: verifier raised\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.get("indication") != "TOTAL-PASSED", out
    # The verifier answers a MemoryError with a verdict naming the limit; here that means no
    # reading limit stopped the input before it filled 2 GiB.
    assert "memory limit" not in out.get("explanation", ""), out
