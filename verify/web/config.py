"""Server configuration: a TOML file read once into typed objects; secrets come from the
environment, never from the file. Without a file, embedded defaults serve the test PKI."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esign.errors import InputError, UsageError


@dataclass(frozen=True)
class SigningKey:
    """A key the API may sign with, by name; clients are granted keys by name."""

    name: str
    key: str
    password_env: str | None = None
    cert: Path | None = None
    chain: tuple[Path, ...] = ()
    pkcs11_module: str | None = None
    level: str = "B-LT"  # issued PDFs carry their revocation data: verifiable offline
    tsa_url: str | None = None
    recheck_seconds: float = 300.0
    """How often the serving signer re-checks its certificate's revocation status (OCSP/CRL)."""

    def password(self) -> bytes | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise UsageError(f"signing key {self.name}: set {self.password_env} in the environment")
        return value.encode()


@dataclass(frozen=True)
class Client:
    """An agency backend. Its API key is stored only as a SHA-256 digest.

    ``keys`` and ``doc_types`` grant signing and issuing; ``revoke_issuers`` (TOML
    ``revoke_issuers = ["UBEG"]``, agency codes) grants revoking and superseding documents issued
    by those agencies. A document of any other agency is, to this client, not there (404)."""

    name: str
    api_key_sha256: str
    keys: frozenset[str]
    doc_types: frozenset[str]
    revoke_issuers: frozenset[str] = frozenset()

    def may_revoke(self, issuer: str) -> bool:
        return issuer in self.revoke_issuers

    def matches(self, api_key: str) -> bool:
        import hmac

        digest = hashlib.sha256(api_key.encode()).hexdigest()
        return hmac.compare_digest(digest, self.api_key_sha256)


@dataclass(frozen=True)
class ServerConfig:
    base_url: str = "http://127.0.0.1:8080"
    registry_url: str | None = "sqlite:esign-registry.sqlite3"
    trust: tuple[Path, ...] = ()
    max_upload_bytes: int = 10 * 1024 * 1024
    # Agency JSON (issue, revoke) is a few KiB: a small cap, checked while the body streams.
    max_json_bytes: int = 1024 * 1024
    # Per client (API key; else address), in the `limits` notation: "N/minute;M/hour".
    upload_rate: str = "60/minute;600/hour"
    api_rate: str = "1200/minute"
    # Uploads run in separate worker processes; beyond workers + queue waiting: 503.
    upload_workers: int = 2
    upload_queue: int = 8
    # Each worker's limits; a hit limit is a FORMAT_FAILURE naming it, the worker is replaced.
    upload_memory_mb: int = 1024
    upload_cpu_seconds: int = 20
    upload_seconds: int = 30
    signing_keys: dict[str, SigningKey] = field(default_factory=dict)
    clients: tuple[Client, ...] = ()
    # One JSON line per request on stderr (route template, status, time; no personal data).
    access_log: bool = True
    # At SIGTERM: how long open requests may finish, then how long signings still running may.
    shutdown_seconds: float = 30.0

    def client_for(self, api_key: str) -> Client | None:
        return next((c for c in self.clients if c.matches(api_key)), None)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def load_config(path: Path | None) -> ServerConfig:
    if path is None:
        return default_config()
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"server configuration not found: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path} is not valid TOML: {e}") from e
    base = path.parent

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else base / q

    try:
        keys = {
            name: SigningKey(
                name=name,
                key=str(k["key"]) if str(k["key"]).startswith("pkcs11:") else str(rel(k["key"])),
                password_env=k.get("password_env"),
                cert=rel(k["cert"]) if "cert" in k else None,
                chain=tuple(rel(c) for c in k.get("chain", [])),
                pkcs11_module=k.get("pkcs11_module"),
                level=str(k.get("level", SigningKey.level)),
                tsa_url=k.get("tsa"),
                recheck_seconds=float(k.get("certificate_recheck_seconds", 300)),
            )
            for name, k in raw.get("signing_keys", {}).items()
        }
        clients = tuple(
            Client(
                name=str(c["name"]),
                api_key_sha256=str(c["api_key_sha256"]).lower(),
                keys=frozenset(c.get("keys", [])),
                doc_types=frozenset(c.get("doc_types", [])),
                revoke_issuers=frozenset(str(i) for i in c.get("revoke_issuers", [])),
            )
            for c in raw.get("clients", [])
        )
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: incomplete signing key or client entry ({e})") from e
    for client in clients:
        unknown = client.keys - set(keys)
        if unknown:
            raise InputError(
                f"{path}: client {client.name} is granted unknown keys {sorted(unknown)}"
            )
    limits = _limits(raw.get("limits", {}), path)
    return ServerConfig(
        base_url=str(raw.get("base_url", ServerConfig.base_url)),
        registry_url=raw.get("registry", ServerConfig.registry_url),
        trust=tuple(rel(t) for t in raw.get("trust", [])),
        max_upload_bytes=int(raw.get("max_upload_mb", 10)) * 1024 * 1024,
        signing_keys=keys,
        clients=clients,
        **limits,
    )


def _limits(raw: Any, path: Path) -> dict[str, Any]:
    """The ``[limits]`` table, checked now: a typo in a rate must stop the server at start, not
    turn every upload into a 500."""
    from limits import parse_many

    if not isinstance(raw, dict):
        raise InputError(f"{path}: [limits] must be a table")
    known = {"max_json_kb", "upload_rate", "api_rate", "upload_workers", "upload_queue",
             "upload_memory_mb", "upload_cpu_seconds", "upload_seconds"}  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise InputError(f"{path}: unknown [limits] settings {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name in ("upload_rate", "api_rate"):
        if name in raw:
            try:
                parse_many(str(raw[name]))
            except ValueError as e:
                raise InputError(f"{path}: [limits] {name} = {raw[name]!r} is not a rate") from e
            out[name] = str(raw[name])
    lows = {"max_json_kb": 1, "upload_workers": 1, "upload_queue": 0, "upload_memory_mb": 256,
            "upload_cpu_seconds": 1, "upload_seconds": 1}  # fmt: skip
    for name, low in lows.items():
        if name in raw:
            value = raw[name]
            if not isinstance(value, int) or value < low:
                raise InputError(f"{path}: [limits] {name} must be an integer >= {low}")
            out[name] = value
    if "max_json_kb" in out:
        out["max_json_bytes"] = out.pop("max_json_kb") * 1024
    return out


def default_config() -> ServerConfig:
    """Embedded defaults: the test PKI's agency seal; a demo client only if
    ``ESIGN_DEMO_API_KEY`` is set (its digest, not the key, is kept)."""
    from esign import testpki

    pki = testpki.build()
    key = SigningKey(
        name="test-seal",
        key=str(pki.p12("mn-ec", "seal")),
        password_env="ESIGN_TEST_PKI_PASSWORD",
        tsa_url=pki.tsa_url("mn-ec"),
    )
    os.environ.setdefault("ESIGN_TEST_PKI_PASSWORD", testpki.P12_PASSWORD)
    demo = os.environ.get("ESIGN_DEMO_API_KEY")
    clients: tuple[Client, ...] = ()
    if demo:
        clients = (
            Client(
                name="demo",
                api_key_sha256=hash_api_key(demo),
                keys=frozenset({"test-seal"}),
                doc_types=frozenset({"residence", "criminal-record", "social-insurance"}),
                revoke_issuers=frozenset({"UBEG", "SHSG", "NDEG"}),
            ),
        )
    return ServerConfig(signing_keys={"test-seal": key}, clients=clients)
