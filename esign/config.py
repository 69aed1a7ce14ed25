"""Where a configuration file is found, how its TOML is checked, and where each value came from.

Operators expect the search order of other Unix services: ``--config``, then ``$ESIGN_CONFIG``,
then the user's config folder (``$XDG_CONFIG_HOME/esign/esign.toml``, else
``~/.config/esign/esign.toml``), then ``/etc/esign/esign.toml``. A file named by ``--config`` or
``$ESIGN_CONFIG`` must exist; the two folders are looked in only if the file is there.

Files are read into pydantic models that refuse unknown keys: a setting written below the
wrong ``[table]`` header is an error naming it, never silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError

CONFIG_ENV = "ESIGN_CONFIG"
CONFIG_NAME = "esign.toml"
SYSTEM_CONFIG = Path("/etc/esign") / CONFIG_NAME
DEFAULT = "default"


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/esign/esign.toml`` (an absolute XDG path only), else
    ``~/.config/esign/esign.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "esign" / CONFIG_NAME


@dataclass(frozen=True)
class Located:
    """The configuration file in effect (None: built-in defaults) and how it was found."""

    path: Path | None
    how: str

    def describe(self) -> str:
        if self.path is None:
            return "none found: built-in defaults (the test PKI)"
        return f"{self.path} ({self.how})"


def search_order() -> list[str]:
    return ["--config", f"${CONFIG_ENV}", str(user_config_path()), str(SYSTEM_CONFIG)]


def locate(explicit: Path | None) -> Located:
    """The configuration file to use, in the operators' search order."""
    if explicit is not None:
        return Located(_must_exist(explicit, "--config"), "--config")
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Located(_must_exist(Path(named), f"${CONFIG_ENV}"), f"${CONFIG_ENV}")
    for path, how in ((user_config_path(), "user config folder"), (SYSTEM_CONFIG, "system")):
        if path.is_file():
            return Located(path, how)
    return Located(None, DEFAULT)


def _must_exist(path: Path, how: str) -> Path:
    if not path.is_file():
        raise InputError(f"configuration file not found: {path} (named by {how})")
    return path.absolute()


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"configuration file not found: {path}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path} is not valid TOML: {e}") from e


class Strict(BaseModel):
    """A configuration table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M], raw: Mapping[str, Any], source: str, origins: Mapping[str, str] | None = None
) -> M:
    """``raw`` as ``model``, or an InputError naming the first wrong setting and where it came
    from (its entry in ``origins``, else ``source``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        errors = _specific(e.errors())
        first = errors[0]
        suffix = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        dotted = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
        where = origin_of(origins or {}, dotted) if dotted else DEFAULT
        where = source if where == DEFAULT else where
        raise InputError(f"{where}: {describe_error(first, model)}{suffix}") from e


_SHAPE = frozenset({"list_type", "model_type", "dict_type", "model_attributes_type"})


def _specific(errors: list[Any]) -> list[Any]:
    """The errors worth naming, with pydantic's union branch tags (``list[str]``,
    ``TrustFile``) taken out of their locations. A setting that may be a list or a table and is
    a table with a misspelt key gets that key named, not "Input should be a valid list"."""
    out = []
    for error in errors:
        loc = tuple(p for p in error["loc"] if not _branch_tag(p))
        out.append({**error, "loc": loc, "union": len(loc) != len(error["loc"])})
    specific = [e for e in out if e["type"] not in _SHAPE]
    if specific:  # an unknown key first: it usually explains the missing one too
        return sorted(specific, key=lambda e: e["type"] != "extra_forbidden")
    if all(e["union"] for e in out) and out:  # no branch fits the shape
        return [{**out[0], "type": "value_error", "msg": "neither a list nor a table"}]
    return out


def _branch_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part[:1].isupper())


def describe_error(error: Any, model: type[BaseModel]) -> str:
    """One pydantic error as an operator reads a TOML file: ``[limits] upload_workers: ...``."""
    loc = tuple(error["loc"])
    if not loc:  # a check across settings (a model validator): its message says it all
        return str(error["msg"]).removeprefix("Value error, ")
    where = setting_name(loc)
    if error["type"] == "extra_forbidden":
        hint = ""
        if len(loc) > 1 and loc[-1] in model.model_fields:
            hint = f" ({loc[-1]} is a top-level setting: move it above the first [table] header)"
        return f"unknown setting {where}{hint}"
    if error["type"] == "missing":
        return f"{where} is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def setting_name(loc: tuple[Any, ...]) -> str:
    """``("limits", "upload_rate")`` -> ``[limits] upload_rate``; ``("clients", 0, "keys")`` ->
    ``[[clients]] #1 keys``; a top-level key stands alone."""
    if len(loc) == 1:
        return str(loc[0])
    head, rest = loc[0], list(loc[1:])
    if rest == [rest[0]] and isinstance(rest[0], int):
        return f"{head} (item {rest[0] + 1})"
    if isinstance(rest[0], int):
        table = f"[[{head}]] #{rest.pop(0) + 1}"
    elif len(rest) > 1 and isinstance(rest[0], str) and head in ("signing_keys",):
        table = f"[{head}.{rest.pop(0)}]"
    else:
        table = f"[{head}]"
    tail = ".".join(str(p) for p in rest if not isinstance(p, int))
    return f"{table} {tail}".strip()


def leaves(raw: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings present in ``raw`` (a table of tables is walked; an array
    of tables, e.g. ``[[clients]]``, is one setting)."""
    names: list[str] = []
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            names += leaves(value, name + ".") or [name]
        else:
            names.append(name)
    return names


def origin_of(origins: Mapping[str, str], name: str) -> str:
    """Where setting ``name`` came from: itself, else its nearest table, else the default."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found:
            return found
    return DEFAULT
