"""A folder verified by the batch path (worker processes, all busy, each with its own warm
verifier and shared name table) gets, file for file, the report one-by-one verification gives:
on the whole attack corpus (tests/verify/corpus.py), offline and online, at one validation
time, and through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from esign import testpki
from esign.services import PkiServices
from tests.helpers import REPO, run_esign
from tests.verify.corpus import CASES, build_corpus
from verify import TrustConfig, Verifier, VerifyOptions
from verify.isolate import BatchVerifier
from verify.render import to_json


@pytest.fixture(scope="module")
def corpus(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    sample = (REPO / "samples" / "certificate.pdf").read_bytes()
    return build_corpus(pki, services, sample, tmp_path_factory.mktemp("batch-corpus"))


def _trust(pki: testpki.TestPki) -> TrustConfig:
    return TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])


def _comparable(report_json: str) -> dict[str, Any]:
    """The report, with each detail line as its sorted words: pyHanko lists some sets (e.g. the
    paths of a changed object) in hash order, which differs between any two processes."""
    report = json.loads(report_json)
    for signature in report["signatures"]:
        signature["details"] = [sorted(re.findall(r"\w+", d)) for d in signature["details"]]
    return cast(dict[str, Any], report)


def _moment() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_batch_reports_equal_one_by_one_on_the_corpus(
    online: bool, pki: testpki.TestPki, corpus: dict[str, Path]
) -> None:
    options = VerifyOptions(online=online, at=_moment())
    paths = [corpus[c.name] for c in CASES]
    verifier = Verifier(_trust(pki), options)
    alone = [_comparable(to_json(verifier.verify_file(p))) for p in paths]
    with BatchVerifier(_trust(pki), options, workers=2) as batch:
        assert batch.workers == 2
        together = list(batch.verify_files(paths))
    assert [p for p, _ in together] == paths, "reports come back in the order given"
    for (path, report), expected in zip(together, alone, strict=True):
        assert not isinstance(report, BaseException), (path, report)
        assert _comparable(to_json(report)) == expected, path.name
    verdicts = {r["indication"] for r in alone}
    assert {"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"} <= verdicts, verdicts


def test_cli_folder_lines_equal_one_file_runs(
    pki: testpki.TestPki, corpus: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    picked = [c.name for c in CASES][:: max(1, len(CASES) // 6)]
    for name in picked:
        shutil.copy(corpus[name], folder / f"{name}.pdf")
    (folder / "unreadable.pdf").mkdir()  # a folder named .pdf: an error line, not a crash
    at = ["--at", _moment().isoformat(), "--offline", "--trust", str(pki.trust_dir)]
    batch = run_esign("verify", str(folder), *at, "--jsonl")
    lines = [json.loads(line) for line in batch.out.splitlines()]
    assert [Path(d["file"]).stem for d in lines] == sorted(picked), batch.err
    for expected in lines:
        one = run_esign("verify", expected["file"], *at, "--json")
        assert _comparable(one.out) == _comparable(json.dumps(expected)), expected["file"]
