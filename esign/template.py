"""Certificate templates (TOML, editable by an agency) and the data that fills them (JSON).

A template names the issuer, the title, the table of fields, the body text with ``{placeholders}``
and the fields whose digest the QR seal binds. Data supplies the number, dates, the subject and
the field values. Both are checked here so that rendering never meets a missing value.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .errors import InputError
from .resources import builtin_templates


class TemplateKeyError(InputError):
    """A template key the loader does not read (unknown or misplaced), or a missing required one.

    ``key`` is the key's name and ``line`` its 1-based line in the file (0 when not found).
    """

    def __init__(self, message: str, *, key: str, line: int) -> None:
        super().__init__(message)
        self.key = key
        self.line = line


TEMPLATE_DIR = builtin_templates()
REGISTER_NUMBER = re.compile(r"^[А-ЯЁӨҮ]{2}\d{8}$")


@dataclass(frozen=True)
class Field:
    key: str
    label_mn: str
    label_en: str


@dataclass(frozen=True)
class Template:
    name: str
    doc_type: str
    number_prefix: str
    validity_days: int | None
    issuer_code: str
    issuer_mn: str
    issuer_en: str
    title_mn: str
    title_en: str
    fields: tuple[Field, ...]
    body_mn: str
    body_en: str
    seal_fields: tuple[str, ...]


@dataclass(frozen=True)
class DocumentData:
    number: str
    issued: date
    expires: date | None
    name: str
    register_number: str
    fields: Mapping[str, str]

    def placeholders(self) -> dict[str, str]:
        return {
            **self.fields,
            "name": self.name,
            "register_number": self.register_number,
            "number": self.number,
        }


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: '{key}' must be a non-empty string")
    return value


_ALLOWED: dict[str, frozenset[str]] = {
    "": frozenset(
        {"doc_type", "number_prefix", "validity_days", "issuer", "title", "fields", "body"}
        | {"seal_fields"}
    ),
    "issuer": frozenset({"code", "name_mn", "name_en"}),
    "title": frozenset({"mn", "en"}),
    "fields": frozenset({"key", "label_mn", "label_en"}),
    "body": frozenset({"mn", "en"}),
}
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(?:#.*)?$")


def _bare(key: str) -> str:
    return key.strip().strip("\"'")


def _key_line(text: str, table: str, key: str) -> int:
    """The 1-based line where ``key`` is defined in ``table`` ("" for the top level), 0 if unseen.

    tomllib keeps no positions, so the file text is scanned: headers set the current table, and a
    key counts where it starts a line (``key =``, ``key.sub =``) or names a table (``[key]``).
    """
    current = ""
    fallback = 0
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts = [_bare(p) for p in header.group(1).split(".")]
            current = parts[0]
            if table == "" and parts[0] == key:
                return number
            if len(parts) > 1 and parts[0] == table and parts[1] == key:
                return number
            continue
        head = line.split("=", 1)[0] if "=" in line else ""
        parts = [_bare(p) for p in head.split(".")] if head.strip() else []
        if not parts:
            continue
        if current == table and parts[0] == key:
            return number
        if current == "" and len(parts) > 1 and parts[0] == table and parts[1] == key:
            return number
        if not fallback and key in parts:
            fallback = number
    return fallback


def _check_keys(raw: Mapping[str, Any], text: str, where: str) -> None:
    """Refuse any key the loader would not read: a misplaced key is silently lost otherwise."""

    def refuse(table: str, key: str) -> None:
        line = _key_line(text, table, key)
        place = "[[fields]]" if table == "fields" else f"[{table}]" if table else "the top level"
        at = f" (line {line})" if line else ""
        raise TemplateKeyError(
            f"{where}{at}: unknown key {key!r} in {place}; allowed there: "
            f"{', '.join(sorted(_ALLOWED[table]))}",
            key=key,
            line=line,
        )

    for key in raw:
        if key not in _ALLOWED[""]:
            refuse("", key)
    for table in ("issuer", "title", "body"):
        value = raw.get(table)
        if isinstance(value, Mapping):
            for key in value:
                if key not in _ALLOWED[table]:
                    refuse(table, key)
    fields = raw.get("fields")
    if isinstance(fields, list):
        for entry in fields:
            if isinstance(entry, Mapping):
                for key in entry:
                    if key not in _ALLOWED["fields"]:
                        refuse("fields", key)


def load_template(name_or_path: str) -> Template:
    """A built-in template by name (``esign/templates/NAME.toml``) or a template file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATE_DIR / f"{name_or_path}.toml"
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError as e:
        known = ", ".join(sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml")))
        raise InputError(f"no template {name_or_path!r} (known: {known})") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"template {path} is not valid TOML: {e}") from e
    where = f"template {path.name}"
    _check_keys(raw, text, where)
    seal_fields = raw.get("seal_fields")
    if (
        not isinstance(seal_fields, list)
        or not seal_fields
        or not all(isinstance(s, str) for s in seal_fields)
    ):
        line = _key_line(text, "", "seal_fields")
        at = f" (line {line})" if line else ""
        raise TemplateKeyError(
            f"{where}{at}: 'seal_fields' must be a non-empty list of field keys at the top level,"
            " before the first [table]",
            key="seal_fields",
            line=line,
        )
    try:
        fields = tuple(
            Field(_text(f, "key", where), _text(f, "label_mn", where), _text(f, "label_en", where))
            for f in raw.get("fields", [])
        )
        issuer, title, body = raw["issuer"], raw["title"], raw["body"]
        validity = raw.get("validity_days")
        template = Template(
            name=path.stem,
            doc_type=_text(raw, "doc_type", where),
            number_prefix=_text(raw, "number_prefix", where),
            validity_days=int(validity) if validity is not None else None,
            issuer_code=_text(issuer, "code", where),
            issuer_mn=_text(issuer, "name_mn", where),
            issuer_en=_text(issuer, "name_en", where),
            title_mn=_text(title, "mn", where),
            title_en=_text(title, "en", where),
            fields=fields,
            body_mn=_text(body, "mn", where),
            body_en=_text(body, "en", where),
            seal_fields=tuple(seal_fields),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where} is incomplete: {e}") from e
    keys = {f.key for f in template.fields}
    unknown = set(template.seal_fields) - keys
    if unknown:
        raise InputError(f"{where}: seal_fields not among fields: {', '.join(sorted(unknown))}")
    return template


