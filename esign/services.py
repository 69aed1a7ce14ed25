"""The test PKI's OCSP responders, CRL repositories and RFC 3161 TSA, served over HTTP on loopback.

Backed by certomancer's Animator (a WSGI app) on a werkzeug server in a background thread, so tests
and the demo talk HTTP to real services and can stop them to prove embedded data is enough.
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

from certomancer.integrations.animator import Animator, AnimatorArchStore
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .errors import ServiceError
from .testpki import TestPki


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _OcspGetSupport:
    """RFC 6960 A.1: OCSP over GET (``.../ocsp/<label>/<base64 request>``), which NSS-based
    verifiers such as poppler's pdfsig use; certomancer's Animator only answers POST."""

    def __init__(self, app: Animator) -> None:
        self.app = app
        self.served = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.served += 1
        path: str = environ.get("PATH_INFO", "")
        parts = path.split("/")
        if environ.get("REQUEST_METHOD") == "GET" and len(parts) >= 5 and parts[2] == "ocsp":
            encoded = unquote("/".join(parts[4:]))
            try:
                body = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False)
            except ValueError:
                body = b""
            environ = {
                **environ,
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/".join(parts[:4]),
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": "application/ocsp-request",
                "wsgi.input": io.BytesIO(body),
            }
        return self.app(environ, start_response)


class PkiServices:
    """Context manager running the PKI services of ``pki`` at the URL fixed in its certificates."""

    def __init__(self, pki: TestPki, *, at_time: datetime | None = None) -> None:
        self.pki = pki
        parsed = urlparse(pki.url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self._app = _OcspGetSupport(
            Animator(
                AnimatorArchStore(pki.config().pki_archs),
                at_time=at_time,
                with_web_ui=False,
                allow_time_override=False,
            )
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def requests_served(self) -> int:
        """Requests answered since the services were built (tests count a verifier's fetches)."""
        return self._app.served

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> PkiServices:
        if self._server is not None:
            return self
        try:  # werkzeug prints its own lines on a taken port before exiting: keep ours only
            with contextlib.redirect_stderr(io.StringIO()):
                self._server = make_server(
                    self.host, self.port, self._app, threaded=True, request_handler=_QuietHandler
                )
        except OSError as e:
            raise ServiceError(
                f"cannot serve the test PKI on {self.host}:{self.port}: {e.strerror}"
            ) from e
        except SystemExit as e:  # werkzeug exits the process when the port is taken
            raise ServiceError(
                f"cannot serve the test PKI on {self.host}:{self.port}: port in use"
            ) from e
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="esign-pki-services", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the foreground (``esign pki serve``) until interrupted."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> PkiServices:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
