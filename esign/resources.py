"""Files that ship inside the packages (templates, test-PKI description, sample data, HTML).

Read through importlib.resources so an installed wheel finds them; nothing here looks at the
repository layout (``samples/`` and ``keys/`` only link to these files for people and tests).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(package: str, *parts: str) -> Path:
    """A file or folder shipped in ``package``, as a filesystem path (packages install unzipped)."""
    ref = resources.files(package).joinpath(*parts)
    if not isinstance(ref, Path):
        raise RuntimeError(f"{package} must be installed as files, not zipped: {ref}")
    return ref


def builtin_templates() -> Path:
    """The certificate templates shipped with esign (``esign/templates/*.toml``)."""
    return resource_path("esign", "templates")


def sample_data(name: str) -> Path:
    """Sample citizen data for the built-in template ``name`` (demo and web form example)."""
    return resource_path("esign", "data", "sample-data", f"{name}.json")


def sample_pdf() -> Path:
    """A plain one-page PDF made by another tool (fpdf2), for the demo to sign at every level;
    tests and benchmarks sign the same bytes (``samples/certificate.pdf`` links here)."""
    return resource_path("esign", "data", "certificate.pdf")


def test_pki_spec() -> Path:
    """The declarative test-PKI description (certomancer YAML)."""
    return resource_path("esign", "data", "test-pki.yml")
