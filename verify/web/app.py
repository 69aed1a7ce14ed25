"""`esign serve`: the citizens' verification page, the upload-and-verify page, and the JSON API
for agency backends (sign, issue, revoke), in one FastAPI application.

It lives in ``verify`` because it needs both halves: ``verify`` may import ``esign``, never the
reverse. Every signing is written to the registry's append-only audit log.
"""

import asyncio
import base64
import functools
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from esign.certwatch import CertificateWatch
from esign.errors import EsignError, InputError
from esign.registry import Registry
from esign.resources import builtin_templates, resource_path, sample_data
from esign.template import Template, load_template

from ..isolate import IsolatedVerifier
from ..pdf import VerifyOptions
from ..report import DocumentReport, Indication
from ..seal import (
    MAX_INPUT_CHARS,
    MONGOLIA,
    SealFormatError,
    SealReport,
    averify_seal,
    canonical_payload,
    verify_seal,
)
from ..sealcheck import apply_registry
from ..sealdate import judge_at_recorded_issue
from .config import Client, ServerConfig
from .gate import Gate
from .ops import InFlight, Metrics, Observe, access_log, run_checks, timed
from .trustlistfile import TrustListFile
from .uploads import WORKER_NICE, ClientGone, UploadLane, UploadsBusy

HERE = Path(__file__).resolve().parent
TEMPLATE_DIR = builtin_templates()


def mask_name(name: str) -> str:
    """Show enough of a name to compare with the paper, not enough to harvest it."""
    return " ".join(
        w[0] + "*" * max(len(w) - 2, 1) + (w[-1] if len(w) > 2 else "") for w in name.split()
    )


def mask_register(number: str) -> str:
    return number[:2] + "**" + number[4:6] + "**" + number[-2:] if len(number) >= 8 else "****"


_SAMPLE_DATA = sample_data("residence")


class IssueBody(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "template": "residence",
                    "key": "agency-seal",
                    "data": json.loads(_SAMPLE_DATA.read_text(encoding="utf-8")),
                }
            ]
        }
    }

    template: str = Field(description="Template name, e.g. residence")
    key: str = Field(description="Signing key name granted to the client")
    data: dict[str, Any] = Field(description="Document data as in samples/data/*.json")


class RevokeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class SupersedeBody(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="Id of the replacement document")
    reason: str = Field(min_length=1, max_length=500)


class Problem(BaseModel):
    """Every error answer: a message, or FastAPI's list of validation errors."""

    detail: str | list[dict[str, Any]]


class LocalText(BaseModel):
    mn: str
    en: str


class SealClaimsOut(BaseModel):
    issuer: str
    doc_type: str
    number: str
    issued: str
    expires: str | None
    subject_name: str
    subject_id: str
    fields_digest: str


class SealReportOut(BaseModel):
    """The JSON of :class:`verify.seal.SealReport` (``esign.seal.report/1``), as served."""

    schema_: str = Field(alias="schema")
    indication: Indication
    subindication: str | None
    explanation: LocalText
    claims: SealClaimsOut | None
    kid: str | None
    seal_certificate: str | None
    validation_time: str | None
    details: list[str]
    registry_status: str | None


class RevokedOut(BaseModel):
    id: str
    status: str
    reason: str | None
    time: str | None


class SupersededOut(RevokedOut):
    superseded_by: str | None


_ERRORS = {
    400: "The request or the document data is malformed",
    401: "No or unknown API key",
    403: "The client is not granted this key or document type",
    404: "No such key, template or document",
    409: "The document is already revoked or superseded",
    413: "The request body is over the configured limit",
    414: f"The seal payload is over {MAX_INPUT_CHARS} characters",
    422: "The request does not match the schema, or the document cannot be signed",
    429: "Too many requests from this client; see Retry-After",
    503: "A service the server depends on (registry, TSA) is unavailable, or all upload "
    "workers are busy (see Retry-After)",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": _ERRORS[code]} for code in codes}


def _pdf_body(description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            # The body is read as bytes whatever its declared type.
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/pdf", "application/octet-stream")
            },
        }
    }


_PDF_OUT: dict[str, Any] = {
    "description": "The signed PDF",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}


