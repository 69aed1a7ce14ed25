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
