"""Revocation reaches the gateway's state: what a party registered through the gateway
(webhooks, Subscriptions, pending deliveries, statuses, capacity, Encounters) goes when
its token is revoked or replaced.

Every row the gateway stores carries the generation of the token its party held
(:mod:`connectors.gateway.store`). The gateways already ignore rows of an older
generation and purge them within a second of the token registry changing; this
purges them at once from the provisioning command, when the database is reachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.gateway.store import GatewayStore
from connectors.gateway.tokens import TokenStore


def purge_gateway_state(data_dir: Path, database_url: str) -> dict[str, int]:
    """Remove every gateway row whose party's current token is not the one it was made
    under; how many rows, per table."""
    tokens = TokenStore(data_dir)

    async def run() -> dict[str, int]:
        store = await GatewayStore.connect(database_url, tokens.generation, size=1)
        try:
            return await store.purge(tokens.generations())
        finally:
            await store.close()

    return asyncio.run(run())


__all__ = ["purge_gateway_state"]
