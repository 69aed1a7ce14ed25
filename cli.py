"""The ``esign`` command. Thin: parse options, call the library, render, pick the exit code."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from esign.errors import EsignError, UsageError

if TYPE_CHECKING:
    from verify import TrustConfig, Verifier, VerifyOptions
    from verify.isolate import BatchVerifier
    from verify.report import DocumentReport

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 3
EXIT_INTERNAL = 70


def _fail(message: str, code: int) -> None:
    click.echo(f"esign: error: {message}", err=True)
    sys.exit(code)


def handles_errors(func: F) -> F:
    """Turn library errors into one line on stderr and their exit code; never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EsignError as e:
            _fail(e.message, e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # `esign verify ... | head`: the reader left, nothing to say
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)
        except Exception as e:  # a bug, not a user mistake: still one line, but say so
            if os.environ.get("ESIGN_DEBUG"):
                raise
            _fail(
                f"internal error ({type(e).__name__}: {e}); rerun with ESIGN_DEBUG=1", EXIT_INTERNAL
            )

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="esign")
def esign() -> None:
    """Issue and verify PAdES-signed state documents."""


@esign.command()
@click.argument("input_pdf", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signed PDF to write.",
)
@click.option(
    "--key", required=True, help="PKCS#12 file, PEM private key (with --cert) or pkcs11: URI."
)
@click.option(
    "--cert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signer certificate (PEM/DER) for a PEM key.",
)
@click.option(
    "--chain",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Extra CA certificates to embed; repeatable.",
)
@click.option(
    "--level", default="B-B", show_default=True, help="PAdES level: B-B, B-T, B-LT or B-LTA."
)
@click.option("--tsa", "tsa_url", help="RFC 3161 timestamp service URL (needed from B-T up).")
@click.option(
    "--certify", is_flag=True, help="Certification signature (DocMDP: no changes allowed)."
)
@click.option("--field", "field_name", help="Signature field name (default: next free SignatureN).")
@click.option("--reason", help="Reason for signing.")
@click.option("--location", help="Place of signing.")
@click.option(
    "--passfile",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File whose first line is the key password or PIN (else $ESIGN_PASSWORD).",
)
@click.option("--pkcs11-module", help="PKCS#11 module (.so); else $ESIGN_PKCS11_MODULE.")
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trust anchor file or folder for B-LT/B-LTA path building; repeatable.",
)
@click.option(
    "--no-cert-check",
    is_flag=True,
    help="Sign even if the certificate is expired or revoked (not recommended).",
)
@handles_errors
def sign(
    input_pdf: Path,
    output: Path,
    key: str,
    cert: Path | None,
    chain: Sequence[Path],
    level: str,
    tsa_url: str | None,
    certify: bool,
    field_name: str | None,
    reason: str | None,
    location: str | None,
    passfile: Path | None,
    pkcs11_module: str | None,
    trust: Sequence[Path],
    no_cert_check: bool,
) -> None:
    """Sign INPUT_PDF with a PAdES baseline signature."""
    from esign.certfiles import load_cert_paths
    from esign.keysource import load_key, read_secret
    from esign.pades import DocumentSigner, PadesLevel, SignOptions

    if input_pdf.resolve() == output.resolve():
        raise UsageError("output must differ from input")
    options = SignOptions(
        level=PadesLevel.parse(level),
        tsa_url=tsa_url,
        certify=certify,
        field_name=field_name,
        reason=reason,
        location=location,
        check_certificate=not no_cert_check,
        trust_roots=load_cert_paths(trust),
    )
    with load_key(
        key, cert=cert, chain=chain, password=read_secret(passfile), pkcs11_module=pkcs11_module
    ) as loaded:
        DocumentSigner(loaded, options).sign_file(input_pdf, output)
    click.echo(f"signed {output} ({options.level.value})")


def _collect_pdfs(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() == ".pdf"))
        else:
            files.append(item)
    return files


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise UsageError(
            f"--at {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)"
        ) from e
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


CLI_MEMORY = 2**30
"""Address space of `esign verify` for one file; a folder's files each get a worker this big."""
CLI_CPU_SECONDS = 20
"""CPU time for one file, in this process or in a folder's worker."""


