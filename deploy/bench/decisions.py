"""5 and 7: the pure decisions' cost: ranking offers, and the deadline index."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from deploy.bench.kafka import (
    Out,
    bench_service,
)
from schemas.codes import Category


# ---------------------------------------------------------------- 5. ranking
def ranking(sizes: list[int], out: Out) -> list[dict[str, Any]]:
    from streams.decisions.matching import MatchRequest, rank
    from streams.runtime.view import NetworkState

    rng = random.Random(1)
    zips = [f"{75000 + n:05d}" for n in range(300)]  # Texas ZIPs: real centroids
    results = []
    for size in sizes:
        state = NetworkState()
        for i in range(size):
            codes = tuple(rng.sample(zips, 3))
            state.upsert(bench_service(i, f"org-{i % 50}", codes=codes))
        requests = [
            MatchRequest(
                category=Category.FOOD_INSECURITY,
                postal_code=rng.choice(zips),
                preferred_language="es",
            )
            for _ in range(200)
        ]
        state.candidates(requests[0])  # build the index once, as after a directory change
        started = time.perf_counter()
        for request in requests:
            rank(state.candidates(request), request, org_stats=state.org_stats(), load=state.load())
        per = (time.perf_counter() - started) / len(requests) * 1000
        whole = time.perf_counter()
        rank(state.directory(), requests[0])
        scan = (time.perf_counter() - whole) * 1000
        out(
            f"5. ranking with {size:,} services: {per:.3f} ms per offer "
            f"(a scan of the whole directory: {scan:.1f} ms)"
        )
        results.append(
            {"services": size, "ms_per_offer": round(per, 4), "full_scan_ms": round(scan, 2)}
        )
    return results


# ---------------------------------------------------------------- 7. deadlines
def deadlines(sizes: list[int], out: Out) -> list[dict[str, Any]]:
    from streams.decisions.deadlines import DeadlineIndex

    results = []
    for size in sizes:
        index = DeadlineIndex()
        now = datetime.now(UTC)
        entries = [
            (i % 6, f"ref-{i}", now + timedelta(seconds=1 + (i * 7919) % 86_400))
            for i in range(size)
        ]
        # built as a worker rebuilds it after a rebalance (one heapify)
        started = time.perf_counter()
        index.set_many(entries)
        load_s = time.perf_counter() - started
        ticks = []
        for _ in range(200):
            t = time.perf_counter()
            index.pop_due(now)
            ticks.append((time.perf_counter() - t) * 1e6)
        # a second's worth of due entries, popped as the timer would
        later = now + timedelta(seconds=60)
        t = time.perf_counter()
        due = index.pop_due(later)
        burst_ms = (time.perf_counter() - t) * 1000
        out(
            f"7. deadlines with {size:,} open offers: idle tick {statistics.median(ticks):.1f} us, "
            f"{len(due)} due in one tick popped in {burst_ms:.2f} ms; index built in {load_s:.1f}s"
        )
        results.append(
            {
                "open": size,
                "idle_tick_us": round(statistics.median(ticks), 2),
                "due": len(due),
                "due_tick_ms": round(burst_ms, 3),
                "build_s": round(load_s, 2),
            }
        )
    return results
