"""Batch issuance from a JSON Lines file, in worker processes, resumable.

Each worker opens the keys and the registry once. A document whose output file exists and (when
a registry is used) whose id is recorded is skipped, so an interrupted batch continues where it
stopped without issuing anything twice. Each number is reserved in the registry before it is
signed, so overlapping batches issue it once; a recorded number whose file is missing is
reported "already issued" unless ``reissue`` is set. Workers issue chunks of :data:`CHUNK`
lines: a chunk's numbers are reserved in one transaction and its signed documents recorded
(with their audit entries) in one, before any of its files is renamed into place. Every input
line yields one result line; a failure is reported and the batch goes on.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EsignError, InputError
from .template import DocumentData, Template, load_template, parse_data

if TYPE_CHECKING:
    from .issue import Issued


@dataclass(frozen=True)
class KeySpec:
    """How to open a key in a worker process (keys themselves are never pickled)."""

    key: str
    cert: Path | None = None
    chain: tuple[Path, ...] = ()
    password: bytes | None = None
    pkcs11_module: str | None = None


@dataclass(frozen=True)
class BatchSettings:
    template: str
    out_dir: Path
    pdf_key: KeySpec
    seal_key: KeySpec
    level: str = "B-LT"  # the PDF carries its revocation data: it proves itself offline
    tsa_url: str | None = None
    base_url: str = "https://verify.e-mongolia.mn"
    registry_url: str | None = None
    workers: int = 2
    reissue: bool = False  # re-issue lost files of recorded documents (else "already issued")
    operator: str | None = None  # audit log client, e.g. "cli:user@host"


@dataclass
class BatchSummary:
    issued: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.issued / self.seconds if self.seconds > 0 else 0.0


CHUNK = 32
"""Lines issued per registry transaction pair: 32 fsync'd commits become 2 (chunk of a batch)."""

_worker: Any = None
_worker_reissue = False


def build_issuer(settings: BatchSettings) -> Any:
    """A CertificateIssuer for ``settings`` (also used by `esign issue` for one document)."""
    from .issue import CertificateIssuer
    from .keysource import load_key
    from .pades import DocumentSigner, PadesLevel, SignOptions
    from .seal import SealSigner

    template = load_template(settings.template)
    pdf = settings.pdf_key
    key = load_key(
        pdf.key, cert=pdf.cert, chain=pdf.chain, password=pdf.password,
        pkcs11_module=pdf.pkcs11_module,
    )  # fmt: skip
    seal = settings.seal_key
    seal_key = key if seal == pdf else load_key(
        seal.key, cert=seal.cert, chain=seal.chain, password=seal.password,
        pkcs11_module=seal.pkcs11_module,
    )  # fmt: skip
    options = SignOptions(
        level=PadesLevel.parse(settings.level),
        tsa_url=settings.tsa_url,
        certify=True,
        reason=f"{template.title_mn} / {template.title_en}",
        location="Монгол Улс",
    )
    registry = None
    if settings.registry_url is not None:
        from .registry import open_registry

        registry = open_registry(settings.registry_url)
    return CertificateIssuer(
        template,
        DocumentSigner(key, options),
        SealSigner.from_loaded_key(seal_key),
        registry=registry,
        base_url=settings.base_url,
        operator=settings.operator,
        key_name=pdf.key,
    )


def _init_worker(settings: BatchSettings) -> None:
    global _worker, _worker_reissue
    _worker = build_issuer(settings)
    _worker_reissue = settings.reissue


