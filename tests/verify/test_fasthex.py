"""The fast hex-string reader must behave exactly like pyHanko's on any input."""

from __future__ import annotations

import random
from io import BytesIO

import pytest

from verify import _fasthex

ALPHABET = b"0123456789abcdefABCDEF \n\r\t\f\x00%>g<()"


def _run(fn: object, data: bytes) -> tuple[str, object, int]:
    stream = BytesIO(data)
    try:
        value = fn(stream)  # type: ignore[operator]
    except Exception as e:  # compare the error type, whatever it is
        return ("error", type(e).__name__, -1)
    return ("ok", (type(value).__name__, bytes(value.original_bytes)), stream.tell())


@pytest.mark.parametrize("seed", range(300))
def test_same_as_pyhanko_on_random_input(seed: int) -> None:
    rng = random.Random(seed)
    body = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
    data = b"<" + body + (b">" if rng.random() < 0.9 else b"") + b" trailing"
    assert _run(_fasthex.read_hex_string_from_stream, data) == _run(_fasthex.original(), data)


def test_long_signature_contents() -> None:
    data = b"<" + b"3082" * 20000 + b"0" * 30000 + b">endobj"
    fast = _run(_fasthex.read_hex_string_from_stream, data)
    assert fast == _run(_fasthex.original(), data)
    assert fast[2] == len(data) - len(b"endobj")


NAME_ALPHABET = b"abcXYZ019#._-+ \n\r\t\f\x00()<>[]{}/%\x80\xc3\xa9\x7f\x01"


def _name_run(data: bytes) -> tuple[str, object, int]:
    from pyhanko.pdf_utils import generic

    stream = BytesIO(data)
    try:
        value = generic.NameObject.read_from_stream(stream)
    except Exception as e:
        return ("error", type(e).__name__, -1)
    return ("ok", (type(value).__name__, str(value)), stream.tell())


def _until_run(fn: object, data: bytes, skip: int) -> tuple[bytes, int]:
    stream = BytesIO(data)
    stream.seek(skip)
    value = fn(stream)  # type: ignore[operator]
    return value, stream.tell()


@pytest.mark.parametrize("seed", range(300))
def test_names_and_tokens_same_as_pyhanko_on_random_input(seed: int) -> None:
    """Names (escapes, UTF-8 and Latin-1 bytes, control characters, a delimiter or white space
    right after the slash, the end of the data) and bare tokens read exactly as pyHanko reads
    them: same value or same error, same position after."""
    rng = random.Random(seed)
    plain = bytes(rng.choice(b"abcXYZ019._-+") for _ in range(rng.randint(0, 12)))
    noisy = bytes(rng.choice(NAME_ALPHABET) for _ in range(rng.randint(0, 40)))
    for body in (plain, noisy, plain + noisy, b"#41#42" + plain, plain + b" " * 300):
        data = b"/" + body
        _fasthex.install()
        fast = _name_run(data), _until_run(_fasthex.read_until_delimiter, data, 1)
        _fasthex.uninstall()
        try:
            slow = _name_run(data), _until_run(_fasthex._original_until, data, 1)
        finally:
            _fasthex.install()
        assert fast == slow, data


def test_a_long_token_spans_blocks() -> None:
    data = b"x" * 1000 + b"/Next"
    assert _until_run(_fasthex.read_until_delimiter, data, 0) == (b"x" * 1000, 1000)
    assert _until_run(_fasthex.read_until_delimiter, b"x" * 600, 0) == (b"x" * 600, 600)


# Arrays: runs of plain numbers are read by verify._fastarray, everything else by pyHanko.

NUMBERS = [b"0", b"7", b"42", b"600", b"-236", b"+4", b"1.5", b"-.5", b"+.5", b".5", b"1.", b"-0",
           b"007", b"0.000", b"9" * 40, b"-" + b"1" * 25 + b".25"]  # fmt: skip
REFS = [b"3 0 R", b"12 3 R", b"1 0\nR", b"7\r\n0\tR", b"0000000001 000000 R", b"/Name", b"/FitH"]
ODD = [b"1,5", b"1.2.3", b"--1", b"-", b"+", b".", b"+-1", b"5e3", b"1_0", b"R", b"1 0R", b"0 0 R",
       b"1 -1 R", b"1 0 obj", b"9" * 5000, b"]", b"[", b"<<", b">>", b"{", b"a",
       b"\x0b", b"00000000001 000000 R", b"1\x000 R", b"1 0\x00R", b"1\x0b0 R", b"1 0 \x0bR",
       b"1 0 R5", b"/A#41", b"/", b"/\xc3\xa9", b"/a/b", b"/a%c\n"]  # fmt: skip
