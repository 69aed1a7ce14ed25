"""The cross-signer interop matrix: one row per file signed by another tool, with the verdict it
must get, esign's verdict, and two independent judges (poppler's pdfsig and pyHanko's CLI).

Tests add rows through the session fixture ``matrix`` (tests/interop/conftest.py); at the end of
the session the table is written to test-artifacts/interop-matrix.md, so a reviewer sees at a
glance where esign disagrees with the other validators and why.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from esign import testpki
from tests.helpers import REPO, pdfsig, run_esign

ARTEFACT = REPO / "test-artifacts" / "interop-matrix.md"


@dataclass
class EsignResult:
    """What `esign verify --json` told the user: exit code, verdict and per-signature results."""

    code: int
    indication: str
    subindication: str | None
    signatures: list[dict[str, object]]
    out: str
    err: str

    @property
    def verdict(self) -> str:
        sub = f" {self.subindication}" if self.subindication else ""
        return f"{self.indication}{sub}"


def esign_verify(
    path: Path, pki: testpki.TestPki, *, online: bool = True, extra: tuple[str, ...] = ()
) -> EsignResult:
    """Run the real `esign verify` with the test roots as trust, as a user would."""
    mode = "--online" if online else "--offline"
    r = run_esign("verify", str(path), "--trust", str(pki.trust_dir), mode, "--json", *extra)
    try:
        doc = json.loads(r.out)
    except ValueError:
        line = (r.err.strip().splitlines() or ["(no output)"])[-1]
        return EsignResult(r.code, f"error: {line}", None, [], r.out, r.err)
    return EsignResult(
        r.code,
        str(doc.get("indication")),
        doc.get("subindication"),
        list(doc.get("signatures") or []),
        r.out,
        r.err,
    )


def pdfsig_line(path: Path, nssdb: str, password: str | None = None) -> str:
    """pdfsig's judgement in one cell: each signature's validation and certificate status."""
    if password is None:
        text = pdfsig(path, nssdb).text
    else:
        cmd = ["pdfsig", "-nssdir", nssdb, "-upw", password, str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        text = proc.stdout + proc.stderr
    sigs = re.findall(r"Signature Validation: (.+?)\.?$", text, re.M)
    certs = re.findall(r"Certificate Validation: (.+?)\.?$", text, re.M)
    if not sigs:
        return (text.strip().splitlines() or ["-"])[-1][:120]
    return "; ".join(f"{s} / {c}" for s, c in zip(sigs, certs + ["-"] * len(sigs), strict=False))


def pyhanko_verdict(path: Path, pki: testpki.TestPki, password: str | None = None) -> str:
    """pyHanko's own judgement, as `pyhanko sign validate --no-strict-syntax` gives it: each
    signature's status summary with the test roots as trust and online revocation fetching.

    In process (the CLI would cost an interpreter start per row); a crash is shown, not raised."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    from esign.certfiles import load_cert_paths

    roots = list(load_cert_paths(sorted(pki.trust_dir.glob("*.pem"))))
    others = list(load_cert_paths(sorted(pki.intermediates_dir.glob("*.pem"))))

    async def judge() -> list[str]:
        with path.open("rb") as f:
            reader = PdfFileReader(f, strict=False)
            if reader.encrypted:
                reader.decrypt(password or "")
            out = []
            for sig in reader.embedded_signatures:
                vc = ValidationContext(
                    trust_roots=roots,
                    other_certs=others,
                    allow_fetching=True,
                    fetcher_backend=RequestsFetcherBackend(),  # no aiohttp session left open
                )
                try:
                    if sig.sig_object_type == "/DocTimeStamp":
                        ts = await async_validate_pdf_timestamp(sig, validation_context=vc)
                        out.append(f"{sig.field_name}: {ts.summary()}")
                    else:
                        status = await async_validate_pdf_signature(sig, vc)
                        out.append(f"{sig.field_name}: {status.summary()}")
                except Exception as e:  # pyHanko crashing is its verdict here
                    out.append(f"{sig.field_name}: error {type(e).__name__}: {e}"[:160])
            return out

    try:
        shown = asyncio.run(judge())
    except Exception as e:
        shown = [f"error {type(e).__name__}: {e}"[:160]]
    return "; ".join(shown) or "(no signature)"


@dataclass
class Row:
    file: str
    signer: str
    sequence: str
    expected: str
    esign: str
    pdfsig: str
    pyhanko: str
    note: str = ""

    @property
    def agrees(self) -> bool:
        return self.esign.startswith(self.expected)


@dataclass
class Matrix:
    """Rows collected during the session; :meth:`write` renders the Markdown table."""

    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        path: Path,
        *,
        signer: str,
        sequence: str,
        expected: str,
        esign: EsignResult | str,
        pki: testpki.TestPki,
        nssdb: str,
        password: str | None = None,
        note: str = "",
    ) -> Row:
        """Add one file's row; pdfsig and pyHanko are run here so every row has all judges."""
        verdict = esign.verdict if isinstance(esign, EsignResult) else esign
        row = Row(
            file=path.name,
            signer=signer,
            sequence=sequence,
            expected=expected,
            esign=verdict,
            pdfsig=pdfsig_line(path, nssdb, password),
            pyhanko=pyhanko_verdict(path, pki, password),
            note=note,
        )
        self.rows.append(row)
        return row

    def render(self) -> str:
        head = [
            "# Cross-signer interop matrix: esign versus pdfsig versus pyHanko",
            "",
            "Generated by the tests in tests/interop/. *expected* is the verdict a careful expert "
            "gives (asserted by the tests); *esign* is `esign verify --json` with the test roots "
            "as trust; *pdfsig* is poppler's pdfsig with an NSS database trusting the same roots; "
            "*pyHanko* is pyHanko's validate_pdf_signature (non-strict reader, same roots, online "
            "revocation): its status summary per signature.",
            "",
            "| file | signer / tool | sequence | expected | esign | pdfsig | pyHanko | note |",
            "|---|---|---|---|---|---|---|---|",
        ]

        def cell(text: str) -> str:
            return text.replace("|", "/").replace("\n", " ")

        body = []
        for r in sorted(self.rows, key=lambda r: (r.signer, r.file)):
            mark = "" if r.agrees else " **(differs)**"
            body.append(
                "| "
                + " | ".join(
                    cell(c)
                    for c in (
                        r.file,
                        r.signer,
                        r.sequence,
                        r.expected,
                        r.esign + mark,
                        r.pdfsig,
                        r.pyhanko,
                        r.note,
                    )
                )
                + " |"
            )
        return "\n".join(head + body) + "\n"

    def write(self, path: Path = ARTEFACT) -> None:
        path.parent.mkdir(exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
