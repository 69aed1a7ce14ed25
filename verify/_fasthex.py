"""A faster equivalent of pyHanko's hex-string tokenizer.

Profiling verification showed pyHanko reading a signature's /Contents hex string one byte at a
time: about 1 µs per hex digit, a third of the time to verify a PAdES file. This reads the
string in one go and defers to pyHanko's own function whenever the input is anything but plain
hex digits and white space, so results and errors stay exactly pyHanko's. Installed by
:func:`install` (idempotent); tests compare both implementations on random input.
"""

from __future__ import annotations

import binascii
import re
from typing import IO, Any

from pyhanko.pdf_utils import generic

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


def install() -> None:
    generic.read_hex_string_from_stream = read_hex_string_from_stream


def original() -> Any:
    return _original