OTHER = [b"/Name", b"(str)", b"(a(b)c)", b"<41>", b"<< /A 1 /B [2 3] >>", b"true", b"false",
         b"null", b"[]", b"[ ]", b"[318]", b"[ 1 2.5 -3 ]", b"[1 0 R]", b"%comment\n"]  # fmt: skip
SPACES = [b" ", b" ", b" ", b"\n", b"\r\n", b"\t", b"\f", b"\x00", b"  "]


class _Handler:
    strict = False

    def get_object(self, ref: object) -> object:
        raise AssertionError("never dereferenced while parsing")


def _describe(obj: object, container: object) -> object:
    """Type, exact value, and whether container_ref is the one read_object was given."""
    from decimal import Decimal

    from pyhanko.pdf_utils import generic

    same = getattr(obj, "container_ref", None) is container
    name = type(obj).__name__
    if isinstance(obj, generic.IndirectObject):
        return (name, same, obj.idnum, obj.generation)
    if isinstance(obj, generic.ArrayObject):
        return (name, same, [_describe(x, container) for x in obj.iterate()])
    if isinstance(obj, generic.DictionaryObject):
        return (name, same, sorted((k, _describe(obj.raw_get(k), container)) for k in obj))
    if isinstance(obj, Decimal):
        return (name, same, obj.as_tuple())
    if isinstance(obj, generic.OperatorLiteral):
        return (name, same, obj.literal)
    if isinstance(obj, generic.NullObject):
        return (name, same, None)
    return (name, same, repr(obj))


def _array_run(data: bytes, install: bool, content: bool = False) -> tuple[str, object, int]:
    from pyhanko.pdf_utils import generic

    from verify import _fastarray

    if install:
        _fastarray.install()
    else:
        _fastarray.uninstall()
    ref = generic.Reference(5, 0, _Handler())
    stream = BytesIO(data)
    mode = generic.ContentOpReading.GRAPHIC_OPS if content else generic.ContentOpReading.NO
    try:
        value = generic.read_object(stream, ref, in_content_stream=mode)
    except Exception as e:
        return ("error", (type(e).__name__, str(e)), stream.tell())
    finally:
        _fastarray.install()
    return ("ok", _describe(value, ref), stream.tell())


def _random_array(rng: random.Random, hostile: float, depth: int = 0) -> bytes:
    parts = [b"["]
    for _ in range(rng.choice([0, 1, 2, 3, 8, 40, 300] if depth == 0 else [0, 1, 2, 8])):
        roll = rng.random()
        if roll < hostile:
            parts.append(rng.choice(ODD))
        elif roll < 0.6:
            parts.append(rng.choice(NUMBERS))
        elif roll < 0.7:
            parts.append(rng.choice(REFS))
        elif roll < 0.78 and depth < 3:
            parts.append(_random_array(rng, hostile, depth + 1))
        else:
            parts.append(rng.choice(OTHER))
        parts.append(rng.choice(SPACES) if rng.random() >= hostile else b"")
    parts.append(b"]")
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(400))
def test_arrays_same_as_pyhanko_on_random_input(seed: int) -> None:
    """Numbers, signs, floats, references (also malformed), nested arrays and dicts, comments,
    odd white space (NUL, form feed, vertical tab, none at all) and truncation: the same objects
    (type, exact value, container_ref), the same error, the same position after."""
    rng = random.Random(seed)
    data = _random_array(rng, hostile=rng.choice([0.0, 0.0, 0.003, 0.02, 0.1]))
    if rng.random() < 0.25:
        data = data[: rng.randint(0, len(data))]
    data += rng.choice([b"", b" endobj", b"\n", b"R", b" 0 R"])
    fast = _array_run(data, install=True)
    assert fast == _array_run(data, install=False), data
    if rng.random() < 0.1:  # content streams are pyHanko's alone
        assert _array_run(data, True, content=True) == _array_run(data, False, content=True)


@pytest.mark.parametrize("pad", range(0, 40))
def test_tokens_across_block_boundaries(pad: int) -> None:
    """A long run whose tokens, references and nested arrays straddle the fast reader's 1 KiB
    blocks at every offset."""
    body = b" ".join([b"1 [318] 22 [401 -3.5] 3 0 R 444"] * 60)
    data = b"[" + b" " * pad + body + b" 7 0 R 12 13]"
    fast = _array_run(data, install=True)
    assert fast == _array_run(data, install=False)
    assert fast[0] == "ok"


