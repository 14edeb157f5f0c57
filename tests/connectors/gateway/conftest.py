"""The gateway's store on a database of its own, on the session's real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.gateway.state import Gateway, GatewayConfig
from connectors.gateway.store import GatewayStore
from schemas.topics import Topics
from tests.connectors.fresh_db import fresh_database

#: every party holds a token of this generation (revocation is tested with real tokens)
GENERATION = "g1"


@pytest.fixture
async def store_url(database_url: str) -> AsyncIterator[str]:
    async with fresh_database(database_url) as url:
        yield url


@pytest.fixture
async def gateway(store_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway that has not started, with its store open (every party current)."""
    gateway = Gateway(GatewayConfig(bootstrap="", topics=Topics(prefix="t"), data_dir=tmp_path))
    gateway._store = await GatewayStore.connect(store_url, lambda kind, party: GENERATION)
    try:
        yield gateway
    finally:
        await gateway.store.close()


@pytest.fixture(scope="module")
async def gateway_database_url(database_url: str) -> AsyncIterator[str]:
    """A database of its own for a module's `refnet gateway` process."""
    async with fresh_database(database_url) as url:
        yield url
