"""String literals and PDFDocEncoding, decoded in one go; anything unusual decoded by pyHanko.

pyHanko reads a string literal one byte at a time (``generic._read_string_literal_bytes``) and
decodes PDFDocEncoding through a generator, one character at a time. pyHanko writes every byte
that is not a letter, digit or space as a three-digit octal escape, so an issued certificate's
Cyrillic title is ~350 bytes of escapes (~70 us to read); string literals and PDFDocEncoding took
~0.85 ms of an issued certificate's verification (timed in place, 19 literals and 22 decodes a
document).

A literal made only of plain bytes and the escapes ``\\ddd`` (at most \\377, no digit after a
shorter one), ``\\n \\r \\t \\b \\f \\\\ \\( \\)``, closed within a 4 KiB block with no nested
parentheses, is decoded by ``codecs.escape_decode`` (which reads those escapes exactly as pyHanko
does); any other literal, and every error, is pyHanko's. PDFDocEncoding is a table lookup; a
string with an undefined code goes to pyHanko, which raises its own error. Installed by
:func:`install` (idempotent); the tests compare both on random and hostile input.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import IO, Any

from pyhanko.pdf_utils import generic

_original_literal: Callable[[IO[bytes]], bytes] = generic._read_string_literal_bytes
_original_pdfdoc: Callable[[Any], str] = generic.decode_pdfdocencoding
_PLAIN_LITERAL = re.compile(
    rb"\(((?:[^()\\]|\\(?:[0-3][0-7][0-7]|[0-7][0-7]?(?![0-9])|[nrtbf\\()]))*)\)"
)
_BLOCK = 4096
_PDFDOC: tuple[str, ...] = tuple(generic._pdfDocEncoding)
_UNDEFINED = re.compile(
    b"[" + b"".join(re.escape(bytes([i])) for i, c in enumerate(_PDFDOC) if c == "\u0000") + b"]"
)


def _read_string_literal_bytes(stream: IO[bytes]) -> bytes:
    """pyHanko's reader of ``(...)``: the decoded bytes, the stream left after ``)``."""
    start = stream.tell()
    block = stream.read(_BLOCK)
    m = _PLAIN_LITERAL.match(block)
    if m is None:
        stream.seek(start)
        return _original_literal(stream)
    stream.seek(start + m.end())
    body = m.group(1)
    if b"\\" not in body:
        return body
    # in a body without raw parentheses every backslash before a parenthesis escapes it
    body = body.replace(b"\\(", b"\\050").replace(b"\\)", b"\\051")
    return codecs.escape_decode(body)[0]  # type: ignore[attr-defined,no-any-return]


def decode_pdfdocencoding(byte_array: Any) -> str:
    """pyHanko's PDFDocEncoding decoder: a table lookup when every code is defined."""
    if not isinstance(byte_array, (bytes, bytearray)) or _UNDEFINED.search(byte_array):
        return _original_pdfdoc(byte_array)  # its own error for an undefined code
    return byte_array.decode("latin-1").translate(_PDFDOC)


def install() -> None:
    generic._read_string_literal_bytes = _read_string_literal_bytes
    generic.decode_pdfdocencoding = decode_pdfdocencoding


def uninstall() -> None:
    """pyHanko's own decoders, for benchmarks that compare with pyHanko used plainly."""
    generic._read_string_literal_bytes = _original_literal  # type: ignore[assignment]
    generic.decode_pdfdocencoding = _original_pdfdoc


def originals() -> tuple[Any, Any]:
    return _original_literal, _original_pdfdoc
