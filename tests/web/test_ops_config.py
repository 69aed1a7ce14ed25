"""Configuration as operators find it, judged through the real commands: `esign config show`
names the file in effect (--config, then $ESIGN_CONFIG, then the user's XDG config folder) and
where each value came from, masks secrets, and a wrong or misplaced key stops with one line
naming it; `esign serve` started with no --config uses the file found in the config folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from esign import testpki
from esign.services import PkiServices
from tests.conftest import REPO, free_port
from tests.helpers import run_esign
from tests.web.conftest import PASSWORD_ENV, stop_server, write_config

SECRET = "pg-S3cret-" + "x" * 8
API_KEY = "the-agency-api-key-123"


@pytest.fixture()
def homes(tmp_path: Path) -> dict[str, str]:
    """An environment whose config and data folders are empty, and no config named."""
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "ESIGN_CONFIG": "",
    }
    for name in ("ESIGN_REGISTRY", "ESIGN_BASE_URL", "ESIGN_PORT", "ESIGN_HOST", "ESIGN_WORKERS",
                 "ESIGN_MAX_UPLOAD_MB"):  # fmt: skip
        env[name] = ""
    return env


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(output: str, setting: str) -> str:
    """The `config show` line of ``setting`` (the first one)."""
    return next(x for x in output.splitlines() if x.startswith(f"{setting} = "))


def test_search_order_and_origins(tmp_path: Path, homes: dict[str, str]) -> None:
    user = write(Path(homes["XDG_CONFIG_HOME"]) / "esign" / "esign.toml",
                 'base_url = "https://user.example.mn"\n[serve]\nport = 9001\n')  # fmt: skip
    named = write(tmp_path / "named.toml", 'base_url = "https://named.example.mn"\n')
    given = write(tmp_path / "given.toml", 'base_url = "https://given.example.mn"\n')

    r = run_esign("config", "show", env=homes)
    assert r.code == 0, r.err
    assert f"# configuration file: {user} (user config folder)" in r.out
    assert line_of(r.out, "base_url").endswith(f"# {user}")
    assert "https://user.example.mn" in line_of(r.out, "base_url")
    assert line_of(r.out, "port").split("#")[0].strip() == "port = 9001"
    assert line_of(r.out, "workers").endswith("# default")

    r = run_esign("config", "show", env={**homes, "ESIGN_CONFIG": str(named)})
    assert r.code == 0, r.err
    assert f"# configuration file: {named} ($ESIGN_CONFIG)" in r.out
    assert "https://named.example.mn" in line_of(r.out, "base_url")
    assert line_of(r.out, "port").endswith("# default")  # the user file is not merged in

    r = run_esign("config", "show", "--config", str(given),
                  env={**homes, "ESIGN_CONFIG": str(named), "ESIGN_PORT": "9100"})  # fmt: skip
    assert r.code == 0, r.err
    assert f"# configuration file: {given} (--config)" in r.out
    assert "https://given.example.mn" in line_of(r.out, "base_url")
    assert line_of(r.out, "port").startswith("port = 9100")
    assert line_of(r.out, "port").endswith("# $ESIGN_PORT")


def test_no_file_anywhere_is_the_built_in_defaults(homes: dict[str, str]) -> None:
    r = run_esign("config", "show", env=homes)
    assert r.code == 0, r.err
    assert "# configuration file: none found: built-in defaults (the test PKI)" in r.out
    registry = line_of(r.out, "registry")
    assert str(Path(homes["XDG_DATA_HOME"]) / "esign") in registry  # the data folder, not cwd
    assert registry.endswith("# default (the user's data folder)")


def test_secrets_are_masked(tmp_path: Path, homes: dict[str, str]) -> None:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    config = write(
        tmp_path / "esign.toml",
        f"""
registry = "postgresql://esign:{SECRET}@db.internal:5432/esign"

[signing_keys.seal]
key = "pkcs11:token=ubeg;object=seal"
pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
password_env = "ESIGN_TEST_SEAL_PIN"
tsa = "https://tsa-user:{SECRET}@tsa.example.mn/tsa"