@contextlib.contextmanager
def _file_verifier(
    trust: TrustConfig, options: VerifyOptions, batch: bool
) -> Iterator[Verifier | BatchVerifier]:
    """One file: verified in this process (it is benchmarked; a worker would import pyHanko a
    second time) under an address-space cap and a CPU-time limit. A folder of strangers' files:
    each file in a killable worker with memory, CPU and time limits, so one hostile file costs
    one verdict."""
    from esign.errors import InputError
    from verify import Verifier
    from verify.limits import CpuTimeExceeded, cap_address_space, cpu_time_limit

    if not batch:
        cap_address_space(CLI_MEMORY)
        with cpu_time_limit(CLI_CPU_SECONDS):
            try:
                yield Verifier(trust, options)
            except CpuTimeExceeded as e:  # spent outside a verification: still one line
                raise InputError(str(e)) from e
        return
    from verify.isolate import BatchVerifier

    with BatchVerifier(
        trust, options, memory_bytes=CLI_MEMORY, cpu_seconds=CLI_CPU_SECONDS
    ) as isolated:
        yield isolated


@esign.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trust anchor file, folder or trust.toml; repeatable (default: the built test PKI).",
)
@click.option("--at", "at_time", help="Validate as of this ISO 8601 time instead of now.")
@click.option(
    "--online/--offline",
    default=True,
    show_default=True,
    help="Fetch OCSP/CRL (allowlisted URLs only) or use embedded data only.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON report (one object per file; an array for several).",
)
@click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON report per line, for batches.")
@click.option("--lang", type=click.Choice(["mn", "en"]), default="mn", show_default=True)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File whose first line is the user password of encrypted PDFs (an empty one is tried "
    "anyway).",
)
@handles_errors
def verify(
    inputs: Sequence[Path],
    trust: Sequence[Path],
    at_time: str | None,
    online: bool,
    as_json: bool,
    as_jsonl: bool,
    lang: str,
    password_file: Path | None,
) -> int:
    """Verify the signatures of PDF files (or folders of them).

    Exit code: 0 all TOTAL-PASSED, 1 any TOTAL-FAILED, 2 any INDETERMINATE (none failed),
    4 a file could not be read (and none failed), 10 a PDF carries no signature (none failed,
    all read).
    """
    import gc

    from esign import lazyimports

    # Startup (issue 13): pyHanko's signing side and aiohttp are never run here; and the
    # ~55,000 objects the imports create all stay alive: collecting during the imports, and
    # scanning them again at every later collection (the verifier collects after each file),
    # took ~70 ms of a one-file run. Frozen, the collector only looks at what came after.
    gc.disable()
    lazyimports.install()
    from verify import TrustConfig, VerifyOptions
    from verify.limits import CpuTimeExceeded, limit_report, size_text
    from verify.render import summary, to_json, to_jsonl, to_text

    gc.freeze()
    gc.enable()

    if as_json and as_jsonl:
        raise UsageError("choose one of --json and --jsonl")
    at = _parse_time(at_time)  # usage errors before any file or trust anchor is read
    files = _collect_pdfs(inputs)
    if not files:
        raise UsageError("no PDF files found in the given folders")
    password = None
    if password_file is not None:
        from esign.keysource import read_secret  # imports pyHanko's signers: only when needed

        password = read_secret(password_file)
    options = VerifyOptions(at=at, online=online, password=password)
    counts: dict[str, int] = {}
    reports = []
    batch = len(files) > 1
    show_bar = batch and sys.stderr.isatty() and not (as_json or as_jsonl)
    start = time.perf_counter()
    with (
        _file_verifier(TrustConfig.load(trust), options, batch) as verifier,
        click.progressbar(_verified(verifier, files), len(files), file=sys.stderr, label="verify")
        if show_bar
        else _nullbar(_verified(verifier, files)) as bar,
    ):
        for path, report in bar:
            if isinstance(report, MemoryError):
                limit = f"memory limit {size_text(CLI_MEMORY)} exceeded"
                report = limit_report(str(path), limit, at, online)
            elif isinstance(report, CpuTimeExceeded):
                report = limit_report(str(path), str(report), at, online)
            elif isinstance(report, EsignError):
                counts["ERROR"] = counts.get("ERROR", 0) + 1
                click.echo(f"esign: error: {report.message}", err=True)
                continue
            elif isinstance(report, BaseException):
                raise report
            counts[report.indication.value] = counts.get(report.indication.value, 0) + 1
            if as_jsonl:
                click.echo(to_jsonl(report))
            elif as_json:
                reports.append(report)
            else:
                click.echo(to_text(report, lang) + ("\n" if batch else ""))
    elapsed = time.perf_counter() - start
    if as_json:
        click.echo(to_json(reports[0] if len(reports) == 1 and not batch else reports))
    if batch:
        click.echo(summary(counts, elapsed, lang), err=as_json or as_jsonl)
    if counts.get("TOTAL-FAILED"):
        return 1
    if counts.get("ERROR"):
        return 4
    if counts.get("NO-SIGNATURE"):
        return 10
    if counts.get("INDETERMINATE"):
        return 2
    return 0


