"""`esign issue --batch`: one result line per input line, failures reported without stopping the
batch, and resumable: a second run skips what was issued, rewrites nothing, and issues only what
is missing (the part an interrupted run never reached, or deleted files with --reissue)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from esign import testpki
from esign.issue import document_id
from esign.registry import open_registry
from esign.services import PkiServices
from tests.helpers import REPO, Run, run_esign
from verify.seal import decode_seal

RESIDENCE = json.loads((REPO / "samples" / "data" / "residence.json").read_text(encoding="utf-8"))
GOOD = 10
BAD_JSON_LINE = 4
MISSING_FIELD_LINE = 9
SUMMARY = re.compile(
    r"^issued (\d+), skipped (\d+) \(already issued\), failed (\d+); (\d+\.\d) docs/s$", re.M
)


def number(i: int) -> str:
    return f"ОСХ-2026-0001{i:02d}"


def good_line(i: int) -> str:
    data = json.loads(json.dumps(RESIDENCE))
    data["number"] = number(i)
    data["subject"]["register_number"] = f"УБ990112{i:02d}"
    data["fields"]["household"] = str(1 + i % 6)
    return json.dumps(data, ensure_ascii=False)


def batch_lines() -> list[str]:
    """12 lines: 10 good documents, invalid JSON on line 4, a missing field on line 9."""
    good = iter(range(1, GOOD + 1))
    lines = []
    for n in range(1, GOOD + 3):
        if n == BAD_JSON_LINE:
            lines.append('{"number": "ОСХ-2026-000199", "issued": ')
        elif n == MISSING_FIELD_LINE:
            data = json.loads(good_line(99))
            del data["fields"]["address"]
            lines.append(json.dumps(data, ensure_ascii=False))
        else:
            lines.append(good_line(next(good)))
    return lines


@dataclass(frozen=True)
class BatchRun:
    run: Run
    results: list[dict[str, object]]
    issued: int
    skipped: int
    failed: int
    rate: float

    def by_status(self, status: str) -> list[dict[str, object]]:
        return [r for r in self.results if r["status"] == status]


@dataclass(frozen=True)
class Batch:
    pki: testpki.TestPki
    folder: Path
    out_dir: Path
    registry: str

    def run(self, lines: list[str], name: str = "batch.jsonl", *extra: str) -> BatchRun:
        jsonl = self.folder / name
        jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
        r = run_esign(
            "issue",
            "--template",
            "residence",
            "--batch",
            str(jsonl),
            "--out-dir",
            str(self.out_dir),
            "--workers",
            "2",
            "--key",
            str(self.pki.p12("mn-ec", "seal")),
            "--passfile",
            str(self.pki.password_file),
            "--tsa",
            self.pki.tsa_url("mn-ec"),
            "--base-url",
            "http://127.0.0.1:9/",
            "--registry",
            self.registry,
            *extra,
            cwd=self.folder,
        )
        assert "Traceback" not in r.err, r.err
        results = [json.loads(line) for line in r.out.splitlines()]
        summary = SUMMARY.search(r.err)
        assert summary, r.err
        issued, skipped, failed = (int(summary.group(i)) for i in (1, 2, 3))
        return BatchRun(r, results, issued, skipped, failed, float(summary.group(4)))

    def registry_rows(self) -> list[tuple[object, ...]]:
        path = self.registry.removeprefix("sqlite:")
        with sqlite3.connect(path) as conn:
            return sorted(conn.execute("SELECT * FROM esign_documents").fetchall())

    def files(self) -> dict[str, tuple[int, str]]:
        """id -> (mtime in ns, sha256) of every output PDF."""
        return {
            p.stem: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(self.out_dir.glob("*.pdf"))
        }


def make_batch(pki: testpki.TestPki, folder: Path) -> Batch:
    folder.mkdir(parents=True, exist_ok=True)
    return Batch(pki, folder, folder / "out", f"sqlite:{folder / 'reg.sqlite3'}")


def doc_id(i: int) -> str:
    return document_id("UBEG", number(i))


@pytest.fixture(scope="module")
def first(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Batch, BatchRun]:
    batch = make_batch(pki, tmp_path_factory.mktemp("batch"))
    return batch, batch.run(batch_lines())


def test_one_result_line_per_input_line(first: tuple[Batch, BatchRun]) -> None:
    _, run = first
    assert run.run.code == 1, "failures make the batch exit 1"
    assert sorted(r["line"] for r in run.results) == list(range(1, GOOD + 3))
    assert (run.issued, run.skipped, run.failed) == (GOOD, 0, 2)
    assert run.rate > 0


def test_bad_lines_are_reported_and_the_batch_goes_on(first: tuple[Batch, BatchRun]) -> None:
    _, run = first
    failed = {r["line"]: r for r in run.by_status("failed")}
    assert set(failed) == {BAD_JSON_LINE, MISSING_FIELD_LINE}
    assert str(failed[BAD_JSON_LINE]["error"]).startswith(f"line {BAD_JSON_LINE}: not valid JSON")
    assert failed[MISSING_FIELD_LINE]["error"] == (
        f"line {MISSING_FIELD_LINE}: missing field(s) for residence: address"
    )
    # Lines after each bad line were issued.
    issued_lines = {r["line"] for r in run.by_status("issued")}
    assert {BAD_JSON_LINE + 1, MISSING_FIELD_LINE + 1, GOOD + 2} <= issued_lines


def test_issued_files_match_results_and_registry(first: tuple[Batch, BatchRun]) -> None:
    batch, run = first
    issued = run.by_status("issued")
    assert {r["id"] for r in issued} == {doc_id(i) for i in range(1, GOOD + 1)}
    assert sorted(p.name for p in batch.out_dir.iterdir()) == sorted(
        f"{doc_id(i)}.pdf" for i in range(1, GOOD + 1)
    ), "only complete PDFs, no temporary files"
    with open_registry(batch.registry) as registry:
        for r in issued:
            pdf = Path(str(r["file"]))
            assert pdf == batch.out_dir / f"{r['id']}.pdf"
            digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
            assert r["sha256"] == digest
            doc = registry.get(str(r["id"]))
            assert doc is not None and doc.pdf_sha256 == digest
            assert doc.status.value == "active"
            assert str(r["number"]).startswith("ОСХ-2026-0001")
    assert len(batch.registry_rows()) == GOOD


def test_batch_documents_carry_their_own_seal(first: tuple[Batch, BatchRun]) -> None:
    _, run = first
    from verify.qrscan import pdf_text, texts_from_pdf

    r = next(r for r in run.by_status("issued") if r["number"] == number(7))
    pdf = Path(str(r["file"]))
    (url,) = texts_from_pdf(pdf)
    claims = decode_seal(url).claims
    assert claims.number == number(7) and claims.subject_id == "УБ99011207"
    assert number(7) in pdf_text(pdf) and "УБ99011207" in pdf_text(pdf)


def test_rerun_skips_everything_and_rewrites_nothing(first: tuple[Batch, BatchRun]) -> None:
    batch, _ = first
    files, rows = batch.files(), batch.registry_rows()
    again = batch.run(batch_lines())
    assert again.run.code == 1, "the two bad lines still fail"
    assert (again.issued, again.skipped, again.failed) == (0, GOOD, 2)
    skipped = again.by_status("skipped")
    assert {r["id"] for r in skipped} == {doc_id(i) for i in range(1, GOOD + 1)}
    assert sorted(r["line"] for r in again.results) == list(range(1, GOOD + 3))
    assert batch.files() == files, "no file rewritten"
    assert batch.registry_rows() == rows, "registry unchanged"


def _delete_three(batch: Batch) -> tuple[list[str], dict[str, tuple[int, str]], set[str]]:
    lines = [good_line(i) for i in range(1, GOOD + 1)]
    assert batch.run(lines).run.code == 0
    before = batch.files()
    gone = {doc_id(i) for i in (2, 5, 9)}
    for i in gone:
        (batch.out_dir / f"{i}.pdf").unlink()
    return lines, before, gone


def test_deleted_outputs_are_reissued(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    batch = make_batch(pki, tmp_path / "deleted")
    lines, before, gone = _delete_three(batch)
    refused = batch.run(lines)
    assert refused.run.code == 1, "a lost file is re-issued only on request (--reissue)"
    assert {r["id"] for r in refused.by_status("failed")} == gone
    assert all("already issued" in str(r["error"]) for r in refused.by_status("failed"))
    assert set(batch.files()) == set(before) - gone
    again = batch.run(lines, "batch.jsonl", "--reissue")
    assert again.run.code == 0, again.run.out + again.run.err
    assert {r["id"] for r in again.by_status("issued")} == gone
    assert len(again.by_status("skipped")) == GOOD - 3
    after = batch.files()
    assert set(after) == set(before)
    for i, (mtime, digest) in after.items():
        if i not in gone:
            assert (mtime, digest) == before[i]
    with open_registry(batch.registry) as registry:
        for i in gone:
            doc = registry.get(i)
            assert doc is not None and doc.pdf_sha256 == after[i][1], (
                "the registry describes the file now on disk"
            )


def test_deleted_outputs_never_leave_files_the_registry_does_not_describe(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    batch = make_batch(pki, tmp_path / "deleted")
    lines, before, gone = _delete_three(batch)
    for run in range(2):  # re-issued once, then skipped: never a file the registry misdescribes
        again = batch.run(lines, "batch.jsonl", "--reissue")
        touched = {str(r["id"]) for r in again.by_status("issued")} | {
            doc_id(int(str(r["line"]))) for r in again.by_status("failed")
        }
        assert touched == (gone if run == 0 else set()), again.run.out
        skipped = set(before) - gone if run == 0 else set(before)
        assert {r["id"] for r in again.by_status("skipped")} == skipped
        after = batch.files()
        for i, (mtime, digest) in after.items():
            if i not in gone:
                assert (mtime, digest) == before[i], "an untouched document was rewritten"
        with open_registry(batch.registry) as registry:
            for i, (_, digest) in after.items():
                doc = registry.get(i)
                assert doc is not None and doc.pdf_sha256 == digest, (
                    f"{i}.pdf on disk is not the document the registry describes"
                )


def test_interrupted_batch_resumes_with_the_rest(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    batch = make_batch(pki, tmp_path / "resume")
    lines = [good_line(i) for i in range(1, GOOD + 1)]
    half = GOOD // 2
    part = batch.run(lines[:half], "part.jsonl")
    assert part.run.code == 0 and part.issued == half
    files = batch.files()
    full = batch.run(lines)
    assert full.run.code == 0, full.run.out + full.run.err
    assert (full.issued, full.skipped, full.failed) == (GOOD - half, half, 0)
    assert {r["id"] for r in full.by_status("issued")} == {
        doc_id(i) for i in range(half + 1, GOOD + 1)
    }
    assert {r["id"] for r in full.by_status("skipped")} == set(files)
    assert all(batch.files()[i] == files[i] for i in files)
    assert len(batch.registry_rows()) == GOOD


def test_file_without_registry_record_is_issued_again(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path
) -> None:
    """A worker killed between writing the PDF and recording it: the file is not trusted."""
    batch = make_batch(pki, tmp_path / "crash")
    lines = [good_line(i) for i in range(1, 4)]
    batch.out_dir.mkdir(parents=True)
    stray = batch.out_dir / f"{doc_id(2)}.pdf"
    stray.write_bytes(b"%PDF-1.7 half written")
    run = batch.run(lines)
    assert run.run.code == 0, run.run.out + run.run.err
    assert run.issued == 3
    with open_registry(batch.registry) as registry:
        doc = registry.get(doc_id(2))
    assert doc is not None and doc.pdf_sha256 == hashlib.sha256(stray.read_bytes()).hexdigest()


def test_missing_batch_file_and_wrong_password_end_with_one_line(
    pki: testpki.TestPki, tmp_path: Path
) -> None:
    r = run_esign(
        "issue",
        "--template",
        "residence",
        "--batch",
        str(tmp_path / "none.jsonl"),
        "--out-dir",
        str(tmp_path / "out"),
        "--key",
        str(pki.p12("mn-ec", "seal")),
        "--passfile",
        str(pki.password_file),
        "--no-registry",
        cwd=tmp_path,
    )
    assert r.code == 4 and "batch file not found" in r.err, r.out + r.err
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(good_line(1) + "\n", encoding="utf-8")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not-the-password\n")
    r = run_esign(
        "issue",
        "--template",
        "residence",
        "--batch",
        str(jsonl),
        "--out-dir",
        str(tmp_path / "out"),
        "--key",
        str(pki.p12("mn-ec", "seal")),
        "--passfile",
        str(wrong),
        "--level",
        "B-B",
        "--no-registry",
        cwd=tmp_path,
    )
    assert r.code == 5, r.out + r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
