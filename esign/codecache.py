"""Compiled code of dataclass methods, kept between runs of the command line (issue 13).

Python's dataclasses write each class's ``__init__``, ``__repr__``, ``__eq__``... as source text
and compile it when the class is defined: pyHanko's validation stack defines ~130 dataclasses,
~730 methods, and compiling them was ~55 ms of a one-file ``esign verify`` (a fifth of it). The
text depends only on the class's fields, so it compiles to the same code on every run. Like
Python's ``.pyc`` files for modules, this keeps those code objects, marshalled, in the user's
cache folder (``$XDG_CACHE_HOME/esign``, else ``~/.cache/esign``), one file per Python version,
keyed by the exact text compiled; a text not found there is compiled as usual, so a missing,
stale or damaged file only costs the time it saves. The file is written when something new was
compiled, never under ``PYTHONDONTWRITEBYTECODE`` / ``-B`` (as ``.pyc`` files are not).

Only for CPython 3.11 and 3.12, whose ``dataclasses._create_fn`` this replaces with the same
code plus the lookup; elsewhere :func:`install` does nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

CACHE_ENV = "XDG_CACHE_HOME"
MAX_ENTRIES = 5_000
"""Texts kept (~1 KiB each; a one-file verify compiles ~730): past this, as the dataclasses of
edited or upgraded code pile up, the file is rewritten with only what this run used."""

_EXPECTED = ("name", "args", "body", "globals", "locals", "return_type")
_codes: dict[str, CodeType] = {}
_used: set[str] = set()
_state = {"installed": False, "new": False}


def cache_file() -> Path:
    """This Python's cache file: ``$XDG_CACHE_HOME/esign`` (absolute only), else ``~/.cache``."""
    base = os.environ.get(CACHE_ENV, "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    tag = f"{sys.implementation.cache_tag}-{importlib.util.MAGIC_NUMBER.hex()}"
    return root / "esign" / f"dataclass-code-{tag}.marshal"


def _supported() -> bool:
    create = getattr(dataclasses, "_create_fn", None)
    code = getattr(create, "__code__", None)
    return (
        sys.implementation.name == "cpython"
        and (3, 11) <= sys.version_info[:2] < (3, 13)
        and code is not None
        and code.co_varnames[: len(_EXPECTED)] == _EXPECTED
    )


def _create_fn(
    name: str,
    args: list[str],
    body: list[str],
    *,
    globals: dict[str, Any] | None = None,
    locals: dict[str, Any] | None = None,
    return_type: Any = dataclasses.MISSING,
) -> Any:
    """CPython 3.11/3.12's ``dataclasses._create_fn``, compiling each text once per cache."""
    if locals is None:
        locals = {}
    return_annotation = ""
    if return_type is not dataclasses.MISSING:
        locals["_return_type"] = return_type
        return_annotation = "->_return_type"
    text = f" def {name}({','.join(args)}){return_annotation}:\n" + "\n".join(
        f"  {b}" for b in body
    )
    text = f"def __create_fn__({', '.join(locals.keys())}):\n{text}\n return {name}"
    _used.add(text)
    code = _codes.get(text)
    if not isinstance(code, CodeType):
        code = _codes[text] = compile(text, "<string>", "exec")
        _state["new"] = True
    ns: dict[str, Any] = {}
    exec(code, globals, ns)
    return ns["__create_fn__"](**locals)


def install() -> None:
    """Use the cached code for dataclasses defined from now on in this process."""
    if _state["installed"] or not _supported():
        return
    try:
        loaded = marshal.loads(cache_file().read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        loaded = None
    if isinstance(loaded, dict):
        _codes.update(loaded)
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
    _state["installed"] = True


def save() -> None:
    """Write what was compiled in this process beside what was cached (atomically, owner-only);
    any failure (read-only home, full disk) is ignored: the cache is only for speed."""
    if not _state["new"] or sys.dont_write_bytecode:
        return
    kept = _codes if len(_codes) <= MAX_ENTRIES else {t: _codes[t] for t in _used if t in _codes}
    import tempfile

    target = cache_file()
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".dataclass-code.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(kept))
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except OSError:
        return
    _state["new"] = False