def _verified(
    verifier: Verifier | BatchVerifier, files: Sequence[Path]
) -> Iterator[tuple[Path, DocumentReport | BaseException]]:
    """Each file with its report or what stopped it; a folder's files go to the workers a
    window at a time, all of them busy (issue 13), in the order given."""
    from verify import Verifier
    from verify.limits import CpuTimeExceeded

    if not isinstance(verifier, Verifier):  # a folder's BatchVerifier
        yield from verifier.verify_files(files)
        return
    for path in files:
        try:
            yield path, verifier.verify_file(path)
        except (MemoryError, CpuTimeExceeded, EsignError) as e:
            yield path, e


class _nullbar:
    def __init__(self, items: Iterator[tuple[Path, DocumentReport | BaseException]]) -> None:
        self.items = items

    def __enter__(self) -> Iterator[tuple[Path, DocumentReport | BaseException]]:
        return self.items

    def __exit__(self, *exc: object) -> None:
        return None


DEFAULT_REGISTRY = (
    "the registry of the configuration file esign serve would use ($ESIGN_CONFIG, "
    "~/.config/esign/esign.toml, /etc/esign/esign.toml), else esign-registry.sqlite3 in the data "
    "folder (~/.local/share/esign)"
)


def _registry_or_default(url: str | None) -> str:
    """The given registry URL, else the one the server's configuration names (an operator on a
    server host revokes in the server's database, not in a file of their own), else the SQLite
    file in the user's data folder (never the cwd)."""
    if url:
        return url
    from esign.config import locate
    from esign.datadir import default_registry_url

    if locate(None).path is not None:
        from verify.web.settings import load_settings

        configured = load_settings(None).file.registry
        if configured:
            return configured
    return default_registry_url()


