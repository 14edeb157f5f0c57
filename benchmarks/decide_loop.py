"""CPU cost per message of the worker's pure steps, without Kafka.

Runs the same steps, with the same data, as the network benchmark (20 services,
screenings with one or two needs) in one process:

* ingress: ``streams.runtime.ingress.route`` of a screening.submitted (decode + re-key);
* patients: ``PATIENT_COMMAND.validate_json`` + record load + ``streams.decisions.patients.decide``
  + record dump, as the patients agent does;
* referrals: ``REFERRAL_COMMAND.validate_json`` + ``Context`` (directory, org
  stats, load) + ``streams.decisions.referrals.decide`` + record dump, as the referrals agent;
* view: ``schemas.decode.decode`` + ``NetworkState.record`` of each
  referral.state-changed the referrals step produced.

Prints microseconds per call of each step; ``--profile`` adds the top of a
cProfile of the whole loop.

    /tmp/venv/bin/python benchmarks/decide_loop.py [--screenings 2000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka.structs import ConsumerRecord

from benchmarks.network_throughput import CLINIC, directory, screenings
from schemas.decode import Decoded, decode
from schemas.events import ReferralStateChanged, ServiceUpserted
from schemas.topics import Topics
from streams.decisions.commands import PATIENT_COMMAND, REFERRAL_COMMAND
from streams.decisions.patients import PatientRecord
from streams.decisions.patients import decide as decide_patient
from streams.decisions.referrals import Context, ReferralRecord
from streams.decisions.referrals import decide as decide_referral
from streams.runtime.ingress import route
from streams.runtime.view import NetworkState


def record(topic: str, key: str, value: bytes, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=key.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=[],
    )


def loop(count: int, services: int) -> dict[str, list[float]]:
    topics = Topics(prefix="bench", partitions=6)
    orgs = [f"bench-org-{i}" for i in range(4)]
    state = NetworkState()
    for _, value in directory(topics, services, orgs):
        state.upsert(ServiceUpserted.model_validate_json(value))
    batch = screenings(count, "loop")
    submissions = topics.clinic_submissions(CLINIC)
    patients: dict[str, object] = {}
    referrals: dict[str, object] = {}
    cost: dict[str, list[float]] = defaultdict(list)
    clock = time.perf_counter

    for offset, (_, patient_id, value, _) in enumerate(batch):
        t0 = clock()
        routed = route(record(submissions, patient_id, value, offset), topics, state)
        t1 = clock()
        cost["ingress route"].append(t1 - t0)

        command = PATIENT_COMMAND.validate_json(routed.value)
        raw = patients.get(routed.key)
        precord = PatientRecord.model_validate(raw) if raw is not None else None
        pdecision = decide_patient(precord, command, topics=topics)
        if pdecision.record is not None:
            patients[routed.key] = pdecision.record.model_dump(mode="json")
        t2 = clock()
        cost["patients agent"].append(t2 - t1)

        for out in pdecision.outputs:
            if out.topic != topics.network_referrals:
                continue
            t3 = clock()
            rcommand = REFERRAL_COMMAND.validate_json(out.value)
            raw = referrals.get(out.key)
            rrecord = ReferralRecord.model_validate(raw) if raw is not None else None
            ctx = Context(
                topics=topics,
                now=datetime.now(UTC),
                directory=state.directory(),
                org_stats=state.org_stats(),
                load=state.load(),
            )
            rdecision = decide_referral(rrecord, rcommand, ctx, partition=0)
            if rdecision.record is not None:
                referrals[out.key] = rdecision.record.model_dump(mode="json")
            t4 = clock()
            cost["referrals agent"].append(t4 - t3)

            for ref_out in rdecision.outputs:
                if ref_out.topic != topics.referral_events:
                    continue
                t5 = clock()
                result = decode(ref_out.topic, ref_out.key, ref_out.value, topics)
                if isinstance(result, Decoded) and isinstance(result.event, ReferralStateChanged):
                    state.record(result.event)
                cost["view apply"].append(clock() - t5)
    return cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenings", type=int, default=2000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()

    loop(50, args.services)  # warm up pydantic's validators
    t0 = time.perf_counter()
    cost = loop(args.screenings, args.services)
    total = time.perf_counter() - t0
    per_screening = 0.0
    for step, values in cost.items():
        ordered = sorted(values)
        mean = sum(values) / len(values)
        per_screening += sum(values) / args.screenings
        print(
            f"{step:<16} {len(values):>6} calls  mean {mean * 1e6:7.0f} us  "
            f"p50 {ordered[len(ordered) // 2] * 1e6:7.0f} us  "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1e6:7.0f} us"
        )
    print(
        f"pure CPU per screening (all steps): {per_screening * 1e3:.2f} ms "
        f"-> at most {1 / per_screening:.0f} screenings/s on one core "
        f"(loop total {total:.2f}s incl. bookkeeping)"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        loop(args.screenings, args.services)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
