"""FHIR Subscriptions (R4 backport): the topic parties subscribe to and the notifications sent.

A party subscribes to :data:`TASK_TOPIC` with a rest-hook channel and id-only
payloads; each event on its referrals then arrives as a ``history`` Bundle
holding a SubscriptionStatus (``Parameters``) and the changed Task's address.
A new Subscription first gets a ``handshake`` (:func:`handshake`): it is
``requested`` until its endpoint answers that with a 2xx, then ``active``
(``error`` otherwise).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

#: the SubscriptionTopic a party subscribes to (R4 backport: Subscription.criteria)
TASK_TOPIC: Final = "urn:refnet:SubscriptionTopic:referral-task"
BACKPORT: Final = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"


def _status_parameters(
    sub_id: str, kind: str, number: int, status: str = "active"
) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [f"{BACKPORT}/backport-subscription-status-r4"]},
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": f"Subscription/{sub_id}"}},
            {"name": "topic", "valueCanonical": TASK_TOPIC},
            {"name": "status", "valueCode": status},
            {"name": "type", "valueCode": kind},
            {"name": "events-since-subscription-start", "valueString": str(number)},
        ],
    }


def _bundle(sub_id: str, status: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    """A backport notification Bundle: the SubscriptionStatus first, then ``more``."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [f"{BACKPORT}/backport-subscription-notification-r4"]},
        "type": "history",
        "timestamp": datetime.now(UTC).isoformat(),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{status['id']}",
                "resource": status,
                "request": {"method": "GET", "url": f"Subscription/{sub_id}/$status"},
                "response": {"status": "200"},
            },
            *more,
        ],
    }


def handshake(sub_id: str) -> dict[str, Any]:
    """The ``handshake`` notification a new Subscription's endpoint gets (R4 backport)."""
    return _bundle(sub_id, _status_parameters(sub_id, "handshake", 0, "requested"))


def _subscription_status(
    sub_id: str, number: int, occurred_at: object, focus: str
) -> dict[str, Any]:
    status = _status_parameters(sub_id, "event-notification", number)
    status["parameter"].append(
        {
            "name": "notification-event",
            "part": [
                {"name": "event-number", "valueString": str(number)},
                {"name": "timestamp", "valueInstant": occurred_at},
                {"name": "focus", "valueReference": {"reference": focus}},
            ],
        }
    )
    return status


def notification(
    sub_id: str,
    number: int,
    occurred_at: object,
    base_url: str,
    task_id: str,
    resource_type: str = "Task",
) -> dict[str, Any]:
    """The id-only notification of event ``number`` of a subscription, on Task ``task_id``
    (or on another resource: ``resource_type``, e.g. an alert's Communication)."""
    focus = f"{base_url}/fhir/{resource_type}/{task_id}"
    status = _subscription_status(sub_id, number, occurred_at, focus)
    return _bundle(
        sub_id,
        status,
        {
            "fullUrl": focus,
            "request": {"method": "PUT", "url": f"{resource_type}/{task_id}"},
            "response": {"status": "200"},
        },
    )


__all__ = ["BACKPORT", "TASK_TOPIC", "handshake", "notification"]