def parse_data(raw: Any, template: Template, where: str = "data") -> DocumentData:
    """Check a data object (as parsed from JSON) against ``template``."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a JSON object")
    subject = raw.get("subject")
    if not isinstance(subject, dict):
        raise InputError(f"{where}: 'subject' must be an object with name and register_number")
    register = _text(subject, "register_number", where).strip().upper()
    if not REGISTER_NUMBER.match(register):
        raise InputError(
            f"{where}: register number {register!r} is not two Cyrillic letters and eight digits"
        )
    fields = raw.get("fields")
    if not isinstance(fields, dict):
        raise InputError(f"{where}: 'fields' must be an object")
    missing = [f.key for f in template.fields if not str(fields.get(f.key, "")).strip()]
    if missing:
        raise InputError(f"{where}: missing field(s) for {template.name}: {', '.join(missing)}")
    try:
        issued = date.fromisoformat(_text(raw, "issued", where))
        expires = (
            date.fromisoformat(raw["expires"])
            if raw.get("expires")
            else (
                issued + timedelta(days=template.validity_days) if template.validity_days else None
            )
        )
    except (ValueError, TypeError) as e:
        raise InputError(f"{where}: dates must be YYYY-MM-DD ({e})") from e
    number = _text(raw, "number", where)
    if not number.startswith(template.number_prefix):
        raise InputError(f"{where}: number {number!r} must start with {template.number_prefix!r}")
    return DocumentData(
        number=number,
        issued=issued,
        expires=expires,
        name=_text(subject, "name", where).strip(),
        register_number=register,
        fields={f.key: str(fields[f.key]) for f in template.fields},
    )


def load_data(path: Path, template: Template) -> DocumentData:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"data file not found: {path}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON: {e}") from e
    return parse_data(raw, template, str(path))
