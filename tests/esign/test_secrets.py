"""Secrets stay secret: the test PKI's private files are readable by their owner only, and no
registry error shows the database password, whatever is wrong with the URL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from esign import testpki
from esign.errors import RegistryError
from esign.registry import open_registry, redact_url
from tests.helpers import run_esign

SECRET = "s3cret"


def _is_private(path: Path, pki: testpki.TestPki) -> bool:
    if path.suffix == ".p12" or path == pki.password_file:
        return True
    return b"PRIVATE KEY" in path.read_bytes()


def test_pki_build_writes_private_files_0600_in_0700_folders(pki: testpki.TestPki) -> None:
    private = [p for p in sorted(pki.root.rglob("*")) if p.is_file() and _is_private(p, pki)]
    # 2 key folders + 2 exported key folders, 5 bundles per architecture, and the password
    assert len(private) > 2 * len(testpki.SIGNERS) + 1
    assert pki.password_file in private
    modes = {str(p.relative_to(pki.root)): stat.S_IMODE(p.stat().st_mode) for p in private}
    assert {k: oct(m) for k, m in modes.items() if m != 0o600} == {}
    folders = {p.parent for p in private if p != pki.password_file}
    assert {p.relative_to(pki.root).parts[-1] for p in folders} == {
        "keys-rsa",
        "keys-ec",
        "keys",
        "p12",
    }
    loose = {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in folders}
    assert {k: m for k, m in loose.items() if m != "0o700"} == {}
    # Public material stays readable: a verifier must load the certificates and anchors.
    assert stat.S_IMODE(pki.cert("mn-rsa", "seal").stat().st_mode) & 0o044


BAD_URLS = [
    f"postgresql://u:{SECRET}@127.0.0.1:5432/test?bad===",  # libpq: extra separator
    f"postgresql://u:{SECRET}@[127.0.0.1/test",  # libpq repeats a URL it cannot parse
    f"postgresql://u:{SECRET}@127.0.0.1:5432:99/test",  # bad port
    "postgresql://u:s3%63ret@127.0.0.1:5432/test?sslmode=bogus",  # percent-encoded password
    f"postgresql://u:{SECRET[:2]}/{SECRET[2:]}@127.0.0.1:5432/test",  # raw slash in password
    f"postgresql://u@127.0.0.1:1/test?password={SECRET}&connect_timeout=abc",
    f"postgresql://u:{SECRET}@127.0.0.1:1/test",  # nothing listens on port 1
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_registry_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(RegistryError) as caught:
        open_registry(url)
    message = caught.value.message
    assert SECRET not in message and "\n" not in message
    assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)
    assert SECRET not in redact_url(url)


def test_revoke_cli_never_shows_the_password() -> None:
    for url in BAD_URLS[:5]:
        run = run_esign("revoke", "X", "--reason", "r", "--registry", url)
        output = run.out + run.err
        assert run.code != 0, output
        assert SECRET not in output and "s3%63ret" not in output, output
        assert "Traceback" not in output
        assert len(output.strip().splitlines()) == 1, output
