"""Two workers in one group share the partitions and survive the SIGKILL of one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from deploy.launcher import start_worker
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration

CLINIC = "mott-haven"
SLOW, BACKUP = "slow-org", "backup-org"


class Workers(Network):
    """A network run by several ``refnet worker`` processes with the same app id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_named(self, name: str) -> None:
        data_dir = self.data_dir / name
        data_dir.mkdir(exist_ok=True)
        env = {**self.env(), "REFNET_DATA_DIR": str(data_dir)}
        self.procs[name] = start_worker(env, self.data_dir / f"{name}.log")

    def kill_named(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def worker_log(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.data_dir / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in sorted(self.procs)
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()

    async def close(self) -> None:
        self.stop_all()
        await super().close()


@pytest.fixture
async def workers(kafka_bootstrap: str, tmp_path: Path) -> Any:
    import uuid

    from schemas.topics import Topics

    net = Workers(
        kafka_bootstrap, Topics(prefix=f"w{uuid.uuid4().hex[:8]}", partitions=6), tmp_path
    )
    try:
        yield net
    finally:
        await net.close()


def _offers(values: list[dict[str, Any]]) -> dict[str, set[str]]:
    """referral id -> the distinct event ids of its offers."""
    offers: dict[str, set[str]] = defaultdict(set)
    for v in values:
        if v.get("event_type") == "referral.offered":
            offers[v["referral_id"]].add(v["event_id"])
    return offers


async def test_two_workers_share_the_load_and_survive_the_sigkill_of_one(workers: Workers) -> None:
    """Every referral is first offered to an organization that never answers, so each
    one's deadline must fire (on whichever worker owns it by then) and re-route it to
    the backup. Worker B is killed with SIGKILL in mid-stream and started again; the
    referrals it owned move to A, then back. Nothing is lost: every referral reaches
    the backup; nothing is doubled: one offer (one event id) per referral and attempt.
    """
    t = workers.topics
    await workers.provision([CLINIC], [SLOW, BACKUP])
    await workers.publish(
        t.directory, "svc-slow", b.service("svc-slow", SLOW, response_sla="PT6S", available=1000)
    )
    await workers.publish(
        t.directory, "svc-backup", b.service("svc-backup", BACKUP, available=1000)
    )
    workers.start_named("a")
    workers.start_named("b")

    sent: list[str] = []

    async def send(first: int, last: int, pause: float = 0.1) -> None:
        for i in range(first, last):
            ref = f"ref-{i:03d}"
            event = b.requested(ref, patient_fields=b.patient(f"pt-{i:03d}"), service_id="svc-slow")
            await workers.publish(t.clinic_submissions(CLINIC), f"pt-{i:03d}", event)
            sent.append(ref)
            await asyncio.sleep(pause)

    # both workers up and in the group: the first referrals are offered
    await send(0, 10)
    await workers.read(t.org_referrals(SLOW), count=10, timeout=90)
    await send(10, 30)
    workers.kill_named("b")  # no shutdown, no commit, no flush
    killed_at = time.monotonic()
    await send(30, 50)
    workers.start_named("b")  # it comes back and takes partitions back
    await send(50, 60)
    for proc in workers.procs.values():
        assert proc.poll() is None, workers.worker_log()

    backup = await workers.read(
        t.org_referrals(BACKUP),
        until=lambda vs: len(_offers(vs)) >= len(sent),
        timeout=150,
    )
    slow = await workers.read(t.org_referrals(SLOW), timeout=5)
    recovered_in = time.monotonic() - killed_at
    first, second = _offers(slow), _offers(backup)
    ids = {f"{CLINIC}:{ref}" for ref in sent}
    lost = ids - set(second)
    doubled = sum(len(e) - 1 for e in first.values()) + sum(len(e) - 1 for e in second.values())
    copies = Counter(
        v["event_id"] for v in backup + slow if v.get("event_type") == "referral.offered"
    )
    repeats = sum(n - 1 for n in copies.values())
    timeouts = sum(1 for v in slow if v.get("event_type") == "referral.withdrawn")
    logs = [p.read_text(errors="replace") for p in workers.data_dir.glob("*.log")]
    holes = sum(text.count("never reached the agent") for text in logs)
    print(  # noqa: T201 - the figures the issue asks for
        f"\nscale-out: events sent {len(sent)}, re-routed after a deadline {len(second)}, "
        f"lost {len(lost)}, duplicated {doubled} (identical redeliveries {repeats}), "
        f"timeouts withdrawn {timeouts}; all re-routed {recovered_in:.0f}s after the SIGKILL; "
        f"holes Faust left that the agents read back {holes}"
    )
    assert not lost, sorted(lost)[:10]
    assert doubled == 0
    assert set(first) == ids  # each first offer went to the slow organization, once
    assert timeouts >= len(ids)
