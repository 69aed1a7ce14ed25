"""Server configuration: what the running server uses, built once from the checked TOML file
(settings.py); secrets come from the environment, never from the file. Without a file, embedded
defaults serve the test PKI."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from esign.errors import UsageError

from ..trustfile import TrustFile

if TYPE_CHECKING:
    from ..trust import TrustConfig
    from .settings import Settings


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
    # None: no registry. Default: the SQLite file in the user's data folder, never the cwd.
    registry_url: str | None = field(default_factory=lambda: _data_folder_registry())
    trust: tuple[Path, ...] = ()
    trust_table: TrustFile | None = None
    """A [trust] table written in the configuration itself (paths absolute), instead of
    ``trust`` paths."""
    trust_list: Path | None = None
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

    def load_trust(self) -> TrustConfig:
        """The trust material: the [trust] table, else the ``trust`` paths, else the default
        (the test PKI in the user's data folder)."""
        from ..trust import TrustConfig

        if self.trust_table is not None:
            return self.trust_table.load(Path("/"))
        return TrustConfig.load(list(self.trust))


def _data_folder_registry() -> str:
    from esign.datadir import default_registry_url

    return default_registry_url()


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def load_config(path: Path | None) -> ServerConfig:
    """The configuration in the file ``path`` (environment overrides applied); without one, the
    embedded test-PKI defaults. `esign serve` searches for the file first: see settings.py."""
    from .settings import load_settings

    return from_settings(load_settings(path, search=False))


def from_settings(settings: Settings) -> ServerConfig:
    """The server's configuration from checked settings; no file at all means the test PKI's
    signing key (and a demo client if ``ESIGN_DEMO_API_KEY`` is set)."""
    from esign.datadir import default_registry_url

    f = settings.file
    keys = {
        name: SigningKey(
            name=name,
            key=k.key,
            password_env=k.password_env,
            cert=Path(k.cert) if k.cert else None,
            chain=tuple(Path(c) for c in k.chain),
            pkcs11_module=k.pkcs11_module,
            level=k.level or SigningKey.level,
            tsa_url=k.tsa,
            recheck_seconds=k.certificate_recheck_seconds,
        )
        for name, k in f.signing_keys.items()
    }
    clients = tuple(
        Client(
            name=c.name,
            api_key_sha256=c.api_key_sha256.lower(),
            keys=frozenset(c.keys),
            doc_types=frozenset(c.doc_types),
            revoke_issuers=frozenset(c.revoke_issuers),
        )
        for c in f.clients
    )
    limits = f.limits
    config = ServerConfig(
        base_url=f.base_url,
        registry_url=f.registry or default_registry_url(),
        trust=() if isinstance(f.trust, TrustFile) else tuple(Path(t) for t in f.trust),
        trust_table=f.trust if isinstance(f.trust, TrustFile) else None,
        trust_list=Path(f.trust_list) if f.trust_list else None,
        max_upload_bytes=f.max_upload_mb * 1024 * 1024,
        max_json_bytes=limits.max_json_kb * 1024,
        upload_rate=limits.upload_rate,
        api_rate=limits.api_rate,
        upload_workers=limits.upload_workers,
        upload_queue=limits.upload_queue,
        upload_memory_mb=limits.upload_memory_mb,
        upload_cpu_seconds=limits.upload_cpu_seconds,
        upload_seconds=limits.upload_seconds,
        signing_keys=keys,
        clients=clients,
        access_log=f.serve.access_log,
        shutdown_seconds=f.serve.shutdown_seconds,
    )
    if settings.located.path is None:
        defaults = default_config()
        config = replace(config, signing_keys=defaults.signing_keys, clients=defaults.clients)
    return config


def default_config() -> ServerConfig:
    """Embedded defaults: the test PKI's agency seals (``test-seal`` for UBEG, ``test-seal-shsg``,
    ``test-seal-ndeg``: each template is issued with its own agency's key); a demo client only if
    ``ESIGN_DEMO_API_KEY`` is set (its digest, not the key, is kept). Other settings: see
    :func:`from_settings`, which uses this for its keys and clients when there is no file."""
    from esign import testpki

    pki = testpki.build()
    keys = {
        name: SigningKey(
            name=name,
            key=str(pki.agency_seal_p12(agency)),
            password_env="ESIGN_TEST_PKI_PASSWORD",
            tsa_url=pki.tsa_url("mn-ec"),
        )
        for agency, name in (
            ("UBEG", "test-seal"), ("SHSG", "test-seal-shsg"), ("NDEG", "test-seal-ndeg")
        )
    }  # fmt: skip
    os.environ.setdefault("ESIGN_TEST_PKI_PASSWORD", testpki.P12_PASSWORD)
    demo = os.environ.get("ESIGN_DEMO_API_KEY")
    clients: tuple[Client, ...] = ()
    if demo:
        clients = (
            Client(
                name="demo",
                api_key_sha256=hash_api_key(demo),
                keys=frozenset(keys),
                doc_types=frozenset({"residence", "criminal-record", "social-insurance"}),
                revoke_issuers=frozenset({"UBEG", "SHSG", "NDEG"}),
            ),
        )
    return ServerConfig(signing_keys=keys, clients=clients)