@esign.command()
@click.option(
    "--template",
    "template_name",
    required=True,
    help="Built-in template name (residence, criminal-record, social-insurance) or .toml path.",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="One document's data (JSON).",
)
@click.option(
    "--sample",
    is_flag=True,
    help="Use the built-in template's sample data (shipped with esign) instead of --data.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signed PDF to write (with --data).",
)
@click.option(
    "--batch",
    "batch_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Many documents, one JSON object per line.",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for batch output (ID.pdf).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--key",
    help="Signing key (PKCS#12, PEM with --cert, pkcs11: URI); default: the test PKI seal of "
    "the template's agency.",
)
@click.option("--cert", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--chain", multiple=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--seal-key", help="ECDSA P-256 key for the QR seal (default: --key, if it is P-256)."
)
@click.option("--seal-cert", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--passfile",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Password/PIN file (else $ESIGN_PASSWORD).",
)
@click.option("--pkcs11-module")
@click.option(
    "--level",
    default="B-LT",
    show_default=True,
    help="PAdES level of the certification signature (B-LT: the PDF carries its revocation "
    "data and verifies offline; B-LTA adds an archive timestamp).",
)
@click.option(
    "--tsa", "tsa_url", help="Timestamp service (default with the test PKI: its local TSA)."
)
@click.option(
    "--base-url",
    default="https://verify.e-mongolia.mn",
    show_default=True,
    help="Verification page base URL carried in the QR.",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="ESIGN_REGISTRY",
    default=None,
    help=f"Registry URL (sqlite:FILE or postgresql://...; default {DEFAULT_REGISTRY}).",
)
@click.option("--no-registry", is_flag=True, help="Do not record issued documents.")
@click.option(
    "--reissue",
    is_flag=True,
    help="Re-issue the lost file of a recorded, active document, or take over a number whose "
    "issuing was interrupted (its process died); audited. Else such numbers are refused.",
)
@handles_errors
def issue(
    template_name: str,
    data_file: Path | None,
    sample: bool,
    output: Path | None,
    batch_file: Path | None,
    out_dir: Path | None,
    workers: int,
    key: str | None,
    cert: Path | None,
    chain: Sequence[Path],
    seal_key: str | None,
    seal_cert: Path | None,
    passfile: Path | None,
    pkcs11_module: str | None,
    level: str,
    tsa_url: str | None,
    base_url: str,
    registry_url: str | None,
    no_registry: bool,
    reissue: bool,
) -> int:
    """Issue certificates: render from a template, stamp the QR seal, sign, record."""
    from contextlib import ExitStack

    from esign.batch import BatchSettings, KeySpec, build_issuer, run_batch
    from esign.keysource import read_secret
    from esign.template import load_data, load_template

    if sample:
        data_file = _sample_data(template_name, data_file, batch_file)
    if (data_file is None) == (batch_file is None):
        raise UsageError(
            "give either --data FILE.json -o OUT.pdf, or --batch FILE.jsonl --out-dir DIR"
        )
    if data_file is not None and output is None:
        raise UsageError("--data needs -o OUT.pdf")
    if batch_file is not None and out_dir is None:
        raise UsageError("--batch needs --out-dir DIR")
    with ExitStack() as stack:
        if key is None:
            agency = load_template(template_name).issuer_code
            pdf_key, tsa_url = _test_pki_defaults(stack, tsa_url, agency)
            seal = pdf_key
        else:
            secret = read_secret(passfile)
            pdf_key = KeySpec(key, cert, tuple(chain), secret, pkcs11_module)
            seal = (
                KeySpec(seal_key, seal_cert, tuple(chain), secret, pkcs11_module)
                if seal_key
                else pdf_key
            )
        settings = BatchSettings(
            template=template_name,
            out_dir=out_dir or Path("."),
            pdf_key=pdf_key,
            seal_key=seal,
            level=level,
            tsa_url=tsa_url,
            base_url=base_url,
            registry_url=None if no_registry else _registry_or_default(registry_url),
            workers=workers,
            reissue=reissue,
            operator=_operator(),
        )
        if data_file is not None:
            assert output is not None
            issuer = build_issuer(settings)
            try:
                data = load_data(data_file, issuer.template)
                issued = issuer.issue_to(data, output, reissue=reissue)
            finally:
                issuer.close()
            click.echo(f"issued {issued.number} as {output} (id {issued.id})")
            click.echo(f"QR: {issued.url}")
            return 0
        assert batch_file is not None
        show_bar = sys.stderr.isatty()
        total = _count_lines(batch_file) if show_bar else 0
        seen = 0

        def report(result: dict[str, object]) -> None:
            nonlocal seen
            click.echo(json.dumps(result, ensure_ascii=False))
            seen += 1
            if show_bar:  # one line redrawn in place: [#####.....] 40/100
                filled = int(30 * seen / max(total, 1))
                bar = "#" * filled + "." * (30 - filled)
                click.echo(f"\r[{bar}] {seen}/{total}", nl=False, err=True)

        summary = run_batch(batch_file, settings, on_result=report)
        if show_bar:
            click.echo("", err=True)
        click.echo(
            f"issued {summary.issued}, skipped {summary.skipped} (already issued), "
            f"failed {summary.failed}; {summary.rate:.1f} docs/s",
            err=True,
        )
        return 1 if summary.failed else 0


