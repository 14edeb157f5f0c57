"""The gateway's Kafka side: each party's producer and a current view of its inbox topic.

A clinic's view follows its updates topic (``referral.updated``: the latest per
referral); an organization's follows its referrals topic (``referral.offered``
and ``referral.withdrawn`` per network referral id, and the network's answers to
its own updates: ``referral.status-recorded`` and ``message.refused``, so its
Tasks show the network's status); both keep the
``encounter.alerted`` events they read (``alerts``, by event id). A facility's
view follows its updates topic (the network's answers, nothing kept yet) and
publishes to its submissions topic.

No view holds a Kafka client: the gateway's one :class:`~.connections.InboxReader`
reads every view's topic from the beginning without a consumer group, as the
gateway, and hands each record to its view, which is ready once it has caught up
with the end offsets seen when its topic was assigned. Writes go through
:class:`~.connections.Producers` as the party: on a secured broker with the
party's own SCRAM credentials (its credentials file), so the broker's ACLs hold
for the gateway's writes as they do for the party's own clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from connectors.fhir.screening_reads import screening_record
from connectors.gateway.connections import InboxReader, Producers
from connectors.gateway.tokens import PartyRef
from connectors.kafka.auth import KafkaAuth, KafkaAuthError
from schemas.events import (
    EncounterAlerted,
    Event,
    MessageRefused,
    ReferralStatusRecorded,
    to_bytes,
)
from schemas.topics import Topics

log = logging.getLogger("refnet.gateway.views")

Listener = Callable[[PartyRef, dict[str, Any]], Awaitable[None]]

#: the most screenings a clinic's view keeps for reading back (the newest)
MAX_SCREENINGS = 20_000

SKIPPED = Counter(
    "refnet_gateway_skipped_messages",
    "Messages a party's view could not use (not an event, or an invalid alert), by party kind",
    ["party_kind"],
)


class PartyView:
    """One party's inbox view, and its way to publish as the party."""

    def __init__(
        self,
        party: PartyRef,
        topics: Topics,
        bootstrap: str,
        auth: KafkaAuth,
        listener: Listener | None = None,
        *,
        reader: InboxReader | None = None,
        producers: Producers | None = None,
    ) -> None:
        self.party = party
        #: True once the party is no longer provisioned: the reader dropped the view
        self.stopped = False
        self.topics = topics
        self.bootstrap = bootstrap
        self.auth = auth
        self.listener = listener
        if party.kind == "clinic":
            self.inbox = topics.clinic_updates(party.id)
            self.outbox = topics.clinic_submissions(party.id)
        elif party.kind == "facility":
            self.inbox = topics.facility_updates(party.id)
            self.outbox = topics.facility_submissions(party.id)
        else:
            self.inbox = topics.org_referrals(party.id)
            self.outbox = topics.org_updates(party.id)
        #: clinic: referral_id -> {"update", "authored_on"}; org: referral_id ->
        #: {"offer", "withdrawn", "modified"}
        self.records: dict[str, dict[str, Any]] = {}
        #: encounter.alerted events by event id, in the order read
        self.alerts: dict[str, dict[str, Any]] = {}
        #: clinic: screening_id -> what the gateway keeps of a screening it sent or the
        #: network answered (ids, instrument, time: connectors.fhir.screening_reads)
        self.screenings: dict[str, dict[str, Any]] = {}
        self.ready = asyncio.Event()
        self.changed = asyncio.Condition()
        self.reader = reader
        self.producers = producers

    def start(self) -> None:
        """Follow the party's inbox (on the gateway's shared reader)."""
        if self.reader is None:
            raise RuntimeError(f"no reader for the view of {self.party.label}")
        self.stopped = False
        self.reader.add(self)

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.remove(self)

    def reset(self) -> None:
        """Forget what was read: the reader reads the inbox again from the beginning."""
        self.records.clear()
        self.alerts.clear()

    async def wait_ready(self, within: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), within)
        except TimeoutError:
            return False
        return True

    def keep_screening(self, kept: dict[str, Any]) -> None:
        """Keep a screening for reading back (the newest :data:`MAX_SCREENINGS`)."""
        self.screenings.pop(kept["screening_id"], None)
        self.screenings[kept["screening_id"]] = kept
        while len(self.screenings) > MAX_SCREENINGS:
            del self.screenings[next(iter(self.screenings))]

    async def publish(self, key: str, event: Event) -> None:
        """Send ``event`` to the party's outbox, as the party."""
        value = to_bytes(event)
        await self._producers().send(self.auth, self.outbox, key.encode(), value, self.bootstrap)

    async def publish_all(self, events: Sequence[tuple[str, Event]]) -> None:
        """Send ``events`` to the party's outbox in one Kafka transaction: all or none."""
        records = [(key.encode(), to_bytes(event)) for key, event in events]
        producers = self._producers()
        await producers.send_all(self.party, self.auth, self.outbox, records, self.bootstrap)

    def _producers(self) -> Producers:
        if self.producers is None:
            raise RuntimeError(f"no producers for {self.party.label}")
        return self.producers

    # ------------------------------------------------------------ the view
    async def _apply(self, value: bytes | None) -> None:
        try:
            message = json.loads(value or b"")
            if not isinstance(message, dict):
                return
            kind = message.get("event_type")
            if kind == "screening.answered" and self.party.kind == "clinic":
                self.keep_screening(screening_record(message))
                return  # read back, never notified
            if kind not in _FOLLOWED.get(self.party.kind, frozenset()):
                return  # e.g. a clinic's message.refused: not kept
            if kind == "encounter.alerted":
                message = EncounterAlerted.model_validate(message).model_dump(mode="json")
                self.alerts[str(message["event_id"])] = message
            elif not self._apply_referral(kind, message["referral_id"], message):
                return
        except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
            log.warning("view of %s: skipped a message that is not an event", self.party.label)
            SKIPPED.labels(self.party.kind).inc()
            return
        if self.listener is not None:
            try:
                await self.listener(self.party, message)
            except Exception:
                log.exception("gateway listener failed for %s", self.party.label)

    def _apply_referral(self, kind: str, rid: str, message: dict[str, Any]) -> bool:
        """Keep a referral event in ``records``; True if the party's webhooks and
        Subscriptions hear of it (the network's answers to the organization's own
        updates change its Task but are not pushed: it hears them in the PATCH's answer).

        An organization's record holds the offer, its withdrawal, the network's last
        confirmation of the organization's status (``recorded``, from
        ``referral.status-recorded``) and the last refusal of its updates since
        (``refused``, from ``message.refused``): the Task shows the network's truth."""
        if self.party.kind == "clinic":
            update = self.records.setdefault(rid, {"authored_on": message.get("occurred_at")})
            update["update"] = message
            return True
        if kind == "referral.offered":
            self.records.setdefault(rid, {}).update(
                offer=message,
                withdrawn=None,
                recorded=None,
                refused=None,
                modified=message.get("occurred_at"),
            )
            return True
        record = self.records.get(rid)
        if record is None:
            return False
        if kind == "referral.withdrawn":
            record.update(
                withdrawn=message.get("reason") or "withdrawn", modified=message.get("occurred_at")
            )
            return True
        if kind == "referral.status-recorded":
            recorded = ReferralStatusRecorded.model_validate(message)
            record.update(
                recorded=recorded.model_dump(mode="json"),
                refused=None,
                modified=recorded.occurred_at.isoformat(),
            )
        elif kind == "message.refused":
            refused = MessageRefused.model_validate(message)
            record["refused"] = {
                "event_id": str(refused.refused_event_id) if refused.refused_event_id else None,
                "kind": refused.error.kind.value,
                "rule": refused.error.rule,
                "offer": refused.referral_state.offer if refused.referral_state else None,
                "at": refused.occurred_at.isoformat(),
            }
        return False


#: The event types a view follows on each kind of party's inbox; others are ignored.
_FOLLOWED = {
    "clinic": frozenset({"referral.updated", "encounter.alerted"}),
    "org": frozenset(
        {
            "referral.offered",
            "referral.withdrawn",
            "referral.status-recorded",
            "message.refused",
            "encounter.alerted",
        }
    ),
    "facility": frozenset[str](),
}


def party_auth(data_dir: Path, party: PartyRef, default: KafkaAuth) -> tuple[str | None, KafkaAuth]:
    """The party's own Kafka login (its credentials file) if it has one, else ``default``."""
    path = data_dir / "credentials" / f"{party.kind}-{party.id}.json"
    if not path.exists():
        return None, default
    try:
        return KafkaAuth.from_file(path)
    except KafkaAuthError:
        log.warning("credentials of %s cannot be read; using the gateway's own", party.label)
        return None, default


__all__ = ["SKIPPED", "Listener", "PartyView", "party_auth"]