def test_long_w_array_reads_as_pyhanko_reads_it() -> None:
    """A CIDFont /W array of an issued certificate's shape, and the reference case."""
    widths = b" ".join(b"%d [%d]" % (i, 300 + i % 700) for i in range(1, 400))
    flat = widths.replace(b"[", b"").replace(b"]", b"")
    for data in (b"[" + widths + b"]", b"[0 [" + flat + b"]]",
                 b"[1 0 R 2 0 R]", b"[1 2 3 4 5 0 R]", b"[1 2\n0 R]"):  # fmt: skip
        fast = _array_run(data, install=True)
        assert fast == _array_run(data, install=False)
        assert fast[0] == "ok"
    # pyHanko does not see a reference across a comment: the same error either way
    fast = _array_run(b"[1 2 %c\n 0 R]", install=True)
    assert fast == _array_run(b"[1 2 %c\n 0 R]", install=False)
    assert fast[0] == "error"


# String literals and PDFDocEncoding: verify._faststring, pyHanko for anything unusual.

LITERAL_PIECES = [b"a", b"Z", b"0", b"9", b" ", b"\r\n", b"\n", b"\x00", b"\xff", b"\xe6", b"(",
                  b")", b"\\", b"\\n", b"\\r", b"\\t", b"\\b", b"\\f", b"\\\\", b"\\(", b"\\)",
                  b"\\/", b"\\%", b"\\a", b"\\x", b"\\\n", b"\\\r\n", b"\\\r", b"\\0", b"\\7",
                  b"\\8", b"\\12", b"\\123", b"\\377", b"\\400", b"\\777", b"\\1234", b"\\128",
                  b"\\19", b"\\072", b"\\376\\377\\004\\036", b"\\000"]  # fmt: skip


def _literal_run(data: bytes, install: bool) -> tuple[str, object, int]:
    from pyhanko.pdf_utils import generic

    from verify import _faststring

    (_faststring.install if install else _faststring.uninstall)()
    stream = BytesIO(data)
    try:
        value = generic.read_string_from_stream(stream)
    except Exception as e:
        return ("error", (type(e).__name__, str(e)), stream.tell())
    finally:
        _faststring.install()
    return ("ok", (type(value).__name__, str(value), bytes(value.original_bytes)), stream.tell())


@pytest.mark.parametrize("seed", range(400))
def test_string_literals_same_as_pyhanko_on_random_input(seed: int) -> None:
    """Octal escapes of every length (also too large, or with 8 and 9), named and unknown
    escapes, escaped and nested parentheses, line continuations, raw control and high bytes,
    truncation: the same string object (type, text, bytes), error and position after."""
    rng = random.Random(seed)
    weights = [1.0] * len(LITERAL_PIECES)
    if rng.random() < 0.5:  # mostly plain: what the fast path takes
        for i, piece in enumerate(LITERAL_PIECES):
            if piece in (b"(", b")", b"\\", b"\\a", b"\\x", b"\\8", b"\\400", b"\\128"):
                weights[i] = 0.02
    body = b"".join(rng.choices(LITERAL_PIECES, weights, k=rng.choice([0, 1, 5, 30, 200, 3000])))
    data = b"(" + body + b")" + rng.choice([b"", b" /Next", b")", b"\\", b"5"])
    if rng.random() < 0.1:
        data = data[: rng.randint(0, len(data))]
    assert _literal_run(data, install=True) == _literal_run(data, install=False), data


def test_issued_title_and_dates() -> None:
    """What pyHanko writes: every non-alphanumeric byte as a three-digit octal escape."""
    title = "ОРШИН СУУГАА ХАЯГИЙН ТОДОРХОЙЛОЛТ (2026)".encode("utf-16be")
    for raw in (b"\xfe\xff" + title, b"D:20261126184927Z", b"https://www.iso.org/x_y.html"):
        data = b"(" + b"".join(b"%c" % c if chr(c).isalnum() else b"\\%03o" % c for c in raw)
        data += b")>>"
        fast = _literal_run(data, install=True)
        assert fast == _literal_run(data, install=False)
        assert fast[0] == "ok" and fast[2] == len(data) - 2