def _operator() -> str:
    """Who runs this command, for the audit log: ``cli:user@host``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"cli:{user}@{socket.gethostname()}"


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def _serve_test_pki(stack: Any, *, hold: bool = False) -> Any:
    """Build the test PKI if absent (an existing one is reused, at the URL it was built for; never
    rebuilt) and serve its OCSP/CRL/TSA for as long as ``stack`` lives, unless something (e.g.
    `esign pki serve`) already serves them. With ``hold``, the PKI's lock is kept as long too:
    concurrent runs take turns instead of one using services the other stops."""
    from esign import testpki
    from esign.errors import ServiceError
    from esign.services import PkiServices

    built = stack.enter_context(testpki.held()) if hold else testpki.build()
    with contextlib.suppress(ServiceError):
        stack.enter_context(PkiServices(built))
    return built


def _sample_data(template_name: str, data_file: Path | None, batch_file: Path | None) -> Path:
    """The sample data shipped for a built-in template (``esign issue --sample``)."""
    from esign.resources import sample_data

    if data_file is not None or batch_file is not None:
        raise UsageError("--sample replaces --data and --batch: give only one of them")
    plain = template_name.replace("-", "").isalnum()
    path = sample_data(template_name) if plain else None
    if path is None or not path.is_file():
        raise UsageError(f"--sample: no sample data for {template_name!r} (built-in templates)")
    return path


def _test_pki_defaults(stack: Any, tsa_url: str | None, agency: str) -> tuple[Any, str]:
    """Embedded defaults: the test PKI's EC seal of ``agency`` (the template's issuer: a seal
    made with another agency's key is refused), its local TSA (started if not running)."""
    from esign import testpki
    from esign.batch import KeySpec

    built = _serve_test_pki(stack, hold=True)
    spec = KeySpec(str(built.agency_seal_p12(agency)), password=testpki.P12_PASSWORD.encode())
    return spec, tsa_url or built.tsa_url("mn-ec")


@esign.command()
@click.argument("doc_id", metavar="ID")
@click.option("--reason", required=True, help="Why the document is revoked (kept in the registry).")
@click.option(
    "--registry",
    "registry_url",
    envvar="ESIGN_REGISTRY",
    default=None,
    help=f"sqlite:FILE or postgresql://... (default {DEFAULT_REGISTRY}).",
)
@handles_errors
def revoke(doc_id: str, reason: str, registry_url: str | None) -> None:
    """Revoke an issued document (ID: the code under its QR). The first revocation is final."""
    from esign.registry import open_registry

    with open_registry(_registry_or_default(registry_url)) as registry:
        doc = registry.revoke(doc_id.strip().upper(), reason, by=_operator())
    assert doc.status_time is not None
    click.echo(f"revoked {doc.id} at {doc.status_time:%Y-%m-%dT%H:%M:%SZ}: {doc.status_reason}")


@esign.command()
@click.argument("doc_id", metavar="ID")
@click.option("--by", "new_id", required=True, help="ID of the replacement, issued first.")
@click.option("--reason", required=True, help="Why it is replaced (kept in the registry).")
@click.option(
    "--registry",
    "registry_url",
    envvar="ESIGN_REGISTRY",
    default=None,
    help=f"sqlite:FILE or postgresql://... (default {DEFAULT_REGISTRY}).",
)
@handles_errors
def supersede(doc_id: str, new_id: str, reason: str, registry_url: str | None) -> None:
    """Mark a document (ID) as replaced by a corrected one; its seal then fails as superseded."""
    from esign.registry import open_registry

    with open_registry(_registry_or_default(registry_url)) as registry:
        old = registry.supersede(
            doc_id.strip().upper(), new_id.strip().upper(), reason, by=_operator()
        )
    assert old.status_time is not None
    click.echo(
        f"superseded {old.id} by {old.superseded_by} at {old.status_time:%Y-%m-%dT%H:%M:%SZ}: "
        f"{old.status_reason}"
    )


@esign.group()
def seal() -> None:
    """QR seals: check what a phone camera, a scanner or a PDF shows."""


