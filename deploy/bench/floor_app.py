"""The floors of ``refnet bench``: bare Faust apps of refnet's topology, with
refnet's own Faust and producer settings (:func:`streams.runtime.faust_app.new_app`),
and nothing of refnet's own code in the way (no validation, decisions, outbox,
offset guard or metrics).

Run as a process of its own (``python -m deploy.bench.floor_app BOOTSTRAP PREFIX
TOPOLOGY DATA_DIR``), reading ``PREFIX.in`` and writing one message per input to
``PREFIX.out``:

- ``rekey-onehop``: refnet's topology for a screening. A stateless re-key done
  as refnet's ingress does it, by a plain aiokafka consumer group in the
  worker's process (batches of what was fetched, produced, acknowledged,
  committed), then one agent that updates two changelogged tables (the patient
  and the referral) and sends the offer to the organization.
- ``pipeline``: refnet's topology before a screening's referral was decided in
  the patient's agent (and still that of a clinician's referral request): the
  same re-key, then two agents, each updating a changelogged table and sending
  one message on (the patient agent's ``open`` to the referral agent; the
  referral agent's offer to the organization).
- ``pipeline-faust``: the same with the re-key as a third Faust agent (the
  floor before: one Faust hop more than refnet pays).
- ``onehop``: one agent that updates a changelogged table and sends one message.

Each agent is written plainly: it sets its table's key (Faust's buffered
changelog write) and ``await``s ``topic.send()``, which waits only for the
message's hand-over to the producer, never for the broker's acknowledgement
(Faust's ``publish_message(wait=False)``); Faust's commit flushes the producer.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import faust

from connectors.kafka import clients
from streams.runtime.config import NetworkConfig
from streams.runtime.faust_app import new_app

TOPOLOGIES = ("rekey-onehop", "pipeline", "pipeline-faust", "onehop")


async def plain_rekey(bootstrap: str, source: str, target: str, group: str) -> None:
    """Forward ``source`` to ``target`` keyed by the patient, as refnet's ingress does:
    a consumer group of its own, each fetched batch produced, acknowledged, then
    committed."""
    consumer = clients.consumer(bootstrap, source, group_id=group, auto_offset_reset="earliest")
    producer = clients.producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            futures = []
            for records in batches.values():
                for r in records:
                    document = json.loads(r.value)
                    value = json.dumps(document).encode()
                    futures.append(await producer.send(target, value, key=b"bench-clinic:" + r.key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def build(bootstrap: str, prefix: str, topology: str, data_dir: Path) -> faust.App:
    if topology not in TOPOLOGIES:
        raise SystemExit(f"unknown topology {topology!r}: one of {', '.join(TOPOLOGIES)}")
    config = NetworkConfig(app_id=f"{prefix}-{topology}", topic_prefix=prefix, data_dir=data_dir)
    app = new_app(config, bootstrap)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw"}
    source = app.topic(f"{prefix}.in", **raw)
    sink = app.topic(f"{prefix}.out", **raw)
    if topology == "onehop":
        table = app.Table("onehop", default=None, value_type=str, partitions=config.partitions)

        @app.agent(source)
        async def onehop(stream: Any) -> None:
            async for key, value in stream.items():
                document = json.loads(value)
                table[key] = document["screening_id"]
                await sink.send(key=key, value=json.dumps(document).encode())

        return app

    patients_topic = app.topic(f"{prefix}.patients", internal=True, **raw)
    referrals_topic = app.topic(f"{prefix}.referrals", internal=True, **raw)
    patients = app.Table("patients", default=None, value_type=str, partitions=config.partitions)
    referrals = app.Table("referrals", default=None, value_type=str, partitions=config.partitions)

    if topology in ("pipeline", "rekey-onehop"):

        async def rekey_plainly() -> None:
            await plain_rekey(bootstrap, source.get_topic_name(), f"{prefix}.patients", prefix)

        app.task(rekey_plainly)
    else:

        @app.agent(source)
        async def rekey(stream: Any) -> None:
            async for key, value in stream.items():
                document = json.loads(value)
                await patients_topic.send(
                    key=b"bench-clinic:" + key, value=json.dumps(document).encode()
                )

    if topology == "rekey-onehop":

        @app.agent(patients_topic)
        async def patient_and_referral(stream: Any) -> None:
            async for key, value in stream.items():
                document = json.loads(value)
                referral = f"{document['screening_id']}.food-insecurity"
                patients[key] = referral
                referrals[referral] = "offered"
                offer = {"event_type": "referral.offered", "referral_id": referral}
                await sink.send(key=referral.encode(), value=json.dumps(offer).encode())

        return app

    @app.agent(patients_topic)
    async def patient(stream: Any) -> None:
        async for key, value in stream.items():
            document = json.loads(value)
            referral = f"{document['screening_id']}.food-insecurity"
            patients[key] = referral
            command = {"kind": "open", "referral_id": referral, "screening": document}
            await referrals_topic.send(key=referral.encode(), value=json.dumps(command).encode())

    @app.agent(referrals_topic)
    async def referral(stream: Any) -> None:
        async for key, value in stream.items():
            command = json.loads(value)
            referrals[key] = "offered"
            offer = {"event_type": "referral.offered", "referral_id": command["referral_id"]}
            await sink.send(key=key, value=json.dumps(offer).encode())

    return app


def main(argv: list[str]) -> None:
    bootstrap, prefix, topology, data_dir = argv
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    app = build(bootstrap, prefix, topology, Path(data_dir))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
