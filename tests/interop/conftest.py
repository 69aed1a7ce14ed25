"""Fixtures for the interop tests: the session-wide matrix that every test adds its rows to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.matrix import Matrix


@pytest.fixture(scope="session")
def matrix() -> Iterator[Matrix]:
    """Collects one row per signed file; written to test-artifacts/interop-matrix.md at the end."""
    m = Matrix()
    yield m
    if m.rows:
        m.write()