@seal.command("verify")
@click.argument("source", metavar="INPUT")
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trust anchors or trust.toml (default: the test PKI in the data folder).",
)
@click.option(
    "--seal-certs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Published seal certificates and the CA certificates they chain through (files, folders).",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="ESIGN_REGISTRY",
    help="Registry to ask about revoked or superseded documents.",
)
@click.option(
    "--trust-list",
    "trust_list",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Signed seal trust list: seal keys, intermediates, withdrawn documents (offline).",
)
@click.option("--at", "at_time", help="Validate as of this ISO 8601 time.")
@click.option(
    "--online/--offline", default=True, show_default=True, help="For a PDF: fetch OCSP/CRL."
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--lang", type=click.Choice(["mn", "en"]), default="mn", show_default=True)
@handles_errors
def seal_verify(
    source: str,
    trust: Sequence[Path],
    seal_certs: Sequence[Path],
    registry_url: str | None,
    trust_list: Path | None,
    at_time: str | None,
    online: bool,
    as_json: bool,
    lang: str,
) -> int:
    """Verify a QR seal. INPUT: the payload or URL, a photo/scan (PNG, JPEG), or a PDF.

    Exit code: 0 authentic, 1 not authentic (forged, altered, revoked), 2 cannot be confirmed.
    """
    import dataclasses

    from verify.seal import load_seal_certs
    from verify.sealcheck import check_seal
    from verify.trust import TrustConfig

    if seal_certs and trust_list:
        raise UsageError("give --seal-certs or --trust-list, not both: the list has the seal keys")
    config = TrustConfig.load(trust)
    if seal_certs:
        config = dataclasses.replace(config, seal_certs=load_seal_certs(list(seal_certs)))
    if source == "-":
        source = sys.stdin.readline().strip()
    listed = None if trust_list is None else _read_trust_list(trust_list)
    report = check_seal(
        source, config, registry_url=registry_url, at=_parse_time(at_time), online=online,
        trust_list=listed,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        from verify.render import VERDICT

        click.echo(
            f"{VERDICT[lang][report.indication]} ({report.indication.value}"
            + (f" / {report.subindication})" if report.subindication else ")")
        )
        click.echo(f"  {report.explanation.get(lang)}")
        if report.claims is not None:
            c = report.claims
            click.echo(
                f"  {c.issuer} · {c.doc_type} · {c.number} · {c.issued} → {c.expires or '—'}"
            )
            click.echo(f"  {c.subject_name} ({c.subject_id})")
        if report.registry_status:
            click.echo(f"  registry: {report.registry_status}")
        for detail in report.details[:3]:
            click.echo(f"  {detail}")
    return report.exit_code


def _read_trust_list(path: Path) -> bytes:
    from esign.errors import InputError

    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read trust list {path}: {e.strerror or e}") from e


@esign.group("trust-list")
def trust_list_group() -> None:
    """Signed trust lists for offline QR seal verifiers (docs/trust-list.md)."""


@trust_list_group.command("build")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trust list file to write (COSE_Sign1).",
)
@click.option(
    "--seals",
    "register",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Seal key register (TOML: agency, certificate, sealing period); default: the test PKI.",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="ESIGN_REGISTRY",
    help="Registry whose revoked and superseded documents the list names (default: data folder).",
)
@click.option("--key", help="Trust-list signing key: PKCS#12, PEM (with --cert) or pkcs11: URI.")
@click.option("--cert", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--chain", multiple=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--passfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--pkcs11-module", help="PKCS#11 module (.so); else $ESIGN_PKCS11_MODULE.")
@click.option("--at", "at_time", help="Issue time (ISO 8601); default now.")
@click.option(
    "--hours",
    default=48,
    show_default=True,
    type=click.IntRange(1, 31 * 24),
    help="Hours until the next update; verifiers refuse the list after that.",
)
@handles_errors
def trust_list_build(
    output: Path,
    register: Path | None,
    registry_url: str | None,
    key: str | None,
    cert: Path | None,
    chain: Sequence[Path],
    passfile: Path | None,
    pkcs11_module: str | None,
    at_time: str | None,
    hours: int,
) -> None:
    """Build and sign the trust list offline verifiers sync (GET /trust-list serves it)."""
    from datetime import timedelta

    from esign import trustlist
    from esign.keysource import load_key, read_secret
    from esign.registry import open_registry

    if register is not None:
        seal_keys, intermediates = trustlist.load_seal_register(register)
    else:
        seal_keys, intermediates = trustlist.test_pki_register()
    issued = _parse_time(at_time) or datetime.now(UTC)
    with open_registry(_registry_or_default(registry_url)) as registry:
        today = issued.astimezone(trustlist.MONGOLIA).date()
        withdrawn = trustlist.withdrawn_documents(registry, today)
    content = trustlist.build_content(
        seal_keys, intermediates, withdrawn, issued=issued, validity=timedelta(hours=hours)
    )
    if key is None:
        key, cert, chain = trustlist.test_pki_signer()
    with load_key(
        key, cert=cert, chain=chain, password=read_secret(passfile), pkcs11_module=pkcs11_module
    ) as loaded:
        data = trustlist.TrustListSigner.from_loaded_key(loaded).sign(content)
    trustlist.write_file(output, data)
    count = sum(len(set(ids)) for ids in withdrawn.values())
    click.echo(
        f"trust list {output}: {len(seal_keys)} seal keys, {count} withdrawn documents, "
        f"issued {content.issued:%Y-%m-%dT%H:%M:%SZ}, "
        f"next update {content.next_update:%Y-%m-%dT%H:%M:%SZ}"
    )


@trust_list_group.command("show")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trust anchors or trust.toml the list's signer must chain to.",
)
@click.option("--at", "at_time", help="Check as of this ISO 8601 time (default now).")
@handles_errors
def trust_list_show(path: Path, trust: Sequence[Path], at_time: str | None) -> int:
    """Check a trust list and print what it lists. Exit 0 if accepted, 2 if refused."""
    from verify.trust import TrustConfig
    from verify.trustlist import TrustListRefused, check_trust_list

    anchors = TrustConfig.load(trust).anchors
    try:
        listed = check_trust_list(_read_trust_list(path), anchors, _parse_time(at_time))
    except TrustListRefused as e:
        click.echo(e.reason)
        return 2
    click.echo(
        f"trust list {path}: accepted; signed by {listed.signer}; issued "
        f"{listed.issued:%Y-%m-%dT%H:%M:%SZ}, next update {listed.next_update:%Y-%m-%dT%H:%M:%SZ}"
    )
    for key in sorted(listed.keys.values(), key=lambda k: (k.agency, k.seal_from)):
        revoked = f", revoked from {key.revoked_from}" if key.revoked_from else ""
        click.echo(
            f"  seal key {key.kid.hex()} {key.agency}: seals {key.seal_from}..{key.seal_until}"
            f"{revoked} ({key.certificate.subject.native.get('common_name', '?')})"
        )
    click.echo(f"  intermediates: {len(listed.intermediates)}")
    for agency, hashes in sorted(listed.withdrawn.items()):
        click.echo(f"  withdrawn documents of {agency}: {len(hashes)}")
    return 0