def _verify_report_schema() -> dict[str, Any]:
    """docs/verify-report.schema.json with its ``$defs`` lifted into OpenAPI components."""
    path = resource_path("verify", "data", "verify-report.schema.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(raw).replace('"#/$defs/', '"#/components/schemas/VerifyReport_')
    lifted: dict[str, Any] = json.loads(text)
    defs = lifted.pop("$defs", {})
    for key in ("$schema", "$id"):
        lifted.pop(key, None)
    return {"VerifyReport": lifted, **{f"VerifyReport_{k}": v for k, v in defs.items()}}


class BodyTooLarge(Exception):
    pass


_T = TypeVar("_T")


# Seal pages that miss the verdict cache, and their registry lookups, run here: never behind
# agency signing (the default thread pool) nor behind uploads (worker processes).
SEAL_THREADS = 8


_log = logging.getLogger(__name__)
READY_TIMEOUT = 5.0
"""Seconds each readiness check may take (registry, keys, TSA)."""
REGISTRY_UNAVAILABLE = "the registry of issued documents is unavailable; try again later"


def _utcnow() -> datetime:
    """The server's clock for seal verdicts (one place, so a test can move it across midnight)."""
    return datetime.now(UTC)


def create_app(config: ServerConfig) -> FastAPI:
    trust = config.load_trust()
    isolated = IsolatedVerifier(
        trust, VerifyOptions(online=True), workers=config.upload_workers,
        memory_bytes=config.upload_memory_mb * 2**20, cpu_seconds=config.upload_cpu_seconds,
        wall_seconds=config.upload_seconds, nice=WORKER_NICE,
    )  # fmt: skip
    uploads = UploadLane(isolated.verify, config.upload_workers, config.upload_queue)
    seal_pool = ThreadPoolExecutor(SEAL_THREADS, thread_name_prefix="esign-seal")
    # Readiness checks wait on the network: their own threads, never the seal pages'.
    ready_pool = ThreadPoolExecutor(4, thread_name_prefix="esign-readyz")
    metrics = Metrics()
    in_flight = InFlight()

    async def seal_thread(fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(seal_pool, fn, *args)

    # Seal verdicts share the trust store's certificates, which asn1crypto parses lazily and not
    # thread-safely (a cold cache under wrk made 32 threads race: KeyError, HTTP 500). One
    # verdict is computed at a time, and concurrent misses for one payload await the same one.
    verdict_pool = ThreadPoolExecutor(1, thread_name_prefix="esign-seal-verdict")
    pending: dict[object, asyncio.Future[Any]] = {}

    async def verdict_once(key: object, fn: Callable[..., _T], *args: Any) -> _T:
        running = pending.get(key)
        if running is None:
            running = asyncio.get_running_loop().run_in_executor(verdict_pool, fn, *args)
            pending[key] = running
            running.add_done_callback(lambda _: pending.pop(key, None))
        result: _T = await asyncio.shield(running)  # one leaving client cancels no one else
        return result

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await isolated.start()  # warm workers before the first upload, not during it
        # Signing keys load (PKCS#11 login, certificate status) in the background: /readyz
        # says "loading" meanwhile, and the first agency request does not pay for it.
        keys_loaded.append(asyncio.get_running_loop().run_in_executor(ready_pool, load_keys))
        try:
            yield
        finally:
            # uvicorn has waited for open requests (its graceful timeout) and cancelled the rest;
            # a signing thread goes on regardless: let it finish and record what it signed.
            left = await in_flight.drain(config.shutdown_seconds)
            if left:
                _log.error("shutdown: %d signing(s) still running after %gs", left,
                           config.shutdown_seconds)  # fmt: skip
            await isolated.aclose()
            ready_pool.shutdown(wait=False, cancel_futures=True)
            seal_pool.shutdown(wait=False, cancel_futures=True)
            verdict_pool.shutdown(wait=False, cancel_futures=True)

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    doc_templates: dict[str, Template] = {}
    for path in sorted(TEMPLATE_DIR.glob("*.toml")):
        t = load_template(str(path))
        doc_templates[t.doc_type] = t
    issuers = {t.issuer_code: t for t in doc_templates.values()}
    # The API takes a template by name only: load_template() also accepts a path, which would let
    # a client make the server read any .toml file it can name.
    by_name = {t.name: t for t in doc_templates.values()}
    signers: dict[str, Any] = {}
    signer_lock = threading.Lock()
    watches: dict[str, CertificateWatch] = {}
    registry = None
    if config.registry_url is not None:
        from esign.registry import open_registry

        registry = open_registry(config.registry_url)

    app = FastAPI(
        title="esign",
        version="1",
        description="Verification of Mongolian state documents and signing for agency backends.",
        lifespan=lifespan,
    )
    app.add_middleware(Gate, config=config)
    app.add_middleware(
        Observe, metrics=metrics, routes=app.router.routes, stream=access_log(config.access_log)
    )

    # The cryptographic verdict depends on the payload and the day (expiry) only, so it is
    # cached, keyed by the canonical payload and the date in Ulaanbaatar, where expiry is
    # judged; the registry status is not cached, and is applied per request.
    verdicts: OrderedDict[tuple[str, date], SealReport] = OrderedDict()
    verdicts_lock = threading.Lock()
    # A lookup in the server's open SQLite registry takes well under a millisecond: done on the
    # event loop. A network database round trip would stall the loop: done in a thread.
    registry_inline = (config.registry_url or "").lower().startswith("sqlite:")

    def seal_verdict(key: tuple[str, date], at: datetime) -> SealReport:
        report = verify_seal(key[0], trust, trust.seal_certs, at=at)
        with verdicts_lock:
            verdicts[key] = report
            if len(verdicts) > 4096:
                verdicts.popitem(last=False)
        return report

    async def check_seal(payload: str, *, reader: Client | None = None) -> SealReport:
        """The seal's verdict, on the event loop when cached: the page citizens load most must
        not wait for a worker thread (under load, the hand-off to the thread pool and back made
        the p95 latency ten times the p50). Over-long input is refused, never cut to length."""
        if len(payload) > MAX_INPUT_CHARS:
            raise HTTPException(
                414, f"seal payload is {len(payload)} characters, more than {MAX_INPUT_CHARS}"
            )
        now = _utcnow()
        try:
            key = (canonical_payload(payload), now.astimezone(MONGOLIA).date())
        except SealFormatError:  # not ASCII, no payload: refused at once, never cached
            return await averify_seal(payload, trust, trust.seal_certs, now)
        with verdicts_lock:
            report = verdicts.get(key)
        if report is None:
            report = await verdict_once(key, seal_verdict, key, now)
        if registry is None:
            return report
        if report.subindication == "OUT_OF_BOUNDS_NO_POE":  # issue date proven by the record?
            prove = (judge_at_recorded_issue, report, key[0], trust, now, registry)
            report = await verdict_once(("proven", *key), *prove)
        # Why a document was revoked is told only to clients answering for its agency.
        claims = report.claims
        with_reason = reader is not None and claims is not None and reader.may_revoke(claims.issuer)
        lookup = functools.partial(apply_registry, with_reason=with_reason)
        if registry_inline:
            return lookup(report, registry)
        return await seal_thread(lookup, report, registry)

    async def read_limited(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_upload_bytes:
            raise BodyTooLarge()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_upload_bytes:
                raise BodyTooLarge()
            chunks.append(chunk)
        return b"".join(chunks)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        mb = config.max_upload_bytes // (1024 * 1024)
        return JSONResponse({"detail": f"request body over {mb} MiB"}, status_code=413)

    @app.exception_handler(UploadsBusy)
    async def uploads_busy(request: Request, exc: UploadsBusy) -> Response:
        return JSONResponse(
            {"detail": "all upload workers are busy; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody is listening; for the access log only

    @app.exception_handler(EsignError)
    async def esign_error(request: Request, exc: EsignError) -> Response:
        status = 400 if isinstance(exc, InputError) else 422
        if type(exc).__name__ == "UnknownDocument":
            status = 404
        elif type(exc).__name__ in ("AlreadyRevoked", "StatusConflict", "DuplicateDocument"):
            status = 409
        elif type(exc).__name__ in ("ServiceError", "RegistryUnavailable", "WorkerFailed"):
            status = 503
        if type(exc).__name__ == "RegistryUnavailable":
            metrics.registry_errors.inc()
            # Where the database is and what it said are for the log, not for an API answer.
            _log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            return JSONResponse({"detail": REGISTRY_UNAVAILABLE}, status_code=status)
        return JSONResponse({"detail": exc.message}, status_code=status)

    bearer = HTTPBearer(auto_error=False, description="The client's API key")

    def client(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Client:
        if credentials is None:
            raise HTTPException(401, "API key required", headers={"WWW-Authenticate": "Bearer"})
        found = config.client_for(credentials.credentials.strip())
        if found is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        return found

    def signer_for(name: str) -> Any:
        from esign.keysource import load_key
        from esign.pades import DocumentSigner, PadesLevel, SignOptions

        with signer_lock:
            if name not in signers:
                spec = config.signing_keys[name]
                key = load_key(
                    spec.key, cert=spec.cert, chain=spec.chain, password=spec.password(),
                    pkcs11_module=spec.pkcs11_module,
                )  # fmt: skip
                # B-LT validates the signer's chain: up to the configured anchors, not only to a
                # root that happens to sit in the key file (an HSM key's chain often has none).
                options = SignOptions(
                    level=PadesLevel.parse(spec.level), tsa_url=spec.tsa_url,
                    trust_roots=tuple(trust.anchors),
                )  # fmt: skip
                signers[name] = (DocumentSigner(key, options), threading.Lock(), key, spec)
                watches[name] = CertificateWatch(
                    key.signing_cert, key.chain, trust_roots=trust.anchors,
                    interval=spec.recheck_seconds,
                )  # fmt: skip
            return signers[name]

    def fit_to_sign(name: str) -> None:
        """Refuse (CertificateRefused: 422) once the key's certificate is revoked or expired:
        the status is re-checked while the server runs, not only at its first signature."""
        signer_for(name)
        watches[name].check()

    certificate_issuers: dict[tuple[str, str], Any] = {}

    def issuer_for(key_name: str, template_name: str, template: Template) -> tuple[Any, Any]:
        """One issuer per key and template, like the signers: its certificate check (an OCSP
        round trip) and the seal key's self-test run once, not on every request."""
        from esign.issue import CertificateIssuer
        from esign.pades import DocumentSigner, PadesLevel, SignOptions
        from esign.seal import SealSigner

        _, lock, key, spec = signer_for(key_name)
        with signer_lock:
            if (key_name, template_name) not in certificate_issuers:
                options = SignOptions(
                    level=PadesLevel.parse(spec.level), tsa_url=spec.tsa_url, certify=True,
                    reason=f"{template.title_mn} / {template.title_en}",
                    trust_roots=tuple(trust.anchors),
                )  # fmt: skip
                certificate_issuers[key_name, template_name] = CertificateIssuer(
                    template,
                    DocumentSigner(key, options),
                    SealSigner.from_loaded_key(key),
                    registry=registry,
                    base_url=config.base_url,
                    key_name=key_name,
                )
            return certificate_issuers[key_name, template_name], lock

    def grant(who: Client, key: str) -> None:
        if key not in config.signing_keys:
            raise HTTPException(404, f"no signing key {key!r}")
        if key not in who.keys:
            raise HTTPException(403, f"client {who.name} may not use key {key!r}")

    def audit(who: Client, action: str, key: str, data: bytes, doc_id: str | None = None) -> None:
        if registry is not None:
            registry.audit(
                client=who.name,
                action=action,
                key_name=key,
                document_sha256=hashlib.sha256(data).hexdigest(),
                document_id=doc_id,
            )

    def seal_seen(report: SealReport) -> SealReport:
        metrics.verdicts.labels("seal", report.indication.value).inc()
        if report.registry_status == "unavailable":
            metrics.registry_errors.inc()
        return report

    def revocable(doc_id: str, who: Client) -> Registry:
        """The registry, once ``who`` holds the revoke grant for the agency that issued
        ``doc_id``. Any other client gets the very answer an unknown id gets (404, same body):
        whether another agency's document exists is not its business."""
        if registry is None:
            raise HTTPException(503, "no registry configured")
        doc = registry.get(doc_id)
        if doc is None or doc.pending or not who.may_revoke(doc.issuer):
            raise HTTPException(404, f"no document {doc_id}")
        return registry

    def lang_of(request: Request) -> str:
        return "en" if request.query_params.get("lang") == "en" else "mn"

    # --- pages -------------------------------------------------------------------------------

    @app.get("/v/{payload}", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/V/{payload}", response_class=HTMLResponse, include_in_schema=False)  # QR: uppercase
    async def seal_page(request: Request, payload: str) -> Response:
        report = seal_seen(await check_seal(payload))
        lang = lang_of(request)
        claims = report.claims
        template = doc_templates.get(claims.doc_type) if claims else None
        issuer = issuers.get(claims.issuer) if claims else None
        if report.indication is Indication.TOTAL_PASSED:
            verdict = "ok"
        elif report.subindication in ("REVOKED", "EXPIRED"):
            verdict = "void"
        elif report.indication is Indication.TOTAL_FAILED:
            verdict = "bad"
        else:
            verdict = "unknown"
        context = {
            "lang": lang,
            "verdict": verdict,
            "report": report,
            "claims": claims,
            "title": (template.title_mn if lang == "mn" else template.title_en)
            if template
            else None,
            "issuer": (issuer.issuer_mn if lang == "mn" else issuer.issuer_en) if issuer else None,
            "masked_name": mask_name(claims.subject_name) if claims else None,
            "masked_id": mask_register(claims.subject_id) if claims else None,
            "explanation": report.explanation.get(lang),
            "path": request.url.path,
        }
        status = 200 if report.claims is not None else 400
        return templates.TemplateResponse(request, "seal.html", context, status_code=status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "index.html",
            {"lang": lang_of(request), "path": "/", "max_mb": config.max_upload_bytes // 2**20},
        )

    @app.post("/verify", response_class=HTMLResponse, include_in_schema=False)
    async def verify_upload(
        request: Request, file: UploadFile, lang: Annotated[str, Form()] = "mn"
    ) -> Response:
        data = await file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise BodyTooLarge()
        report = await uploads.verify(data, file.filename or "upload.pdf", request.receive)
        metrics.verdicts.labels("pdf", report.indication.value).inc()
        raw = json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
        context = {
            "lang": "en" if lang == "en" else "mn",
            "report": report,
            "json_href": "data:application/json;base64," + base64.b64encode(raw.encode()).decode(),
            "path": "/",
        }
        return templates.TemplateResponse(request, "report.html", context)

    # --- JSON API ----------------------------------------------------------------------------

    @app.post(
        "/api/v1/verify",
        tags=["verify"],
        summary="Verify a signed PDF (body: the PDF)",
        response_class=JSONResponse,
        responses={
            200: {
                "description": "The verification report (docs/verify-report.md)",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/VerifyReport"}}
                },
            },
            **_errors(413, 429, 503),
        },
        openapi_extra=_pdf_body("The PDF to verify"),
    )
    async def api_verify(request: Request) -> dict[str, Any]:
        data = await read_limited(request)
        report: DocumentReport = await uploads.verify(data, "upload.pdf", request.receive)
        metrics.verdicts.labels("pdf", report.indication.value).inc()
        return report.to_dict()

    @app.get(
        "/api/v1/seals/{payload}",
        tags=["verify"],
        summary="Verify a QR seal payload",
        responses={200: {"model": SealReportOut}, **_errors(414, 422)},
    )
    async def api_seal(
        payload: str,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        # Why a document was revoked is internal: told only to the issuing agency's clients.
        reader = credentials and config.client_for(credentials.credentials.strip())
        return seal_seen(await check_seal(payload, reader=reader or None)).to_dict()

    @app.post(
        "/api/v1/sign",
        tags=["sign"],
        summary="Sign a PDF (body: the PDF) with a granted key",
        response_class=Response,
        responses={200: _PDF_OUT, **_errors(400, 401, 403, 404, 413, 422, 429, 503)},
        openapi_extra=_pdf_body("The PDF to sign"),
    )
    async def api_sign(
        request: Request, key: str, who: Annotated[Client, Depends(client)]
    ) -> Response:
        grant(who, key)
        data = await read_limited(request)
        signer, lock, _, _ = await run_in_threadpool(signer_for, key)

        def sign() -> bytes:
            with in_flight.track(), timed(metrics.signatures, metrics.signature_seconds, key):
                fit_to_sign(key)
                with lock:
                    result: bytes = signer.sign_bytes(data, "upload.pdf")
                audit(who, "sign", key, result)
            return result

        signed = await run_in_threadpool(sign)
        return Response(signed, media_type="application/pdf")

    @app.post(
        "/api/v1/issue",
        tags=["sign"],
        summary="Issue a certificate from a template and data",
        response_class=Response,
        responses={200: _PDF_OUT, **_errors(400, 401, 403, 404, 409, 413, 422, 429, 503)},
    )
    def api_issue(body: IssueBody, who: Annotated[Client, Depends(client)]) -> Response:
        grant(who, body.key)
        template = by_name.get(body.template)
        if template is None:
            raise HTTPException(404, f"no template {body.template!r} (known: {sorted(by_name)})")
        if template.doc_type not in who.doc_types:
            raise HTTPException(403, f"client {who.name} may not issue {template.doc_type}")
        from esign.template import parse_data

        data = parse_data(body.data, template)
        issuer, lock = issuer_for(body.key, body.template, template)
        with in_flight.track(), timed(metrics.issuances, metrics.issuance_seconds, body.template):
            fit_to_sign(body.key)
            with lock:
                # Reserved before signing, recorded with its audit entry before it is answered.
                signed, issued = issuer.issue_bytes(data, by=who.name)
        return Response(
            signed,
            media_type="application/pdf",
            headers={"X-Document-Id": issued.id, "X-Seal-Url": issued.url},
        )

    @app.post(
        "/api/v1/documents/{doc_id}/revoke",
        tags=["registry"],
        summary="Revoke an issued document",
        responses={
            200: {"model": RevokedOut},
            **_errors(400, 401, 404, 409, 413, 422, 429, 503),
        },
    )
    def api_revoke(
        doc_id: str, body: RevokeBody, who: Annotated[Client, Depends(client)]
    ) -> dict[str, Any]:
        revoked = revocable(doc_id, who).revoke(doc_id, body.reason, by=who.name)
        return {
            "id": revoked.id,
            "status": revoked.status.value,
            "reason": revoked.status_reason,
            "time": revoked.status_time.isoformat() if revoked.status_time else None,
        }

    @app.post(
        "/api/v1/documents/{doc_id}/supersede",
        tags=["registry"],
        summary="Mark an issued document as replaced by another one (issued first)",
        responses={
            200: {"model": SupersededOut},
            **_errors(400, 401, 404, 409, 413, 422, 429, 503),
        },
    )
    def api_supersede(
        doc_id: str, body: SupersedeBody, who: Annotated[Client, Depends(client)]
    ) -> dict[str, Any]:
        revocable(body.by, who)  # the replacement must be one this client answers for too
        old = revocable(doc_id, who).supersede(doc_id, body.by, body.reason, by=who.name)
        return {
            "id": old.id,
            "status": old.status.value,
            "superseded_by": old.superseded_by,
            "reason": old.status_reason,
            "time": old.status_time.isoformat() if old.status_time else None,
        }

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:  # on the event loop: no pool to wait for
        return {"status": "ok"}

    trust_list = TrustListFile(config.trust_list, trust.anchors)

    @app.get("/trust-list", include_in_schema=False)
    async def get_trust_list(request: Request) -> Response:
        """The signed seal trust list offline verifiers sync (docs/trust-list.md)."""
        answer = await run_in_threadpool(trust_list.answer, request.headers)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    # --- operations --------------------------------------------------------------------------

    def registry_ready() -> str:
        if registry is None:
            return "none configured"
        try:
            registry.get("readyz-probe")
        except EsignError as e:
            metrics.registry_errors.inc()
            _log.warning("readiness: %s", e.message)  # where and why: for the log only
            raise RuntimeError("unreachable") from e
        return "reachable"

    def trust_ready() -> str:
        if not trust.seal_certs:
            raise RuntimeError("no seal certificates: QR seals cannot be verified")
        return f"{len(trust.anchors)} anchors, {len(trust.seal_certs)} seal certificates"

    keys_loaded: list[asyncio.Future[None]] = []

    def load_keys() -> None:
        for name in config.signing_keys:
            try:
                fit_to_sign(name)
            except EsignError as e:
                _log.warning("signing key %s: %s", name, e.message)

    def keys_ready() -> str:
        if keys_loaded and not keys_loaded[0].done():
            raise RuntimeError("still loading")
        for name in config.signing_keys:
            fit_to_sign(name)  # loads the key; refuses a revoked or expired certificate
        return ", ".join(config.signing_keys) or "none configured"

    def tsa_ready() -> str:
        import httpx

        urls = sorted({k.tsa_url for k in config.signing_keys.values() if k.tsa_url})
        for url in urls:
            try:  # any HTTP answer will do: a TSA takes POSTed requests only
                httpx.get(url, timeout=READY_TIMEOUT, follow_redirects=False)
            except httpx.HTTPError as e:
                raise RuntimeError(f"{url}: {type(e).__name__}") from e
        return f"{len(urls)} reachable" if urls else "none configured"

    ready_checks = {
        "registry": registry_ready, "trust": trust_ready, "signing_keys": keys_ready,
        "tsa": tsa_ready,
    }  # fmt: skip

    @app.get("/readyz", include_in_schema=False)
    async def ready() -> Response:
        loop = asyncio.get_running_loop()

        async def run(check: Callable[[], str]) -> str:
            return await loop.run_in_executor(ready_pool, check)

        ok, checks = await run_checks(ready_checks, run, READY_TIMEOUT)
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        data, media_type = metrics.render()
        return Response(data, media_type=media_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                _verify_report_schema()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.registry = registry
    app.state.config = config
    return app
