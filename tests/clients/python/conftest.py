"""Fixtures for the psycopg suite: the proxy and direct URLs from the
environment (set by crates/pgpulse-proxy/tests/client_libraries.rs)."""

import os
import uuid

import psycopg
import pytest


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run this suite through "
            "`cargo test -p pgpulse-proxy --test client_libraries`"
        )
    return value


@pytest.fixture(scope="session")
def proxy_url():
    """pgpulse in transaction mode with fewer servers than the tests' clients."""
    return _env("PGPULSE_URL")


@pytest.fixture(scope="session")
def direct_url():
    """The same database straight on PostgreSQL, to check what really happened."""
    return _env("PGPULSE_DIRECT_URL")


@pytest.fixture
def direct(direct_url):
    with psycopg.connect(direct_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def name():
    """A unique identifier for this test's tables, channels and schemas."""
    return "py_" + uuid.uuid4().hex[:10]
