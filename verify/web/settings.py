"""The `esign serve` configuration file as typed, validated tables (pydantic), with environment
overrides and the origin of every value, for the server and for `esign config show`.

The format is the one of ``samples/server.toml``: top-level ``base_url``, ``registry``, ``trust``
and ``max_upload_mb``; ``[signing_keys.NAME]`` tables; ``[[clients]]``; ``[limits]``; and
``[serve]`` (listen address, workers, shutdown, access log). Paths in a file are relative to that
file. Secrets never live in the file: keys name the environment variable holding their password
or PIN, clients are known by the SHA-256 digest of their API key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from esign.config import (
    DEFAULT,
    Located,
    Strict,
    leaves,
    locate,
    origin_of,
    read_toml,
    search_order,
    validate,
)

from ..trustfile import TrustFile

ENV_OVERRIDES = {
    "base_url": "ESIGN_BASE_URL",
    "registry": "ESIGN_REGISTRY",
    "max_upload_mb": "ESIGN_MAX_UPLOAD_MB",
    "serve.host": "ESIGN_HOST",
    "serve.port": "ESIGN_PORT",
    "serve.workers": "ESIGN_WORKERS",
}
"""Settings an environment variable overrides (over the file, under a command-line option)."""


def _rate(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError as e:
        raise ValueError(f'{value!r} is not a rate (e.g. "60/minute;600/hour")') from e
    return value


class SigningKeyFile(Strict):
    key: str = Field(min_length=1, description="key file, or a pkcs11: URI")
    password_env: str | None = None
    cert: str | None = None
    chain: list[str] = Field(default_factory=list)
    pkcs11_module: str | None = None
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] | None = None  # None: SigningKey.level
    tsa: str | None = None
    certificate_recheck_seconds: float = Field(default=300.0, gt=0)


class ClientFile(Strict):
    name: str = Field(min_length=1)
    api_key_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    keys: list[str] = Field(default_factory=list)
    doc_types: list[str] = Field(default_factory=list)
    revoke_issuers: list[str] = Field(default_factory=list)
    """Agency codes whose documents the client may revoke and supersede."""


class LimitsFile(Strict):
    upload_rate: str = "60/minute;600/hour"
    api_rate: str = "1200/minute"
    max_json_kb: int = Field(default=1024, ge=1)
    upload_workers: int = Field(default=2, ge=1)
    upload_queue: int = Field(default=8, ge=0)
    upload_memory_mb: int = Field(default=1024, ge=256)
    upload_cpu_seconds: int = Field(default=20, ge=1)
    upload_seconds: int = Field(default=30, ge=1)

    _rates = field_validator("upload_rate", "api_rate")(_rate)


class ServeFile(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=32)
    shutdown_seconds: float = Field(default=30.0, gt=0, le=3600)
    access_log: bool = True


class ServerFile(Strict):
    base_url: str = "http://127.0.0.1:8080"
    registry: str | None = None
    trust: list[str] | TrustFile = Field(default_factory=list)
    """Certificate files and folders, or trust.toml files; or a [trust] table written here."""
    trust_list: str | None = None
    """The signed seal trust list `esign trust-list build` writes; served at GET /trust-list."""
    max_upload_mb: int = Field(default=10, ge=1, le=4096)
    signing_keys: dict[str, SigningKeyFile] = Field(default_factory=dict)
    clients: list[ClientFile] = Field(default_factory=list)
    limits: LimitsFile = Field(default_factory=LimitsFile)
    serve: ServeFile = Field(default_factory=ServeFile)

    @field_validator("base_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) address (it goes into every QR code)")
        return value

    @model_validator(mode="after")
    def _grants(self) -> ServerFile:
        for client in self.clients:
            unknown = sorted(set(client.keys) - set(self.signing_keys))
            if unknown:
                raise ValueError(f"client {client.name} is granted unknown keys {unknown}")
        names = [c.name for c in self.clients]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"client names must be unique: {twice}")
        return self


@dataclass(frozen=True)
class Settings:
    """The configuration in effect: values (paths made absolute), where the file was found,
    and where each setting came from (a file path, ``$ENV``, ``--option`` or ``default``)."""

    file: ServerFile
    located: Located
    origins: dict[str, str]

    def origin(self, name: str) -> str:
        return origin_of(self.origins, name)


def load_settings(
    explicit: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    search: bool = True,
) -> Settings:
    """Find (``search``: the operators' order, else only ``explicit``), read and check the
    configuration; environment variables and then ``overrides`` (command-line options, by
    dotted setting name; None values are ignored) take precedence over the file."""
    located = locate(explicit) if search else Located(explicit, "--config")
    raw: dict[str, Any] = read_toml(located.path) if located.path else {}
    source = str(located.path) if located.path else "built-in configuration"
    origins = {name: source for name in leaves(raw)}
    for name, env in ENV_OVERRIDES.items():
        value = os.environ.get(env)
        if value:
            _set(raw, name, value)
            origins[name] = f"${env}"
    for name, value in (overrides or {}).items():
        if value is not None:
            _set(raw, name, value)
            origins[name] = f"--{name.rsplit('.', 1)[-1].replace('_', '-')}"
    file = validate(ServerFile, raw, source, origins)
    base = located.path.parent if located.path else Path.cwd()
    return Settings(_absolute(file, base, origins, source), located, origins)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *tables, key = dotted.split(".")
    for table in tables:
        raw = raw.setdefault(table, {})
    raw[key] = value


def _absolute(file: ServerFile, base: Path, origins: Mapping[str, str], source: str) -> ServerFile:
    """Paths written in the file, relative to it; ``sqlite:`` registries too."""

    def rel(p: str) -> str:
        return p if Path(p).is_absolute() else os.path.normpath(base / p)

    keys = {
        name: k.model_copy(
            update={
                "key": k.key if k.key.startswith("pkcs11:") else rel(k.key),
                "cert": rel(k.cert) if k.cert else None,
                "chain": [rel(c) for c in k.chain],
            }
        )
        for name, k in file.signing_keys.items()
    }
    registry = file.registry
    if registry and origins.get("registry") == source:
        registry = _sqlite_beside(registry, base)
    return file.model_copy(
        update={
            "signing_keys": keys,
            "trust": _trust_beside(file.trust, rel),
            "trust_list": rel(file.trust_list) if file.trust_list else None,
            "registry": registry,
        }
    )


def _trust_beside(trust: list[str] | TrustFile, rel: Callable[[str], str]) -> Any:
    if isinstance(trust, TrustFile):
        return trust.model_copy(
            update={
                "anchors": [rel(p) for p in trust.anchors],
                "intermediates": [rel(p) for p in trust.intermediates],
                "seal_certificates": [rel(p) for p in trust.seal_certificates],
            }
        )
    return [rel(t) for t in trust]


def _sqlite_beside(url: str, base: Path) -> str:
    if url.partition(":")[0].lower() != "sqlite":
        return url
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc or not path or Path(path).is_absolute():
        return url  # absolute, or malformed: open_registry says what is wrong
    return "sqlite://" + quote(str((base / path).resolve()))


# --- esign config show -------------------------------------------------------------------------


def _mask_url(url: str) -> str:
    """A URL's password (user info or ``password=``) masked; file URLs as they are."""
    if url.partition(":")[0].lower() == "sqlite":
        return url
    from esign.registry import redact_url

    return redact_url(url)


def render(settings: Settings) -> str:
    """The configuration in effect as TOML, each value followed by where it came from; secrets
    are never printed (passwords in URLs masked, API key digests cut, password variables named
    but not read out)."""
    f = settings.file
    lines = [
        f"# configuration file: {settings.located.describe()}",
        f"# searched, in order: {', '.join(search_order())}",
    ]
    width = 52

    def put(name: str, value: Any, origin: str | None = None, note: str = "") -> None:
        text = f"{name.rsplit('.', 1)[-1]} = {_toml(value)}"
        where = origin or settings.origin(name)
        lines.append(f"{text:<{width}} # {where}{note}")

    registry = f.registry
    if registry:
        put("registry", _mask_url(registry))
    else:
        from esign.datadir import REGISTRY_FILE, data_dir

        where = "sqlite://" + quote(str(data_dir() / REGISTRY_FILE))  # shown, not created
        put("registry", where, DEFAULT, " (the user's data folder)")
    put("base_url", f.base_url)
    if isinstance(f.trust, TrustFile):
        pass  # its own [trust] table below
    elif f.trust:
        put("trust", f.trust)
    else:
        lines.append(f"{'# trust: the test PKI in the data folder':<{width}} # {DEFAULT}")
    if f.trust_list:
        put("trust_list", f.trust_list)
    put("max_upload_mb", f.max_upload_mb)
    tables: list[tuple[str, Any]] = [("serve", f.serve), ("limits", f.limits)]
    if isinstance(f.trust, TrustFile):
        tables.insert(0, ("trust", f.trust))
    for table, model in tables:
        lines += ["", f"[{table}]"]
        for setting, value in model.model_dump().items():
            put(f"{table}.{setting}", value)
    if settings.located.path is None:
        lines += ["", "# signing key: the test PKI's agency seal (test-seal); clients: a demo "
                  "client if $ESIGN_DEMO_API_KEY is set"]  # fmt: skip
    from .config import SigningKey

    for name, key in f.signing_keys.items():
        lines += ["", f"[signing_keys.{name}]"]
        values = key.model_dump(exclude_none=True)
        if "level" not in values:
            values["level"] = SigningKey.level
        for field, value in values.items():
            if field == "tsa":
                value = _mask_url(value)
            note = ""
            if field == "password_env":
                note = " (set)" if os.environ.get(value) else " (NOT SET: the key cannot load)"
            if value != []:
                put(f"signing_keys.{name}.{field}", value, note=note)
    for client in f.clients:
        lines += ["", "[[clients]]"]
        for field, value in client.model_dump().items():
            if field == "api_key_sha256":
                value = value[:8] + "…"
            put(f"clients.{field}", value, settings.origin("clients"))
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
