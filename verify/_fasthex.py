"""A faster equivalent of pyHanko's hex-string tokenizer.

Profiling verification showed pyHanko reading a signature's /Contents hex string one byte at a
time: about 1 µs per hex digit, a third of the time to verify a PAdES file. This reads the
string in one go and defers to pyHanko's own function whenever the input is anything but plain
hex digits and white space, so results and errors stay exactly pyHanko's. Installed by
:func:`install` (idempotent); tests compare both implementations on random input.

Names and bare tokens likewise (issue 13): after the path cache, pyHanko's difference analysis
of a B-LT file's DSS revision was half of a batch's time, and its tokenizer reads every name one
byte at a time through a generator (``read_until_delimiter``) and decodes it byte by byte
(``_decode_name``, ~9 us a name, ~230 names a file). The token is found with one regular
expression over a block; a name without ``#`` escapes and of plain printable ASCII is made
directly, anything else goes to pyHanko's decoder.

:func:`install` and :func:`uninstall` also switch the other tokenizer fast paths
(``_fastarray``, ``_faststring``, ``_fastdict``) and the object-header reader below, so a
benchmark's "pyHanko plain" run is one call away.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import IO, Any

from pyhanko.pdf_utils import generic, misc, xref

from . import _fastarray, _fastdict, _faststring

_original = generic.read_hex_string_from_stream
_PLAIN = re.compile(rb"[0-9A-Fa-f \n\r\t\f\x00]*")
_WHITESPACE = b" \n\r\t\f\x00"
_CHUNK = 1 << 16


def read_hex_string_from_stream(stream: IO[bytes]) -> Any:
    start = stream.tell()
    stream.read(1)  # the opening '<'
    parts: list[bytes] = []
    while True:
        block = stream.read(_CHUNK)
        end = block.find(b">")
        if end >= 0:
            parts.append(block[:end])
            stream.seek(start + 1 + sum(len(p) for p in parts) + 1)
            break
        if not block:
            stream.seek(start)
            return _original(stream)  # let pyHanko report the truncation its own way
        parts.append(block)
    body = b"".join(parts)
    if not _PLAIN.fullmatch(body):
        stream.seek(start)
        return _original(stream)  # comments or bad tokens: pyHanko's semantics and errors
    digits = body.translate(None, _WHITESPACE)
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


_original_until = misc.read_until_delimiter
_original_name = generic._decode_name
_DELIMITER = re.compile(rb"[ \n\r\t\f\x00()<>\[\]{}/%]")
_PLAIN_NAME = re.compile(rb"[!-~]*")  # printable ASCII (delimiters and '#' are checked apart)
_TOKEN_BLOCK = 256


def read_until_delimiter(stream: IO[bytes]) -> bytes:
    """pyHanko's ``misc.read_until_delimiter``: the bytes before the next white space or
    delimiter, the stream left at that character (or at the end)."""
    start = stream.tell()
    parts: list[bytes] = []
    while True:
        block = stream.read(_TOKEN_BLOCK)
        if not block:
            return b"".join(parts)
        found = _DELIMITER.search(block)
        if found is not None:
            parts.append(block[: found.start()])
            token = b"".join(parts)
            stream.seek(start + len(token))
            return token
        parts.append(block)


def _decode_name(name_bytes: bytes) -> Any:
    plain = _PLAIN_NAME.fullmatch(name_bytes) and not _DELIMITER.search(name_bytes)
    if b"#" in name_bytes or not plain:
        return _original_name(name_bytes)
    return generic.NameObject("/" + name_bytes.decode("ascii"))


_original_header: Callable[[IO[bytes], bool], tuple[int, int]] = xref._read_object_header
_HEADER = re.compile(rb"([0-9]{1,10}) ([0-9]{1,10}) obj")


def _read_object_header(stream: IO[bytes], strict: bool) -> tuple[int, int]:
    """pyHanko's ``xref._read_object_header`` when the header is exactly ``n g obj`` (no white
    space before it, one space apart: nothing to warn about); any other shape is pyHanko's.
    Every object read starts here (~3 us a header in pyHanko, a generator per byte)."""
    start = stream.tell()
    m = _HEADER.match(stream.read(32))
    if m is None:
        stream.seek(start)
        return _original_header(stream, strict)
    stream.seek(start + m.end())
    misc.read_non_whitespace(stream, seek_back=True)
    return int(m.group(1)), int(m.group(2))


def install() -> None:
    _fastarray.install()  # the same switch for every tokenizer fast path (bench/ flips it)
    _faststring.install()
    _fastdict.install()
    generic.read_hex_string_from_stream = read_hex_string_from_stream
    generic.read_until_delimiter = read_until_delimiter  # type: ignore[attr-defined]
    generic._decode_name = _decode_name
    xref._read_object_header = _read_object_header


def original() -> Any:
    return _original


def uninstall() -> None:
    """pyHanko's own tokenizers, for benchmarks that compare with pyHanko used plainly."""
    _fastarray.uninstall()
    _faststring.uninstall()
    _fastdict.uninstall()
    generic.read_hex_string_from_stream = _original
    generic.read_until_delimiter = _original_until  # type: ignore[attr-defined]
    generic._decode_name = _original_name
    xref._read_object_header = _original_header  # type: ignore[assignment]