def _issue_chunk(tasks: list[tuple[int, dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Issue a chunk of lines with :meth:`CertificateIssuer.issue_many`: two registry commits
    for the chunk, not two per document."""
    results: dict[int, dict[str, Any]] = {}
    good: list[tuple[int, DocumentData, Path]] = []
    for line_no, raw, out_name in tasks:
        try:
            good.append(
                (line_no, parse_data(raw, _worker.template, f"line {line_no}"), Path(out_name))
            )
        except EsignError as e:
            results[line_no] = {"line": line_no, "status": "failed", "error": e.message}
    # Skipped ids (file and record present) never get here. A recorded id (another run issued
    # it, or its file was lost) is refused unless the batch runs with --reissue.
    issued = _worker.issue_many([(data, out) for _, data, out in good], reissue=_worker_reissue)
    for (line_no, _, _), outcome in zip(good, issued, strict=True):
        results[line_no] = _result(line_no, outcome)
    return [results[line_no] for line_no, _, _ in tasks]


def _result(line_no: int, outcome: Issued | EsignError) -> dict[str, Any]:
    from .registry import DuplicateDocument

    if isinstance(outcome, DuplicateDocument):
        lost = not _worker_reissue and not outcome.document.pending
        hint = "; --reissue re-issues a lost file" if lost else ""
        error = f"line {line_no}: already issued: {outcome.message}{hint}"
        return {"line": line_no, "status": "failed", "id": outcome.document.id, "error": error}
    if isinstance(outcome, EsignError):
        return {"line": line_no, "status": "failed", "error": outcome.message}
    return {
        "line": line_no,
        "status": "issued",
        "id": outcome.id,
        "number": outcome.number,
        "file": str(outcome.path),
        "sha256": outcome.pdf_sha256,
    }


def _read_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError as e:
        raise InputError(f"batch file not found: {path}") from e
    with handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line), None
            except json.JSONDecodeError as e:
                yield n, None, f"line {n}: not valid JSON ({e.msg})"


def run_batch(
    jsonl: Path,
    settings: BatchSettings,
    on_result: Callable[[dict[str, Any]], None] = lambda r: None,
) -> BatchSummary:
    from .issue import document_id

    template: Template = load_template(settings.template)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    tasks: list[tuple[int, dict[str, Any], str]] = []
    pending_ids: dict[str, int] = {}
    for n, raw, error in _read_lines(jsonl):
        number = raw.get("number") if isinstance(raw, dict) else None
        if error is not None or not isinstance(number, str):
            result = {"line": n, "status": "failed", "error": error or f"line {n}: no 'number'"}
            summary.failed += 1
            summary.results.append(result)
            on_result(result)
            continue
        doc_id = document_id(template.issuer_code, number)
        if doc_id in pending_ids:
            error = f"line {n}: duplicate number {number}"
            result = {"line": n, "status": "failed", "error": error}
            summary.failed += 1
            summary.results.append(result)
            on_result(result)
            continue
        pending_ids[doc_id] = n
        tasks.append((n, raw, str(settings.out_dir / f"{doc_id}.pdf")))
    done = _already_issued(settings, pending_ids)
    todo = []
    for task in tasks:
        doc_id = Path(task[2]).stem
        if doc_id in done:
            result = {"line": task[0], "status": "skipped", "id": doc_id, "file": task[2]}
            summary.skipped += 1
            summary.results.append(result)
            on_result(result)
        else:
            todo.append(task)
    start = time.perf_counter()
    if todo:
        # Open keys and registry here first: a wrong password must end the batch with one
        # line, not make a worker pool respawn failing initialisers.
        build_issuer(settings).close()
        workers = max(1, min(settings.workers, len(todo)))
        # Chunks of up to CHUNK lines, so that the registry commits once per chunk (twice, in
        # fact: reservations, then completions), yet every worker gets a share of a short batch.
        size = max(1, min(CHUNK, -(-len(todo) // workers)))
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
            for results in pool.imap_unordered(_issue_chunk, chunks):
                for result in results:
                    if result["status"] == "issued":
                        summary.issued += 1
                    else:
                        summary.failed += 1
                    summary.results.append(result)
                    on_result(result)
    summary.seconds = time.perf_counter() - start
    return summary


def _already_issued(settings: BatchSettings, ids: dict[str, int]) -> set[str]:
    on_disk = {i for i in ids if (settings.out_dir / f"{i}.pdf").is_file()}
    if settings.registry_url is None or not on_disk:
        return on_disk
    from .registry import open_registry

    with open_registry(settings.registry_url) as registry:
        return on_disk & set(registry.issued_ids(on_disk))
