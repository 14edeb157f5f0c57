"""``refnet mllp``: take HL7 v2 ADT over MLLP from provisioned facilities."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.mllp import ListenerConfig, serve
from deploy.cli.common import Subparsers
from deploy.environment import CliError, resolve_kafka, topics_for
from deploy.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS (REFNET_MLLP_TLS_*), mutual when a client CA is given."""
    cert, key, client_ca = (
        settings.mllp_tls_cert,
        settings.mllp_tls_key,
        settings.mllp_tls_client_ca,
    )
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None or key is None:
        raise CliError("REFNET_MLLP_TLS_CERT and REFNET_MLLP_TLS_KEY go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"REFNET_MLLP_TLS_*: {exc}") from None
    return context


def config_from(
    settings: Settings, host: str | None = None, port: int | None = None
) -> ListenerConfig:
    """The listener's configuration from the settings (``host``/``port`` override them)."""
    try:
        ZoneInfo(settings.mllp_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(
            "REFNET_MLLP_TIME_ZONE: not an IANA time zone (for example America/Chicago)"
        ) from None
    return ListenerConfig(
        topics=topics_for(settings),
        host=host if host is not None else settings.mllp_host,
        port=port if port is not None else settings.mllp_port,
        max_message_bytes=settings.mllp_max_message_bytes,
        read_timeout=settings.mllp_read_timeout,
        max_connections=settings.mllp_max_connections,
        max_connections_per_peer=settings.mllp_max_connections_per_peer,
        time_zone=settings.mllp_time_zone,
        tls=tls_context(settings),
    )


def cmd_mllp(settings: Settings, args: argparse.Namespace) -> int:
    level = getattr(logging, str(settings.log_level).upper(), logging.INFO)
    logging.getLogger("refnet").setLevel(level)
    config = config_from(settings, args.host, args.port)
    access = resolve_kafka(settings)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.http_host)

    def listening(host: str, port: int) -> None:
        scheme = "mllp+tls" if config.tls else "mllp"
        print(f"refnet mllp: listening on {scheme}://{host}:{port}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(
            config,
            access.bootstrap,
            stop,
            auth=access.auth,
            facility_cache=settings.mllp_facility_cache,
            credentials_dir=settings.data_dir / "credentials",
            on_listening=listening,
        )

    try:
        asyncio.run(main())
    except OSError as exc:
        raise CliError(f"refnet mllp: cannot listen or reach Kafka: {exc}") from None
    print("refnet mllp: stopped", file=sys.stderr, flush=True)
    return 0


def register(sub: Subparsers) -> None:
    """Add ``mllp`` to the ``refnet`` parser."""
    parser = sub.add_parser(
        "mllp",
        help="take HL7 v2 ADT over MLLP from provisioned facilities (REFNET_MLLP_*)",
    )
    parser.add_argument("--host", default=None, help="address to listen on (REFNET_MLLP_HOST)")
    parser.add_argument(
        "--port", type=int, default=None, help="port to listen on, 0 for any (REFNET_MLLP_PORT)"
    )
    parser.set_defaults(func=cmd_mllp)
