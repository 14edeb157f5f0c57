"""How ``refnet gateway`` serves: its configuration and uvicorn's limits.

The server holds its doors against slow and greedy clients: a client has
``REFNET_GATEWAY_READ_TIMEOUT`` seconds to send a whole request, headers and body
(:class:`DeadlineH11Protocol`: one header line at a time does not hold a
connection open), an idle keep-alive connection is closed after 5 s, headers are
at most 16 KiB, bodies at most 1 MB (:data:`connectors.gateway.rest.MAX_BODY`), and
at most ``REFNET_GATEWAY_MAX_CONNECTIONS`` connections or requests are served at
once (more are answered 503).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from connectors.gateway.app import GatewayConfig
from connectors.gateway.egress import Policy
from deploy.environment import CliError, database_for, resolve_kafka, topics_for
from deploy.settings import Settings

#: an idle keep-alive connection's life (seconds)
KEEP_ALIVE = 5
#: the largest request head (request line and headers) h11 buffers
MAX_HEAD = 16 * 1024


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline to receive each whole request."""

    read_timeout: float = 15.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        handle = getattr(self, "_read_deadline", None)
        if handle is not None:
            handle.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            return
        self.logger.warning("closed a connection that sent no whole request in time")
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_class(read_timeout: float) -> type[DeadlineH11Protocol]:
    """:class:`DeadlineH11Protocol` with this deadline (seconds)."""
    return type("GatewayH11Protocol", (DeadlineH11Protocol,), {"read_timeout": read_timeout})


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's limits for the gateway (keyword arguments of ``uvicorn.Config``)."""
    return {
        "http": protocol_class(settings.gateway_read_timeout),
        "timeout_keep_alive": KEEP_ALIVE,
        "h11_max_incomplete_event_size": MAX_HEAD,
        "limit_concurrency": settings.gateway_max_connections,
        "ws": "none",
    }


def config_from(settings: Settings) -> GatewayConfig:
    """The gateway's configuration from :class:`deploy.settings.Settings`.

    The state goes to the PostgreSQL the ledger uses: ``REFNET_DATABASE_URL``, else the
    embedded server if it runs (``refnet dev up``); without one the gateway does not
    start. The bootstrap servers come as for the workers (``REFNET_KAFKA_BOOTSTRAP``, a
    credentials file, or the embedded broker); each party then connects with its
    own credentials file when it has one (secure mode), else with the workers'
    settings (plain mode).
    """
    access = resolve_kafka(settings)
    database = settings.database_url or database_for(settings).url()
    if database is None:
        raise CliError(
            "the gateway keeps its state in PostgreSQL (the ledger's server): set "
            "REFNET_DATABASE_URL=postgresql://..., or run 'refnet dev up' for the embedded one"
        )
    if settings.gateway_delivery_lease <= settings.gateway_webhook_deadline:
        raise CliError(
            "REFNET_GATEWAY_DELIVERY_LEASE must be longer than REFNET_GATEWAY_WEBHOOK_DEADLINE: "
            "a lease that passes mid-attempt lets another replica send the delivery again"
        )
    base = settings.gateway_base_url or f"http://{settings.http_host}:{settings.gateway_port}"
    return GatewayConfig(
        bootstrap=access.bootstrap,
        topics=topics_for(settings),
        data_dir=settings.data_dir,
        auth=access.auth,
        allow_http_webhooks=settings.gateway_dev_http_webhooks,
        retry_base=settings.gateway_webhook_retry_base,
        webhook_ca=str(settings.gateway_webhook_ca) if settings.gateway_webhook_ca else None,
        base_url=base.rstrip("/"),
        database_url=database,
        delivery_lease=settings.gateway_delivery_lease,
        confirm_wait=settings.gateway_confirm_wait,
        replica=settings.gateway_replica or f"{socket.gethostname()}-{settings.gateway_port}",
        producer_capacity=settings.gateway_producers,
        producer_idle=settings.gateway_producer_idle,
        policy=Policy(
            allow_private=settings.gateway_allow_private_webhooks,
            attempt_deadline=settings.gateway_webhook_deadline,
            concurrency=settings.gateway_webhook_concurrency,
            max_webhooks=settings.gateway_max_webhooks,
            max_subscriptions=settings.gateway_max_subscriptions,
            max_subscription_bytes=settings.gateway_max_subscription_bytes,
        ),
    )


__all__ = ["DeadlineH11Protocol", "config_from", "protocol_class", "server_options"]
