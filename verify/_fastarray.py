"""Runs of plain numbers, references and names in PDF arrays, read in one go; anything else
read by pyHanko.

pyHanko's ``generic.read_object`` reads each number of an array on its own: a 1-byte read and
seek, a 20-byte peek matched against its indirect-reference pattern, then a 16-byte-at-a-time
``read_until_regex``; ``ArrayObject.read_from_stream`` skips the white space before each element
one byte at a time. An issued certificate's CIDFont /W arrays hold ~700 numbers, and the
difference analysis parses them again for every revision walk: in a profile of verifying issued
B-LT certificates, ``read_object`` was 43 % of the time.

This reads an array (outside content streams) the way pyHanko does, element by element, except
that a run of plain elements becomes the objects pyHanko makes, from one regular expression
over a block: number tokens (optional sign, digits, at most one '.', each followed by PDF white
space or a delimiter), arrays of such numbers only, plain names, and references "n g R" that
pyHanko's 20-byte look-ahead sees whole (n > 0). A run ending in numbers before anything but
``] [ / < (`` might end in a reference this does not take ("1 0 R5") or in a token pyHanko
reads differently ("1,5", "5%"): its last two numbers are left to pyHanko, which also reads
every other kind of element, comments, odd white space and the array's end. Installed by
:func:`install` (idempotent); the tests compare both readers on random and hostile input.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import IO, Any

from pyhanko.pdf_utils import generic, misc

_original = generic.ArrayObject.read_from_stream
_WS = rb"[ \n\r\t\f\x00]*"
_TOKEN = rb"[+\-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_AFTER = rb"(?=[ \n\r\t\f\x00\[\]/<(])"  # where pyHanko's number token ends too
_NUMBER = re.compile(_TOKEN)
_SEP = rb"[ \n\r\t\f]+"  # white space to pyHanko's reference reader and its pattern alike
_NAME_BYTES = bytes(c for c in range(0x21, 0x7F) if c not in b"()<>[]{}/%#")  # no escapes
_NAME = rb"[" + b"".join(re.escape(bytes([c])) for c in _NAME_BYTES) + rb"]+"
_DELIMITED = rb"(?=[ \n\r\t\f\x00()<>\[\]{}/%])"  # where pyHanko's name token ends
# one element: a reference "n g R" that pyHanko's 20-byte look-ahead sees whole with n > 0
# (groups 1, 2), a plain number (3), an array of one (4) or more (5) plain numbers only, as in
# a /W array "1 [318] 2 [401 560]", or a plain name (6)
_ELEMENT = (
    _WS + rb"(?:(?=[0-9 \n\r\t\f]{2,18}R)(0*[1-9][0-9]*)" + _SEP + rb"([0-9]+)" + _SEP + rb"R"
    + _DELIMITED
    + rb"|(" + _TOKEN + rb")" + _AFTER
    + rb"|\[" + _WS + rb"(" + _TOKEN + rb")" + _WS + rb"\]"
    + rb"|\[((?:" + _WS + _TOKEN + _AFTER + rb")*)" + _WS + rb"\]"
    + rb"|/(" + _NAME + rb")" + _DELIMITED + rb")"
)  # fmt: skip
_ELEMENTS = re.compile(_ELEMENT)
_RUN = re.compile(rb"(?:" + _ELEMENT + rb")+")
_CLEAR_END = re.compile(_WS + rb"[\]\[/<(]")  # no indirect reference spans it
_BLOCK = 1024
_Float = generic.FloatObject
_Number = generic.NumberObject
_Array = generic.ArrayObject
_Name = generic.NameObject
_new_int = int.__new__


def _number(token: bytes, container_ref: Any) -> Any:
    """What ``generic.read_object`` returns for a plain number token (same type and value)."""
    if b"." in token:
        obj: Any = Decimal.__new__(_Float, token.decode("ascii"))
    else:
        obj = _new_int(_Number, int(token))
    obj.container_ref = container_ref
    return obj


def _read_plain(block: bytes, container_ref: Any) -> tuple[list[Any], int]:
    """The plain elements at the start of ``block`` and where they end, less any trailing
    numbers that an indirect reference or a token pyHanko reads on might involve."""
    run = _RUN.match(block)
    if run is None:
        return [], 0
    end = run.end()
    # the run and the character after it (in the block: the run's last token looked at it)
    found = _ELEMENTS.findall(block[: end + 1])
    if found[-1][2] and _CLEAR_END.match(block, end) is None:
        trailing = 2 if len(found) > 1 and found[-2][2] else 1
        del found[-trailing:]
        ends = [m.end() for m in _ELEMENTS.finditer(block[: end + 1])]
        end = ends[len(found) - 1] if found else 0
    items: list[Any] = []
    append = items.append
    for idnum, generation, token, one, more, name in found:
        if token:
            if b"." in token:
                obj: Any = Decimal.__new__(_Float, token.decode("ascii"))
            else:
                obj = _new_int(_Number, int(token))
        elif idnum:
            obj = generic.IndirectObject(
                int(idnum), int(generation), container_ref.get_pdf_handler()
            )
        elif name:
            obj = _Name("/" + name.decode("ascii"))
        elif one:
            if b"." in one:
                first: Any = Decimal.__new__(_Float, one.decode("ascii"))
            else:
                first = _new_int(_Number, int(one))
            first.container_ref = container_ref
            obj = _Array((first,))
        else:
            obj = _Array([_number(t, container_ref) for t in _NUMBER.findall(more)])
        obj.container_ref = container_ref
        append(obj)
    return items, end


def read_array(
    stream: IO[bytes],
    container_ref: Any,
    in_content_stream: generic.ContentOpReading = generic.ContentOpReading.NO,
) -> Any:
    """``generic.ArrayObject.read_from_stream`` with plain elements read a block at a time."""
    if in_content_stream:
        return _original(stream, container_ref, in_content_stream)
    arr = generic.ArrayObject()
    if stream.read(1) != b"[":
        raise misc.PdfReadError("Could not read array")
    while True:
        start = stream.tell()
        items, used = _read_plain(stream.read(_BLOCK), container_ref)
        stream.seek(start + used)
        if items:
            arr.extend(items)
            continue
        # pyHanko's own loop body, for one element or the closing bracket
        if generic.read_non_whitespace(stream) == b"]":
            break
        stream.seek(-1, 1)
        arr.append(generic.read_object(stream, container_ref))
    return arr


def install() -> None:
    generic.ArrayObject.read_from_stream = staticmethod(read_array)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """pyHanko's own array reader, for benchmarks that compare with pyHanko used plainly."""
    generic.ArrayObject.read_from_stream = staticmethod(_original)  # type: ignore[method-assign,assignment]


def original() -> Any:
    return _original