@esign.command()
@click.option("--host", help="Listen address (else [serve] host, $ESIGN_HOST, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port (else [serve] port, $ESIGN_PORT, 8080)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration (TOML); else $ESIGN_CONFIG, ~/.config/esign/esign.toml, "
    "/etc/esign/esign.toml; none found: the test PKI. See `esign config show`.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    help="Worker processes (else [serve] workers, $ESIGN_WORKERS, 1).",
)
@handles_errors
def serve(
    host: str | None, port: int | None, config_file: Path | None, workers: int | None
) -> None:
    """Serve the verification page, the upload page and the JSON API."""
    import shutil
    import tempfile

    import uvicorn

    from verify.web import create_app
    from verify.web.config import from_settings
    from verify.web.settings import load_settings

    overrides = {"serve.host": host, "serve.port": port, "serve.workers": workers}
    settings = load_settings(config_file, overrides)
    config = from_settings(settings)
    listen = settings.file.serve
    host, port, workers = listen.host, listen.port, listen.workers
    config_file = settings.located.path
    stack = contextlib.ExitStack()
    if config_file is None:  # embedded defaults: the test PKI, its TSA and OCSP too
        _serve_test_pki(stack)
    with stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Every worker writes its metrics here; /metrics in any of them sums them all.
            metrics_dir = tempfile.mkdtemp(prefix="esign-metrics-")
            stack.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        app = create_app(config)  # fails fast, with one line, on a bad configuration
        # At SIGTERM open requests get shutdown_seconds to finish (an upload still verifying
        # then is cut, its worker killed); signings still running are waited for as long again.
        grace = config.shutdown_seconds
        if workers == 1:
            uvicorn.run(
                app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=grace
            )
            return
        if config_file is not None:  # each worker process builds its own app from this
            os.environ["ESIGN_SERVE_CONFIG"] = str(config_file)
        uvicorn.run(
            "verify.web.factory:app_from_env", factory=True, host=host, port=port,
            workers=workers, log_level="warning", timeout_graceful_shutdown=grace,
        )  # fmt: skip


