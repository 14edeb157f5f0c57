"""The gateway at 10 and 1,000 parties: start-up to every view ready, RSS, broker connections.

For each size, on a fresh embedded broker: the party topics of ``N`` organizations
and ``--clinics`` clinics (created in batches by the admin helpers), one record in
every inbox (so that catching up reads something), an API token for each party,
then a real ``refnet gateway`` process. Timed from its start: ``/healthz``, then
every party's view caught up (a ``GET /fhir/Task`` answers 200 for each of
``--sample`` parties spread over the list: a view not caught up answers 503),
then the RSS and the TCP connections the process holds to the broker once they
stop changing (``/proc/PID/fd`` matched against ``/proc/net/tcp``). Then one
``POST /fhir/QuestionnaireResponse`` per clinic (each opens its producer) and the
connections again. Prints one JSON line per size and a table.

    .venv/bin/python benchmarks/gateway_scale.py [--sizes 10,1000] [--clinics 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.network_throughput import tail  # noqa: E402
from benchmarks.region_scale import (  # noqa: E402
    connections_to,
    free_port,
    load_average,
    run_sizes,
)
from connectors.files import write_private_json  # noqa: E402
from connectors.gateway.tokens import TOKEN_PREFIX, token_hash, tokens_path  # noqa: E402
from connectors.kafka.admin import apply_topics  # noqa: E402
from connectors.kafka.clients import producer  # noqa: E402
from deploy.bench.process import status_kb  # noqa: E402
from deploy.launcher import stop_worker, worker_env  # noqa: E402
from deploy.local.broker import LocalBroker  # noqa: E402
from deploy.local.database import LocalDatabase  # noqa: E402
from deploy.settings import Settings  # noqa: E402
from schemas.events import EncounterAlerted, to_bytes  # noqa: E402
from schemas.topics import Topics  # noqa: E402

COLUMNS = (
    ("parties", "{:,}"),
    ("load", "{}"),
    ("topics_s", "{:.1f}"),
    ("healthz_s", "{:.1f}"),
    ("ready_s", "{:.1f}"),
    ("rss_mb", "{:.0f}"),
    ("connections", "{}"),
    ("connections_after_posts", "{}"),
)

QR = {
    "resourceType": "QuestionnaireResponse",
    "status": "completed",
    "questionnaire": "http://hl7.org/fhir/us/sdoh-clinicalcare/Questionnaire/"
    "SDOHCC-QuestionnaireHungerVitalSign",
    "contained": [
        {
            "resourceType": "Patient",
            "id": "pat",
            "identifier": [{"value": "mrn-1"}],
            "name": [{"given": ["Bench"]}],
        }
    ],
    "subject": {"reference": "#pat"},
    "item": [
        {
            "linkId": "/88122-7",
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA28397-0"}}],
        }
    ],
}


def step(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _alert() -> bytes:
    return to_bytes(
        EncounterAlerted.new(
            event="admit",
            encounter_class="IMP",
            encounter_on="2026-12-05",
            encounter_event_id=uuid.uuid4(),
        )
    )


async def _fill(bootstrap: str, topics: list[str]) -> None:
    client = producer(bootstrap, linger_ms=20)
    await client.start()
    try:
        for start in range(0, len(topics), 200):
            sent = [await client.send(t, _alert(), key=b"k") for t in topics[start : start + 200]]
            for future in sent:
                await future
    finally:
        await client.stop()


def _wait_ready(url: str, tokens: list[str], proc: Any, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    pending = list(tokens)
    with httpx.Client(base_url=url, timeout=30) as client:
        while pending:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} sampled views not ready in {limit:.0f}s")
            try:
                answer = client.get("/fhir/Task", headers={"Authorization": f"Bearer {pending[0]}"})
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if answer.status_code == 200:
                pending.pop(0)
            else:
                time.sleep(0.2)


def _steady_connections(pid: int, port: int, seconds: float = 5.0, limit: float = 120) -> int:
    seen, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - since < seconds and time.monotonic() - start < limit:
        now = connections_to(pid, port)
        if now != seen:
            seen, since = now, time.monotonic()
        time.sleep(0.5)
    return seen


def _parties(
    args: argparse.Namespace,
    count: int,
    bootstrap: str,
    topics: Topics,
    clinics: list[str],
    data_dir: Path,
    figures: dict[str, Any],
) -> list[str]:
    """The parties' topics (timed), a record in each inbox, their tokens; the tokens of
    the parties whose views are checked for readiness."""
    orgs = [f"org-{i:05d}" for i in range(count)]
    specs = [s for o in orgs for s in topics.org_catalog(o)]
    specs += [s for c in clinics for s in topics.clinic_catalog(c)]
    step(f"{count}: {len(specs)} topics")
    t0 = time.perf_counter()
    apply_topics(bootstrap, specs)
    figures["topics_s"] = time.perf_counter() - t0
    inboxes = [topics.org_referrals(o) for o in orgs]
    inboxes += [topics.clinic_updates(c) for c in clinics]
    asyncio.run(_fill(bootstrap, inboxes))
    parties = [("org", o) for o in orgs] + [("clinic", c) for c in clinics]
    document = {
        token_hash(f"{TOKEN_PREFIX}bench-{kind}-{pid}"): {"party": kind, "id": pid}
        for kind, pid in parties
    }
    write_private_json(tokens_path(data_dir), document, sort_keys=True)
    every = max(1, len(parties) // args.sample)
    sample = [f"{TOKEN_PREFIX}bench-{k}-{p}" for k, p in parties[::every]]
    sample.append(f"{TOKEN_PREFIX}bench-{parties[-1][0]}-{parties[-1][1]}")
    return sample


def measure(args: argparse.Namespace, count: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"parties": count + args.clinics, "load": load_average()}
    with tempfile.TemporaryDirectory(prefix="refnet-gwscale-") as name:
        tmp = Path(name)
        settings = Settings.from_env()
        broker = LocalBroker(
            tmp / "kafka", cache_dir=settings.cache_dir, version=settings.kafka_version, port=0
        )
        proc = None
        database = LocalDatabase(tmp / "pg")  # the gateway keeps its state in PostgreSQL
        try:
            bootstrap = broker.start(tie_to_parent=True).bootstrap
            topics = Topics(prefix=f"gw{uuid.uuid4().hex[:6]}", partitions=1)
            clinics = [f"clinic-{i}" for i in range(args.clinics)]
            data_dir = tmp / "data"
            sample = _parties(args, count, bootstrap, topics, clinics, data_dir, figures)
            port = free_port()
            env = worker_env(
                {
                    "REFNET_KAFKA_BOOTSTRAP": bootstrap,
                    "REFNET_TOPIC_PREFIX": topics.prefix,
                    "REFNET_DATA_DIR": str(data_dir),
                    "REFNET_GATEWAY_PORT": str(port),
                    "REFNET_LOG_LEVEL": "warning",
                    "REFNET_DATABASE_URL": database.start(),
                }
            )
            log = tmp / "gateway.log"
            step(f"{count}: gateway")
            t0 = time.perf_counter()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "deploy.cli", "gateway"],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            url = f"http://127.0.0.1:{port}"
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the gateway exited:\n{tail(log)}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            figures["healthz_s"] = time.perf_counter() - t0
            _wait_ready(url, sample, proc, log, args.limit)
            figures["ready_s"] = time.perf_counter() - t0
            broker_port = int(bootstrap.rsplit(":", 1)[1])
            figures["connections"] = _steady_connections(proc.pid, broker_port)
            figures["rss_mb"] = status_kb(proc.pid, "VmRSS") / 1024
            with httpx.Client(base_url=url, timeout=30) as client:
                for clinic in clinics:
                    token = f"{TOKEN_PREFIX}bench-clinic-{clinic}"
                    answer = client.post(
                        "/fhir/QuestionnaireResponse",
                        json=QR,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    figures.setdefault("posts", []).append(answer.status_code)
            figures["connections_after_posts"] = _steady_connections(proc.pid, broker_port)
        except Exception as exc:  # noqa: BLE001 - report what was measured, and why it stopped
            figures["error"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
        finally:
            if proc is not None:
                stop_worker(proc)
            database.stop()
            broker.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000", help="organizations per run")
    parser.add_argument("--clinics", type=int, default=3)
    parser.add_argument("--sample", type=int, default=10, help="views checked for readiness")
    parser.add_argument("--limit", type=float, default=600, help="seconds to wait for ready")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_sizes(args.sizes, lambda count: measure(args, count), COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
