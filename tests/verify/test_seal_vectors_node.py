"""The seal vectors, judged by an independent verifier written in JavaScript from the
published documents alone (tools/seal-verifier-js, issue 12).

If docs/qr-seal.md and docs/trust-list.md are sufficient, a second implementation that
never saw the Python source returns the expected verdict for every vector. This test runs
it as a user would (`node verify.js`), judges its output against the vector files itself,
and writes test-artifacts/seal-vectors-node.md (vector, expected, Node verdict).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "seal-verifier-js"
VECTORS = ROOT / "samples" / "seal-vectors"
ARTIFACT = ROOT / "test-artifacts" / "seal-vectors-node.md"


def _verdict(indication: str, subindication: str | None) -> str:
    return f"{indication} / {subindication}" if subindication else indication


def _vector_files() -> list[Path]:
    files = [p for p in VECTORS.glob("*.json") if p.name.split("-", 1)[0].isdigit()]
    return sorted(files, key=lambda p: int(p.name.split("-", 1)[0]))


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the verifier's npm dependencies installed from its lock file."""
    exe = shutil.which("node")
    npm = shutil.which("npm")
    assert exe and npm, "node and npm are needed for the independent seal verifier"
    if (
        not (TOOL / "node_modules" / "cbor2").is_dir()
        or not (TOOL / "node_modules" / "@peculiar" / "x509").is_dir()
    ):
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=TOOL,
            check=True,
            timeout=300,
        )
    return exe


