"""Mutual TLS: a facility is who its client certificate says (real broker)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import hl7
import pytest
from hl7.mllp import open_hl7_connection

from connectors.mllp import ListenerConfig
from deploy.cli.mllp import tls_context
from deploy.settings import Settings
from schemas.topics import Topics
from tests.connectors.hl7.adt_messages import adt
from tests.connectors.mllp.certs import client_certificate, local_ca
from tests.connectors.mllp.running import listening, provision

pytestmark = pytest.mark.integration


def client_context(ca: Path, certificate: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if certificate is not None:
        context.load_cert_chain(certificate)
    return context


async def send_tls(host: str, port: int, context: ssl.SSLContext, payload: bytes) -> hl7.Message:
    reader, writer = await open_hl7_connection(host, port, ssl=context)
    try:
        writer.writemessage(hl7.parse(payload.decode()))
        await writer.drain()
        return await asyncio.wait_for(reader.readmessage(), 30)
    finally:
        writer.close()


async def test_the_client_certificate_names_the_facility(
    kafka_bootstrap: str, topics: Topics, unique: str, tmp_path: Path
) -> None:
    facility, other = f"mercy-{unique}", f"other-{unique}"
    provision(kafka_bootstrap, topics, facility, other)
    files = local_ca(tmp_path / "ca")
    settings = Settings(
        mllp_tls_cert=files.broker, mllp_tls_key=files.broker, mllp_tls_client_ca=files.ca_cert
    )
    config = ListenerConfig(topics=topics, tls=tls_context(settings))
    own = client_context(files.ca_cert, client_certificate(files, facility))
    async with listening(kafka_bootstrap, config) as running:
        ok = await send_tls(running.host, running.port, own, adt(facility=facility))
        assert ok["MSA.F1"] == "AA"
        # a facility's certificate does not let it speak for another one
        posing = await send_tls(running.host, running.port, own, adt(facility=other))
        assert posing["MSA.F1"] == "AR"
        assert "CN" in posing["MSA.F3"]
        # no client certificate: no connection
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await send_tls(
                running.host,
                running.port,
                client_context(files.ca_cert, None),
                adt(facility=facility),
            )