@pytest.mark.parametrize("seed", range(100))
def test_pdfdocencoding_same_as_pyhanko(seed: int) -> None:
    from pyhanko.pdf_utils import generic

    from verify import _faststring

    fast, original = _faststring.decode_pdfdocencoding, _faststring.originals()[1]
    rng = random.Random(seed)
    defined = [i for i in range(256) if generic._pdfDocEncoding[i] != "\u0000"]
    for data in (bytes(rng.choices(defined, k=rng.randint(0, 60))),
                 bytes(rng.choices(range(256), k=rng.randint(0, 60)))):  # fmt: skip
        for value in (data, bytearray(data)):
            try:
                expected: object = original(value)
            except Exception as e:
                expected = (type(e).__name__, e.args)
            try:
                got: object = fast(value)
            except Exception as e:
                got = (type(e).__name__, e.args)
            assert got == expected, data


# Dictionaries: plain entries read by verify._fastdict, everything else by pyHanko.

KEYS = [b"/Type", b"/Length", b"/A", b"/W", b"/Font", b"/x.y-z_1", b"/A#20B", b"/\xc3\xa9", b"/",
        b"/Type", b"/Type"]  # fmt: skip
VALUES = [b"/Page", b"/Identity-H", b"/a#41", b"/", b"600", b"-236", b"+.5", b"1.", b"0", b"3 0 R",
          b"12 0 R", b"1 0\nR", b"0 0 R", b"1 -1 R", b"1 0R", b"1 0 Rx", b"0000000000001 00000 R",
          b"00000000001 0000 R", b"0000000001 000000 R", b"00000000001 000000 R", b"1\x000 R",
          b"1 0\x00R", b"1\x0b0 R", b"1 0 \x0bR", b"[1 2 3]", b"[3 0 R]", b"(text)", b"<41>",
          b"<< /N 1 >>", b"<<>>", b"true", b"false", b"null", b"1,5", b"--1", b"%c\n 5",
          b"5%c\n"]  # fmt: skip


class _StrictHandler(_Handler):
    strict = True


class _LengthHandler(_Handler):
    def get_object(self, ref: object) -> object:
        from pyhanko.pdf_utils import generic

        return generic.NumberObject(4)


def _dict_run(data: bytes, install: bool, handler: object) -> tuple[str, object, int, list[str]]:
    import logging

    from pyhanko.pdf_utils import generic

    from verify import _fastdict

    warnings: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    collect = _Collect()
    generic.logger.addHandler(collect)
    (_fastdict.install if install else _fastdict.uninstall)()
    ref = generic.Reference(5, 0, handler)
    stream = BytesIO(data)
    try:
        value = generic.read_object(stream, ref)
    except Exception as e:
        return ("error", (type(e).__name__, str(e)), stream.tell(), warnings)
    finally:
        _fastdict.install()
        generic.logger.removeHandler(collect)
    described = _describe(value, ref)
    keys = [(k, type(k).__name__, getattr(k, "container_ref", None)) for k in value]
    payload = getattr(value, "_encoded_data", None)
    return ("ok", (described, keys, payload), stream.tell(), warnings)


def _random_dict(rng: random.Random, hostile: float, depth: int = 0) -> bytes:
    parts = [b"<<"]
    for _ in range(rng.choice([0, 1, 3, 10, 60])):
        parts.append(rng.choice(SPACES) if rng.random() >= hostile else b"%c\n")
        key = rng.choice(KEYS[:6]) if rng.random() < 0.2 else b"/K%d" % rng.randint(0, 500)
        parts.append(key if rng.random() >= hostile else rng.choice(KEYS))
        value = rng.choice(VALUES[:12]) if rng.random() >= hostile else rng.choice(VALUES)
        if depth < 2 and rng.random() < 0.1:
            value = _random_dict(rng, hostile, depth + 1)
        glued = value[:1] in b"/[(<" or rng.random() < hostile  # "/Type/Page", "/A[1]"
        parts.append(rng.choice(SPACES) if not glued or rng.random() < 0.5 else b"")
        parts.append(value)
    parts.append(rng.choice(SPACES) + b">>")
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(400))
def test_dicts_same_as_pyhanko_on_random_input(seed: int) -> None:
    """Plain and escaped keys, names, numbers, references (also malformed, or longer than
    pyHanko's 20-byte look-ahead), nested objects, comments, odd white space, repeated keys
    (strict: error, else a warning), stream payloads, truncation: the same dictionary (types,
    values, container_ref of values and keys), error, warnings and position after."""
    rng = random.Random(seed)
    data = _random_dict(rng, hostile=rng.choice([0.0, 0.0, 0.01, 0.05, 0.2]))
    if rng.random() < 0.2:
        data = (
            data[:-2] + b"/Length " + rng.choice([b"4", b"9 0 R"]) + b">>\nstream\nabcd\nendstream"
        )
    if rng.random() < 0.15:
        data = data[: rng.randint(0, len(data))]
    data += rng.choice([b"", b" endobj", b"\n", b">"])
    handler = rng.choice([_Handler(), _StrictHandler(), _LengthHandler()])
    fast = _dict_run(data, install=True, handler=handler)
    assert fast == _dict_run(data, install=False, handler=handler), data


