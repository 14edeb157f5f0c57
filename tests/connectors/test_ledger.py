"""The ledger writes to and reads from the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connectors.ledger import Ledger

pytestmark = pytest.mark.integration


def _row(referral_id: str, status: str, minutes: int) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4(),
        "referral_id": referral_id,
        "event_type": "referral.state-changed",
        "occurred_at": datetime(2026, 11, 24, 9, tzinfo=UTC) + timedelta(minutes=minutes),
        "clinic_id": "bronx-clinic",
        "org_id": "bronx-pantry",
        "status": status,
        "business_status": None,
        "payload": {"status": status},
    }


async def test_ledger_records_history_in_order_and_ignores_replayed_events(
    database_url: str,
) -> None:
    ledger = await Ledger.connect(database_url)
    try:
        referral_id = f"ref-{uuid.uuid4().hex[:8]}"
        rows = [_row(referral_id, "requested", 0), _row(referral_id, "accepted", 5)]
        assert await ledger.record(rows) == 2
        # a replay of the same events has no second effect
        assert await ledger.record(rows) == 0
        history = await ledger.history(referral_id)
        assert [h.status for h in history] == ["requested", "accepted"]
        assert history[1].payload == {"status": "accepted"}
        assert history[0].occurred_at == datetime(2026, 11, 24, 9, tzinfo=UTC)
    finally:
        await ledger.close()


async def test_ledger_migration_is_idempotent(database_url: str) -> None:
    first = await Ledger.connect(database_url)
    await first.close()
    second = await Ledger.connect(database_url)
    try:
        await second.migrate()
        assert await second.count() >= 0
    finally:
        await second.close()
