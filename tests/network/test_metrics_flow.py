"""Operators scrape the worker's Prometheus metrics."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from deploy.local.runtime import free_port
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("refnet_") and " " in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_the_worker_counts_commands_outputs_and_dead_letters(network: Network) -> None:
    t = network.topics
    network.metrics_port = free_port()
    await network.provision(["mott-haven"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-1", b.requested("ref-1"))
    await network.publish(t.org_updates("bronx-pantry"), "x", b"not json")
    await network.read(t.org_referrals("bronx-pantry"), count=1)
    await network.read(t.deadletter, count=1)
    samples: dict[str, float] = {}
    for _ in range(50):
        samples = await asyncio.to_thread(_scrape, network.metrics_port)
        if samples.get('refnet_ingress_messages_total{routed_as="deadletter"}'):
            break
        await asyncio.sleep(0.2)
    assert samples['refnet_commands_total{agent="patients",kind="submission"}'] == 1
    assert samples['refnet_commands_total{agent="referrals",kind="open"}'] == 1
    assert samples['refnet_outputs_total{event_type="referral.offered"}'] == 1
    assert samples['refnet_ingress_messages_total{routed_as="deadletter"}'] == 1
