"""Plain dictionary entries read a block at a time; anything else read by pyHanko.

After the array and string fast paths, reading objects was still ~30 % of the CPU time of
verifying a B-LT file (1.8 of ~6 ms a document, 37 object reads), nearly all of it dictionary
entries: for each one pyHanko skips white space a byte at a time, reads the key through
``NameObject.read_from_stream``, skips again, then ``read_object`` peeks, seeks and matches its
reference pattern before reading the value (~5 us an entry).

An entry ``/Key value`` whose key is a plain name (printable ASCII, no ``#`` escape) and whose
value is a plain name, a plain number followed by the next key or ``>``, or an ``n g R``
reference (within pyHanko's 20-byte look-ahead, object number > 0) is made here from one
regular expression over a block, as the same objects pyHanko makes (values carry the
container_ref, keys do not); after a plain key, any other value is read by ``read_object`` from
where pyHanko would call it, and a ``>`` ends the dictionary as in pyHanko. Comments, odd white
space, escaped keys and a repeated key (strict error or warning) go through pyHanko's own loop
body, copied with its messages; the stream payload is pyHanko's function. Dictionaries in
content streams are pyHanko's. Installed by :func:`install` (idempotent); the tests compare
both on random and hostile input.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from typing import IO, Any

from pyhanko.pdf_utils import generic, misc

_original = generic.DictionaryObject.read_from_stream
_WS = rb"[ \n\r\t\f\x00]*"
_SEP = rb"[ \n\r\t\f]+"  # white space to pyHanko's reference reader and its pattern alike
_NAME_BYTES = bytes(c for c in range(0x21, 0x7F) if c not in b"()<>[]{}/%#")  # no escapes
_NAME = rb"[" + b"".join(re.escape(bytes([c])) for c in _NAME_BYTES) + rb"]+"
_END = rb"(?=[ \n\r\t\f\x00()<>\[\]{}/%])"  # where pyHanko's name and number tokens end
_ENTRY = re.compile(
    _WS + rb"/(" + _NAME + rb")" + _END + _WS
    + rb"(?:/(" + _NAME + rb")" + _END
    + rb"|([+\-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?=" + _WS + rb"[/>])"
    + rb"|([0-9]+)" + _SEP + rb"([0-9]+)" + _SEP + rb"R(?=[ \n\r\t\f\x00()<>\[\]{}/%]))"
)  # fmt: skip
_CLOSE = re.compile(_WS + rb">")
_KEY = re.compile(_WS + rb"/(" + _NAME + rb")" + _END + _WS + rb"(?=[^% \n\r\t\f\x00])")  # value
_BLOCK = 1024
_Name = generic.NameObject
_Float = generic.FloatObject
_Number = generic.NumberObject


def _read_plain(
    block: bytes, data: dict[Any, Any], container_ref: Any
) -> tuple[int, int | None, Any]:
    """Add the plain entries at the start of ``block`` to ``data``; return where they end and
    what follows: the end of a closing ``>`` (key None), or a plain key not yet in ``data`` and
    where its value starts (for ``read_object``), or (None, None)."""
    pos = 0
    match = _ENTRY.match
    while (m := match(block, pos)) is not None:
        key, name, number, idnum, generation = m.groups()
        key = _Name("/" + key.decode("ascii"))
        if key in data:
            return pos, None, None  # pyHanko's loop says how a repeated key is handled
        if name is not None:
            value: Any = _Name("/" + name.decode("ascii"))
        elif number is not None:
            if b"." in number:
                value = Decimal.__new__(_Float, number.decode("ascii"))
            else:
                value = int.__new__(_Number, int(number))
        else:
            # pyHanko sees a reference only within 20 bytes of its start (the 'R' and one more)
            if m.end() + 1 - m.start(4) > 20 or int(idnum) <= 0:
                return pos, None, None
            value = generic.IndirectObject(
                int(idnum), int(generation), container_ref.get_pdf_handler()
            )
        value.container_ref = container_ref
        data[key] = value
        pos = m.end()
    if (m := _CLOSE.match(block, pos)) is not None:
        return pos, m.end(), None
    if (m := _KEY.match(block, pos)) is not None:
        key = _Name("/" + m.group(1).decode("ascii"))
        if key not in data:
            return pos, m.end(), key
    return pos, None, None


def read_dict(
    stream: IO[bytes],
    container_ref: Any,
    as_metadata_stream: bool = False,
    in_content_stream: generic.ContentOpReading = generic.ContentOpReading.NO,
) -> Any:
    """``generic.DictionaryObject.read_from_stream`` with plain entries read a block at a time."""
    start = stream.tell()
    if in_content_stream or stream.read(2) != b"<<":
        stream.seek(start)
        return _original(stream, container_ref, as_metadata_stream, in_content_stream)
    data: dict[Any, Any] = {}
    handler = container_ref.get_pdf_handler()
    while True:
        pos = stream.tell()
        used, after, key = _read_plain(stream.read(_BLOCK), data, container_ref)
        if after is not None:
            stream.seek(pos + after)
            if key is None:  # the first '>' of '>>': pyHanko reads one byte more, whatever it is
                stream.read(1)
                break
            data[key] = generic.read_object(
                stream, container_ref, in_content_stream=in_content_stream
            )
            continue
        stream.seek(pos + used)
        if used:
            continue
        # pyHanko's own loop body, for one entry or the closing '>>'
        tok = generic.read_non_whitespace(stream)
        if tok == b">":
            stream.read(1)
            break
        stream.seek(-1, os.SEEK_CUR)
        try:
            key = generic.NameObject.read_from_stream(stream)
        except Exception as ex:
            raise misc.PdfReadError(
                f"Failed to read dictionary key at byte 0x{hex(stream.tell())}; expected PDF name"
            ) from ex
        generic.read_non_whitespace(stream)
        stream.seek(-1, os.SEEK_CUR)
        value = generic.read_object(stream, container_ref, in_content_stream=in_content_stream)
        if key not in data:
            data[key] = value
        else:
            err = f"Multiple definitions in dictionary at byte {hex(stream.tell())} for key {key}"
            if handler.strict:
                raise misc.PdfStrictReadError(err)
            else:
                generic.logger.warning(err)
    # pyHanko's own end (in_content_stream is NO here)
    stream_data = generic._maybe_read_stream_payload(stream, data, handler)
    if stream_data is not None:
        stm_cls: Any = generic.StreamObject
        if as_metadata_stream:
            try:
                from pyhanko.pdf_utils.metadata.xmp_xml import MetadataStream

                stm_cls = MetadataStream
            except ImportError:  # pragma: no cover
                pass
        return stm_cls(data, encoded_data=stream_data)
    else:
        return generic.DictionaryObject(data)


def install() -> None:
    generic.DictionaryObject.read_from_stream = staticmethod(read_dict)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """pyHanko's own dictionary reader, for benchmarks that compare with pyHanko used plainly."""
    generic.DictionaryObject.read_from_stream = staticmethod(_original)  # type: ignore[method-assign,assignment]


def original() -> Any:
    return _original
