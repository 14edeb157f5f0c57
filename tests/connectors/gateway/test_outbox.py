"""The outbox keeps no patient data past need: a body leaves on delivery, and an
undelivered one at the topics' retention (kept: ids, attempts, times)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer
from connectors.gateway.state import Gateway, GatewayConfig
from connectors.gateway.store import OUTBOX_RETENTION, GatewayStore, Webhook
from connectors.observability.metrics import WEBHOOK_DELIVERIES
from connectors.retry import Backoff
from schemas.topics import Topics
from tests.connectors.gateway.receivers import Receiver

OFFER = b'{"data": {"patient": {"given_name": "Colin", "phone": "+17185550100"}}}'
DAY = 86400.0


def _gateway(tmp_path: Path) -> Gateway:
    gateway = Gateway(GatewayConfig(bootstrap="", topics=Topics(prefix="t"), data_dir=tmp_path))
    gateway._store = GatewayStore(tmp_path / "gateway.sqlite3")
    return gateway


def _hook(gateway: Gateway, url: str) -> Webhook:
    hook = Webhook("hook-1", "org-a", url, "whsec_" + "A" * 44, time.time())
    gateway.store.add_webhook(hook)
    return hook


def _bodies(path: Path) -> list[bytes]:
    db = sqlite3.connect(path)
    try:
        return [bytes(row[0]) for row in db.execute("SELECT body FROM deliveries")]
    finally:
        db.close()


async def test_a_delivered_body_leaves_the_outbox_and_the_file(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    deliverer = Deliverer(
        gateway.store,
        gateway._target,
        retries=Backoff(first=30.0, cap=60.0),
        interval=0.05,
        policy=Policy(allow_private=True),
    )
    async with Receiver() as receiver:
        hook = _hook(gateway, receiver.url())
        gateway.store.enqueue("webhook", hook.id, "e1", OFFER)
        task = asyncio.create_task(deliverer.run())
        try:
            deadline = time.monotonic() + 20
            while not gateway.store.deliveries(hook.id)[0]["delivered"]:
                assert time.monotonic() < deadline, "never delivered"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [body for _, body in receiver.requests] == [OFFER]
    assert gateway.store.deliveries(hook.id)[0]["event_id"] == "e1"
    assert _bodies(gateway.store.path) == [b""]
    assert not gateway.store.enqueue("webhook", hook.id, "e1", OFFER)  # still deduplicated
    gateway.store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.sqlite3*"))
    assert [p.name for p in tmp_path.glob("gateway.sqlite3*")] == ["gateway.sqlite3"]
    assert b"Colin" not in on_disk and b"5550100" not in on_disk


async def test_an_undelivered_body_expires_at_the_topics_retention(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    store = gateway.store
    store.enqueue("webhook", "hook-old", "e-old", OFFER)
    store.enqueue("webhook", "hook-new", "e-new", OFFER)
    db = sqlite3.connect(store.path)
    with db:
        db.execute(
            "UPDATE deliveries SET created_at = ? WHERE event_id = 'e-old'",
            (time.time() - OUTBOX_RETENTION - DAY,),
        )
    db.close()
    assert OUTBOX_RETENTION == 30 * DAY
    deliverer = Deliverer(store, gateway._target, policy=Policy(allow_private=True))
    before = WEBHOOK_DELIVERIES.labels("expired")._value.get()
    assert await deliverer.expire() == 1
    assert WEBHOOK_DELIVERIES.labels("expired")._value.get() == before + 1
    (old,) = store.deliveries("hook-old")
    assert old["expired"] and old["last_error"] == "expired" and not old["delivered"]
    assert [d.event_id for d in store.due(time.time() + DAY)] == ["e-new"]
    assert sorted(_bodies(store.path)) == [b"", OFFER]
    assert await deliverer.expire() == 0


def test_an_older_outbox_loses_its_delivered_bodies_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
            "target_id TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, delivered_at REAL, "
            "last_error TEXT, UNIQUE (target_id, event_id))"
        )
        db.execute(
            "INSERT INTO deliveries (kind, target_id, event_id, body, next_at, delivered_at) "
            "VALUES ('webhook', 'h', 'e1', ?, 1.0, 2.0), ('webhook', 'h', 'e2', ?, 1.0, NULL)",
            (OFFER, OFFER),
        )
    db.close()
    store = GatewayStore(path)
    assert _bodies(path) == [b"", OFFER]
    assert store.expire(time.time()) == 1  # e2 waited since 1970: past retention
    store.close()