[[clients]]
name = "ubeg-backend"
api_key_sha256 = "{digest}"
keys = ["seal"]
""",
    )
    r = run_esign("config", "show", "--config", str(config),
                  env={**homes, "ESIGN_TEST_SEAL_PIN": "pin-" + SECRET})  # fmt: skip
    assert r.code == 0, r.err
    assert SECRET not in r.out and digest not in r.out
    assert "postgresql://esign:***@db.internal:5432/esign" in r.out
    assert 'password_env = "ESIGN_TEST_SEAL_PIN"' in r.out and "(set)" in r.out
    assert f'api_key_sha256 = "{digest[:8]}…"' in r.out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A setting below a table header belongs to that table: the bug this check is for.
        ("[limits]\nupload_workers = 2\nmax_upload_mb = 3\n",
         "unknown setting [limits] max_upload_mb (max_upload_mb is a top-level setting: move it "
         "above the first [table] header)"),
        ('base_ulr = "https://x.example.mn"\n', "unknown setting base_ulr"),
        ("[serve]\nport = 0\n", "[serve] port: Input should be greater than or equal to 1"),
        ('[signing_keys.a]\nkey = "a.p12"\nlevle = "B-T"\n',
         "unknown setting [signing_keys.a] levle"),
        ('[[clients]]\nname = "x"\napi_key_sha256 = "00"\n', "[[clients]] #1 api_key_sha256"),
        ('[[clients]]\nname = "x"\napi_key_sha256 = "' + "0" * 64 + '"\nkeys = ["nope"]\n',
         "client x is granted unknown keys ['nope']"),
        ('base_url = "verify.example.mn"\n', "is not an http(s) address"),
        ("base_url = \n", "is not valid TOML"),
    ],
)  # fmt: skip
def test_wrong_settings_stop_with_one_line_naming_them(
    tmp_path: Path, homes: dict[str, str], text: str, message: str
) -> None:
    config = write(tmp_path / "esign.toml", text)
    for command in (["config", "show"], ["serve", "--workers", "1"]):
        r = run_esign(*command, "--config", str(config), env=homes)
        assert r.code != 0 and r.out == "", (command, r.out)
        assert r.err.count("\n") == 1 and message in r.err, (command, r.err)
        assert str(config) in r.err and "Traceback" not in r.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('anchors = ["."]\nseal_certificate = ["."]\n', "unknown setting seal_certificate"),
        ('intermediates = ["."]\n', "anchors is required"),
    ],
)
def test_a_wrong_trust_file_is_refused_naming_the_key(
    tmp_path: Path, homes: dict[str, str], text: str, message: str
) -> None:
    trust = write(tmp_path / "trust.toml", text)
    r = run_esign("verify", "--trust", str(trust), str(REPO / "samples" / "certificate.pdf"),
                  env=homes)  # fmt: skip
    assert r.code != 0 and r.out == "", r.out
    assert r.err.count("\n") == 1 and f"{trust}: {message}" in r.err, r.err


def test_a_named_file_must_exist(tmp_path: Path, homes: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    r = run_esign("config", "show", env={**homes, "ESIGN_CONFIG": str(missing)})
    assert r.code != 0 and r.err.count("\n") == 1, r.err
    assert f"configuration file not found: {missing} (named by $ESIGN_CONFIG)" in r.err


def test_environment_value_errors_name_the_variable(homes: dict[str, str]) -> None:
    r = run_esign("config", "show", env={**homes, "ESIGN_PORT": "eighty"})
    assert r.code != 0 and r.err.count("\n") == 1, r.err
    assert "$ESIGN_PORT: [serve] port:" in r.err


def test_serve_finds_its_configuration_in_the_config_folder(
    pki: testpki.TestPki, services: PkiServices, tmp_path: Path, homes: dict[str, str]
) -> None:
    """No --config: the file in $XDG_CONFIG_HOME/esign decides the port, the registry (a
    relative sqlite path, beside the file), the signing keys and the trust material (a [trust]
    table in the same file)."""
    port = free_port()
    made, _ = write_config(pki, tmp_path / "made", port, "key-a-" + "1" * 8, "key-b-" + "2" * 8)
    lines = made.read_text(encoding="utf-8").splitlines()
    lines = [x for x in lines if not x.startswith(("registry =", "trust ="))]
    text = "\n".join(['registry = "sqlite:registry.sqlite3"', *lines])
    text += (
        f'\n[trust]\nanchors = ["{pki.trust_dir}"]\nintermediates = ["{pki.intermediates_dir}"]\n'
        f'seal_certificates = ["{pki.seals_dir}"]\n'
    )
    folder = Path(homes["XDG_CONFIG_HOME"]) / "esign"
    write(folder / "esign.toml", text + f"\n[serve]\nport = {port}\nshutdown_seconds = 5\n")
    env = {**os.environ, **homes, PASSWORD_ENV: testpki.P12_PASSWORD, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = None
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                body = r.json()
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.2)
        assert body is not None and body["status"] == "ready", body
        assert body["checks"]["signing_keys"]["detail"] == "seal-a, seal-b"
        seals = len(list(pki.seals_dir.iterdir()))
        assert body["checks"]["trust"]["detail"] == f"2 anchors, {seals} seal certificates"
        assert (folder / "registry.sqlite3").is_file()  # beside the file, not in the cwd
        assert not (tmp_path / "registry.sqlite3").exists()
    finally:
        stop_server(proc)


def test_revoke_on_a_server_host_uses_the_servers_registry(
    tmp_path: Path, homes: dict[str, str]
) -> None:
    """An operator's `esign revoke` without --registry reads the registry from the same file
    `esign serve` uses, not a SQLite file of their own in the data folder."""
    folder = Path(homes["XDG_CONFIG_HOME"]) / "esign"
    write(folder / "esign.toml", 'registry = "sqlite:server-registry.sqlite3"\n')
    r = run_esign("revoke", "AAAAA-BBBBB", "--reason", "test", env=homes, cwd=tmp_path)
    assert r.code != 0 and "AAAAA-BBBBB is not in the registry" in r.err, r.err
    assert (folder / "server-registry.sqlite3").is_file()
    assert not (Path(homes["XDG_DATA_HOME"]) / "esign" / "esign-registry.sqlite3").exists()
