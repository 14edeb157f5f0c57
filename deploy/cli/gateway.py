"""``refnet gateway``: serve the FHIR API, webhooks and the web inbox (uvicorn).

How it serves (its configuration and the limits it holds against slow and
greedy clients) is in :mod:`deploy.gateway_server`, imported when the command
runs: the other commands (a worker among them) do not load the gateway.
"""

from __future__ import annotations

import argparse
import logging

from deploy.cli.common import Subparsers
from deploy.settings import Settings


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from connectors.gateway.app import create_app
    from deploy.gateway_server import config_from, server_options

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
        **server_options(settings),
    )
    return 0


def register(sub: Subparsers) -> None:
    """Add ``gateway`` to the ``refnet`` parser."""
    parser = sub.add_parser(
        "gateway",
        help="serve the FHIR API, webhooks and web inbox (REFNET_GATEWAY_PORT, default 8080)",
    )
    parser.set_defaults(func=cmd_gateway)
