"""Helpers for tests: run the real `esign` command and poppler's pdfsig as independent judges."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_esign(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run the real `esign` command in a child process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("ESIGN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**full_env, "PYTHONPATH": str(REPO)},
        cwd=cwd or REPO,
        timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class PdfSig:
    code: int
    text: str

    @property
    def valid_signatures(self) -> int:
        return self.text.count("Signature Validation: Signature is Valid.")

    @property
    def trusted_certificates(self) -> int:
        return self.text.count("Certificate Validation: Certificate is Trusted.")


def pdfsig(path: Path, nssdir: str | None = None) -> PdfSig:
    cmd = ["pdfsig"]
    if nssdir:
        cmd += ["-nssdir", nssdir]
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60)
    return PdfSig(proc.returncode, proc.stdout + proc.stderr)


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed (run `make system-deps`)")


def nss_trusts_signer(pdf: Path, nssdir: str, tmp: Path) -> bool:
    """Does NSS (libpkix, the engine behind pdfsig) build a trusted chain for the PDF's signer?

    poppler 22.12's pdfsig reads NSS's error code without checking the verification result, so
    for certificates carrying an OCSP URL it prints "Unknown issue" even for a good chain. vfychain
    runs the same libpkix verification on the certificates that pdfsig dumps from the signature.
    """
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    tmp.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdfsig", "-dump", str(pdf)], cwd=tmp, capture_output=True, check=True)
    dumped = sorted(tmp.glob("*.sig0"))
    if not dumped:
        return False
    certs = pkcs7.load_der_pkcs7_certificates(dumped[0].read_bytes())
    leaves = [c for c in certs if c.subject not in {c2.issuer for c2 in certs if c2 is not c}]
    ordered = leaves[:1] + [c for c in certs if c not in leaves[:1]]
    args: list[str] = []
    for i, cert in enumerate(ordered):
        f = tmp / f"c{i}.pem"
        f.write_bytes(cert.public_bytes(Encoding.PEM))
        args += ["-a", str(f)]
    proc = subprocess.run(
        ["vfychain", "-d", nssdir, "-pp", "-u", "4", *args], capture_output=True, text=True
    )
    return "Chain is good!" in proc.stdout + proc.stderr