@pytest.mark.parametrize("pad", range(0, 30))
def test_dict_entries_across_block_boundaries(pad: int) -> None:
    body = b"".join(b"/K%d %s " % (i, v) for i, v in enumerate([b"/Name", b"600", b"12 0 R"] * 80))
    data = b"<<" + b" " * pad + body + b">>"
    fast = _dict_run(data, install=True, handler=_Handler())
    assert fast == _dict_run(data, install=False, handler=_Handler())
    assert fast[0] == "ok"


@pytest.mark.parametrize("item", NUMBERS + REFS + ODD + OTHER)
def test_each_token_in_array_contexts(item: bytes) -> None:
    """Every listed token alone, between numbers, names and references, with and without
    white space around it, read as pyHanko reads it."""
    contexts = [(b"", b""), (b"1 ", b" 2"), (b"/A ", b" /B"), (b"3 0 R ", b" 4 0 R"),
                (b"1 2 ", b""), (b"", b"\n5 0 R"), (b"7", b"8"), (b"[", b"]")]  # fmt: skip
    for before, after in contexts:
        data = b"[" + before + item + after + b"]"
        assert _array_run(data, install=True) == _array_run(data, install=False), data


@pytest.mark.parametrize("item", VALUES)
def test_each_value_in_dict_contexts(item: bytes) -> None:
    for before, after in [(b"", b""), (b"/A 1 ", b" /B 2"), (b"/A 3 0 R", b"/B/C")]:
        data = b"<<" + before + b"/K " + item + after + b">>"
        fast = _dict_run(data, install=True, handler=_Handler())
        assert fast == _dict_run(data, install=False, handler=_Handler()), data


# Object headers: "n g obj" read by verify._fasthex, any other shape by pyHanko.

HEADER_PIECES = [b"12", b"0", b"007", b"9" * 11, b"-1", b"a", b" ", b"  ", b"\n", b"\r\n", b"\x00",
                 b"\t", b"obj", b"ob", b"%c\n", b"<<", b"endobj"]  # fmt: skip


def _header_run(data: bytes, install: bool, strict: bool) -> tuple[str, object, int, list[str]]:
    import logging

    from pyhanko.pdf_utils import xref

    warnings: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    collect = _Collect()
    xref.logger.addHandler(collect)
    (_fasthex.install if install else _fasthex.uninstall)()
    stream = BytesIO(data)
    try:
        value = xref.read_object_header(stream, strict=strict)
    except Exception as e:
        return ("error", (type(e).__name__, str(e)), stream.tell(), warnings)
    finally:
        _fasthex.install()
        xref.logger.removeHandler(collect)
    return ("ok", value, stream.tell(), warnings)


@pytest.mark.parametrize("seed", range(300))
def test_object_headers_same_as_pyhanko(seed: int) -> None:
    """Plain and padded headers, other white space, comments, long numbers, missing or short
    'obj', truncation, strict (a warning for extra white space) or not: same numbers, error,
    warnings and position after."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        lead, mid, last = (
            rng.choice([b" ", b" ", b" ", b"  ", b"\n", b"\x00", b""]) for _ in "123"
        )
        data = b"%s%d%s%d%sobj" % (
            lead.strip(b" "),
            rng.randint(1, 10**6),
            mid,
            rng.randint(0, 3),
            last,
        )
        data += rng.choice([b"\n<<", b" <<", b"<<", b"\r\n[1]", b"\n%c\n<<", b"", b"\n"])
    else:
        data = b"".join(rng.choices(HEADER_PIECES, k=rng.randint(0, 8)))
    strict = rng.random() < 0.5
    assert _header_run(data, True, strict) == _header_run(data, False, strict), data