@esign.group("config")
def config_group() -> None:
    """The configuration of `esign serve`: where it is found, what is in effect."""


@config_group.command("show")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="This file instead of the search ($ESIGN_CONFIG, user config folder, /etc/esign).",
)
@handles_errors
def config_show(config_file: Path | None) -> None:
    """Print the settings in effect and where each came from (file, environment, default);
    secrets are masked."""
    from verify.web.settings import load_settings, render

    click.echo(render(load_settings(config_file)))


@esign.group()
def pki() -> None:
    """The test PKI (built in the data folder) and its loopback services."""


@pki.command("build")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to build (default $ESIGN_TEST_PKI, else test-pki in ~/.local/share/esign).",
)
@click.option(
    "--url",
    default=None,
    help="Service URL prefix baked into certificates (default: the existing PKI's, else "
    "http://127.0.0.1:8781).",
)
@click.option("--force", is_flag=True, help="Delete the PKI there and rebuild it with fresh keys.")
@handles_errors
def pki_build(root: Path | None, url: str | None, force: bool) -> None:
    """Generate keys and certificates of the test PKI."""
    from esign import testpki

    built = testpki.build(root, url, force=force)
    click.echo(f"test PKI in {built.root} (services at {built.url})")


@pki.command("serve")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Built test PKI (default $ESIGN_TEST_PKI, else test-pki in ~/.local/share/esign).",
)
@handles_errors
def pki_serve(root: Path | None) -> None:
    """Serve OCSP, CRLs and the TSA of the test PKI until interrupted."""
    from esign import testpki
    from esign.services import PkiServices

    built = testpki.TestPki.open(root or testpki.default_dir())
    click.echo(f"serving OCSP, CRL and TSA at {built.url} (Ctrl-C stops)")
    PkiServices(built).serve_forever()


@esign.command()
@click.option(
    "--out",
    "out_dir",
    default="demo-out",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
)
@handles_errors
def demo(out_dir: Path) -> None:
    """Build the test PKI, start its services, sign a sample at every PAdES level and verify."""
    from verify.demo import run_demo

    ok = run_demo(out_dir, echo=click.echo)
    sys.exit(0 if ok else 1)


def _quiet_libraries() -> None:
    # pyHanko and certvalidator log validation problems with tracebacks; the report says it all.
    if not os.environ.get("ESIGN_DEBUG"):
        logging.getLogger().addHandler(logging.NullHandler())
        for name in ("pyhanko", "pyhanko_certvalidator", "certomancer", "fontTools"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _run(argv: Sequence[str] | None) -> int:
    try:
        rv = esign.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("esign: error: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return rv if isinstance(rv, int) else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; usage errors exit with 3 (0-2 are verdicts).

    Every command has closed its files, connections and worker pools by the time it returns, so
    the process leaves at once: tearing down the interpreter's hundreds of pyHanko, asn1crypto
    and aiohttp modules took ~0.1 s of a one-file `esign verify`.
    """
    from esign import codecache

    codecache.install()  # before pyHanko's ~130 dataclasses are defined
    _quiet_libraries()
    code = _run(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = 141
    codecache.save()
    if os.environ.get("ESIGN_DEBUG"):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    main()
