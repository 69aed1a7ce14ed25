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
