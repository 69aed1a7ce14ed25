"""Verification throughput (docs/s, one process, no network) and single-file CLI wall time.

In-process: the same signed 1-page certificate verified repeatedly with one Verifier (offline:
chain and embedded revocation data, no fetching), beside pyHanko's plain validate_pdf_signature
with a fresh ValidationContext per document. CLI: `esign verify --offline one.pdf` wall time
beside `pyhanko sign validate` when pyhanko-cli is installed, as a user runs it again (esign's
dataclass code cache written by an earlier run; also shown without it, as a first run is).
Figures only; never fails a build.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from esign import testpki
from esign.keysource import load_key
from esign.pades import DocumentSigner, PadesLevel, SignOptions
from esign.services import PkiServices
from verify import TrustConfig, Verifier, VerifyOptions, _fasthex, _namecache
from verify.trust import load_cert_paths

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "certificate.pdf"


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


CPU: dict[str, float] = {}
"""Median CPU seconds (user + system) of the last :func:`wall` per command name: on a shared
machine the wall time of a short command is mostly waiting for a core."""


def wall(cmd: list[str], runs: int, extra_env: dict[str, str] | None = None) -> float:
    """Median wall time of ``cmd`` as a user runs it: with Python's bytecode cache (this
    environment may set PYTHONDONTWRITEBYTECODE, which would recompile every edited module of a
    checkout on each run while site-packages keep their .pyc), after one run not counted."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra_env or {})
    subprocess.run(cmd, capture_output=True, check=False, env=env)
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    CPU[Path(cmd[0]).name] = statistics.median(cpu)
    return statistics.median(times)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def paired(ours: list[str], theirs: list[str], runs: int) -> None:
    """``ours`` and ``theirs`` run alternately, so that each pair meets the same machine load:
    the range and median of the per-pair ratios, wall and CPU."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    _timed(ours, env)
    _timed(theirs, env)
    walls, cpus = [], []
    for _ in range(runs):
        (ow, oc), (tw, tc) = _timed(ours, env), _timed(theirs, env)
        walls.append(ow / tw)
        cpus.append(oc / tc)
    for name, ratios in (("wall", sorted(walls)), ("CPU", sorted(cpus))):
        print(f"  alternating pairs ({runs}), {name} ratio: {ratios[0]:.2f}-{ratios[-1]:.2f}, "
              f"median {statistics.median(ratios):.2f} (issue 13 target: <= 0.35)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # pyHanko logs each indeterminate path with a traceback
    pki = testpki.build()
    out = Path(tempfile.mkdtemp(prefix="esign-bench-"))
    files: dict[str, Path] = {}
    with PkiServices(pki):
        key = load_key(str(pki.p12("mn-rsa", "seal")), password=testpki.P12_PASSWORD.encode())
        for level in (PadesLevel.B_B, PadesLevel.B_LT):
            files[level.value] = out / f"{level.value}.pdf"
            opts = SignOptions(level=level, tsa_url=pki.tsa_url("mn-rsa"))
            DocumentSigner(key, opts).sign_file(SAMPLE, files[level.value])
    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    verifier = Verifier(trust, VerifyOptions(online=False))
    anchors = list(load_cert_paths([pki.trust_dir]))
    others = list(load_cert_paths([pki.intermediates_dir]))

    print(f"verification, one process, no network, {args.seconds:.0f} s each (RSA-3072 signer)")
    for level, path in files.items():
        data = path.read_bytes()
        verdict = verifier.verify_bytes(data).indication.value
        ours = rate(lambda d=data: verifier.verify_bytes(d), args.seconds)

        def plain(d: bytes = data) -> None:
            sig = PdfFileReader(BytesIO(d)).embedded_signatures[0]
            vc = ValidationContext(trust_roots=anchors, other_certs=others, allow_fetching=False)
            validate_pdf_signature(sig, vc)

        # pyHanko as shipped: without the faster hex reader and the shared table of prepared
        # X.509 names that importing `verify` installs
        _fasthex.uninstall()
        _namecache.uninstall()
        theirs = rate(plain, args.seconds)
        _fasthex.install()
        _namecache.install()
        print(f"  {level:<5} esign {ours:6.1f} docs/s ({verdict})   pyHanko plain "
              f"{theirs:6.1f} docs/s   ratio {ours / theirs:4.2f}")  # fmt: skip

    esign = [str(Path(sys.executable).with_name("esign"))]
    one = str(files["B-LT"])
    ours_wall = wall([*esign, "verify", "--offline", one], args.runs)
    print(f"CLI wall, median of {args.runs}: esign verify --offline one.pdf  {ours_wall:.3f} s")
    pyhanko = shutil.which("pyhanko", path=str(Path(sys.executable).parent))
    if pyhanko:
        cmd = [pyhanko, "sign", "validate", "--no-revocation-check", "--trust",
               str(pki.trust_dir / "mn-rsa-root.pem"), "--other-certs",
               str(pki.intermediates_dir / "mn-rsa-sco.pem"), one]  # fmt: skip
        theirs_wall = wall(cmd, args.runs)
        print(f"                      pyhanko sign validate one.pdf  {theirs_wall:.3f} s"
              f"   ratio {ours_wall / theirs_wall:4.2f}")  # fmt: skip
        ours_cpu, theirs_cpu = CPU["esign"], CPU[Path(pyhanko).name]
        print(f"  CPU time (user+sys), median: esign {ours_cpu:.3f} s, pyhanko {theirs_cpu:.3f} s"
              f"   ratio {ours_cpu / theirs_cpu:4.2f}")  # fmt: skip
        paired([*esign, "verify", "--offline", one], cmd, args.runs)
    with tempfile.TemporaryDirectory(prefix="esign-bench-nocache-") as empty:
        cold = wall([*esign, "verify", "--offline", one], args.runs,
                    {"XDG_CACHE_HOME": empty, "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    print(f"  without esign's dataclass code cache (a first run): {cold:.3f} s")
    imports = wall([sys.executable, "-c", "import verify.pdf"], args.runs)
    bare = wall([sys.executable, "-c", "pass"], args.runs)
    print(f"  of which: Python start {bare:.3f} s, importing the pyHanko validation stack "
          f"{imports - bare:.3f} s")  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
