"""``refnet gateway``: serve the FHIR API, webhooks and the web inbox (uvicorn)."""

from __future__ import annotations

import argparse
import logging

from connectors.gateway.app import GatewayConfig, create_app
from deploy.cli.common import Subparsers
from deploy.environment import resolve_kafka, topics_for
from deploy.settings import Settings


def config_from(settings: Settings) -> GatewayConfig:
    """The gateway's configuration from :class:`deploy.settings.Settings`.

    The bootstrap servers come as for the workers (``REFNET_KAFKA_BOOTSTRAP``, a
    credentials file, or the embedded broker); each party then connects with its
    own credentials file when it has one (secure mode), else with the workers'
    settings (plain mode).
    """
    access = resolve_kafka(settings)
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
    )


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    level = getattr(logging, str(settings.log_level).upper(), logging.INFO)
    logging.getLogger("refnet").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(config_from(settings))
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.gateway_port,
        log_level=str(settings.log_level).lower(),
        access_log=False,  # the gateway's own access log names routes, never paths or bodies
        lifespan="on",
    )
    return 0


def register(sub: Subparsers) -> None:
    """Add ``gateway`` to the ``refnet`` parser."""
    parser = sub.add_parser(
        "gateway",
        help="serve the FHIR API, webhooks and web inbox (REFNET_GATEWAY_PORT, default 8080)",
    )
    parser.set_defaults(func=cmd_gateway)