def _run(node: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(TOOL / "verify.js"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_vector_gets_its_expected_verdict_from_the_node_verifier(node: str) -> None:
    files = _vector_files()
    assert len(files) >= 138
    proc = _run(node, "--vectors", VECTORS, "--json")
    assert proc.stderr == ""
    results = {r["name"]: r for r in json.loads(proc.stdout)}
    rows = []
    wrong = []
    for f in files:
        vector = json.loads(f.read_text(encoding="utf-8"))
        got = results[vector["name"]]["got"]
        expected = _verdict(vector["expected"]["indication"], vector["expected"]["subindication"])
        verdict = _verdict(got["indication"], got["subindication"])
        ok = verdict == expected and results[vector["name"]]["claims_match"]
        rows.append(f"| {vector['name']} | {expected} | {verdict} | {'yes' if ok else '**NO**'} |")
        if not ok:
            wrong.append(f"{vector['name']}: expected {expected}, node says {verdict}")
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(
        "# Seal vectors, independent Node verifier (tools/seal-verifier-js)\n\n"
        f"{len(files) - len(wrong)}/{len(files)} vectors give the expected verdict.\n\n"
        "| vector | expected | Node verdict | same |\n|---|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    assert wrong == []
    assert len(results) == len(files)
    assert proc.returncode == 0


def test_the_runner_exits_non_zero_when_a_verdict_differs(node: str, tmp_path: Path) -> None:
    """A vector whose expectation is wrong must make the runner fail, or it proves nothing."""
    vector: dict[str, Any] = json.loads((VECTORS / "01-valid.json").read_text(encoding="utf-8"))
    vector["expected"] = {"indication": "TOTAL-FAILED", "subindication": "SIG_CRYPTO_FAILURE"}
    for key in ("trust_anchors", "intermediates", "seal_certificates"):
        vector[key] = [str(VECTORS / p) for p in vector[key]]
    wrong = tmp_path / "01-valid.json"
    wrong.write_text(json.dumps(vector, ensure_ascii=False), encoding="utf-8")
    proc = _run(node, wrong)
    assert proc.returncode == 1
    assert "FAIL 01-valid: TOTAL-PASSED" in proc.stdout
    assert "0 passed, 1 failed" in proc.stdout


def test_seal_mode_exit_codes_follow_the_indication(node: str) -> None:
    seal = json.loads((VECTORS / "01-valid.json").read_text(encoding="utf-8"))["input"]
    pki = VECTORS / "pki"
    base = ("--trust", pki / "root.pem", "--at", "2026-12-01T04:00:00Z")
    passed = _run(node, "--seal", seal, *base, "--intermediate", pki / "intermediate.pem",
                  "--seal-cert", pki / "seal.pem")  # fmt: skip
    assert (passed.returncode, passed.stdout.split(":")[0]) == (0, "TOTAL-PASSED")
    # one character of the signature changed: forged or altered
    forged = seal[:-3] + ("A" if seal[-3] != "A" else "B") + seal[-2:]
    failed = _run(node, "--seal", forged, *base, "--intermediate", pki / "intermediate.pem",
                  "--seal-cert", pki / "seal.pem")  # fmt: skip
    assert failed.returncode == 1
    assert failed.stdout.startswith("TOTAL-FAILED/")
    # the same seal with the signed trust list, after the list's next update: stale
    stale = _run(node, "--seal", seal, "--trust", pki / "root.pem",
                 "--trust-list", VECTORS / "trust-lists" / "valid.cbor",
                 "--at", "2026-12-03T00:00:00Z")  # fmt: skip
    assert stale.returncode == 2
    assert stale.stdout.startswith("INDETERMINATE/TRY_LATER: trust list refused: out of date")


def test_bad_invocation_is_one_line_and_non_zero(node: str) -> None:
    proc = _run(node, "--seal", "X")
    assert proc.returncode == 3
    assert proc.stderr.strip() == "verify.js: --trust ROOT.pem is required"
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("mode", "vector"),
    [("cose", "01-valid.json"), ("text", "01-valid.json"), ("list", "116-list-valid.json")],
)
def test_mutated_seals_and_lists_never_throw_and_never_pass(
    node: str, mode: str, vector: str
) -> None:
    """3000 bit flips, truncations and insertions each: a verdict every time, never a pass
    for altered bytes (the text mode may pass: lower case or trailing white space are allowed)."""
    proc = subprocess.run(
        [node, str(TOOL / "fuzz.js"), "--mode", mode, "--count", "3000", str(VECTORS / vector)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stderr == ""
    assert proc.stdout.splitlines()[-1] == "3000 passed, 0 failed", proc.stdout[-2000:]
    assert proc.returncode == 0
    tally = json.loads(proc.stdout.splitlines()[-2])
    assert sum(tally.values()) == 3000
    assert len(tally) >= 2  # the mutations reach more than one verdict


def _reference_verdict(case: dict[str, Any]) -> str:
    """`esign seal verify --json`, the reference CLI, as a user runs it."""
    args: list[str] = []
    for anchor in case["trust_anchors"]:
        args += ["--trust", anchor]
    for cert in case["seal_certificates"] + case["intermediates"]:
        args += ["--seal-certs", cert]
    if case["trust_list"]:
        args += ["--trust-list", case["trust_list"]]
    esign = str(Path(sys.executable).parent / "esign")
    proc = subprocess.run(
        [esign, "seal", "verify", case["input"], "--at", case["at"], "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    return _verdict(report["indication"], report["subindication"])


@pytest.mark.slow
def test_node_and_reference_verifiers_agree_beyond_the_vectors(node: str, tmp_path: Path) -> None:
    """77 cases the vectors do not cover (signed claim sets, signed trust lists, crafted seal
    certificates, certificate folders; tools/seal-verifier-js/differential.mjs): the two
    verifiers, one written from the documents alone, give the same verdict on each."""
    made = subprocess.run(
        [node, str(TOOL / "differential.mjs"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    cases = json.loads((tmp_path / "cases.json").read_text(encoding="utf-8"))
    assert len(cases) >= 70
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = list(pool.map(_reference_verdict, cases))
    rows, wrong = [], []
    for case, ref in zip(cases, reference, strict=True):
        mine = _verdict(case["node"]["indication"], case["node"]["subindication"])
        rows.append(f"| {case['name']} | {ref} | {mine} | {'yes' if ref == mine else '**NO**'} |")
        if ref != mine:
            wrong.append(f"{case['name']}: reference {ref}, node {mine} ({case['node']['reason']})")
    ARTIFACT.parent.mkdir(exist_ok=True)
    (ARTIFACT.parent / "seal-differential-node.md").write_text(
        "# Beyond the vectors: reference CLI and Node verifier\n\n"
        "| case | esign seal verify | Node verifier | same |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )
    assert wrong == []
    verdicts = set(reference)
    assert {"TOTAL-PASSED", "TOTAL-FAILED / FORMAT_FAILURE"} < verdicts
    assert "INDETERMINATE / CHAIN_CONSTRAINTS_FAILURE" in verdicts
