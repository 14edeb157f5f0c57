"""Each imported organization's topics (and, on a secured broker, identity and ACLs).

Thousands of organizations are provisioned in batches the broker accepts
(:class:`~connectors.kafka.admin.BatchLimits`): what exists is left alone, so a
second run creates only what the first did not. It stops at the first batch
the broker refuses, with what was done counted in the :class:`Summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from connectors.kafka.admin import (
    DEFAULT_LIMITS,
    AdminError,
    BatchFailed,
    BatchLimits,
    Outcome,
    TopicResult,
    apply_topics,
    security_enabled,
)
from deploy.directory.progress import Progress, Summary
from deploy.provision.parties import Admin, provision_party
from deploy.provision.principals import ProvisionError
from schemas.topics import TopicKind, Topics


@dataclass(frozen=True)
class Provisioned:
    organizations: int
    topics_created: int
    #: credentials files written (a broker that enforces ACLs only)
    credentials: tuple[Path, ...] = ()


def provision(
    admin: Admin,
    topics: Topics,
    org_ids: Sequence[str],
    *,
    summary: Summary | None = None,
    progress: Progress | None = None,
    limits: BatchLimits = DEFAULT_LIMITS,
    partitions: int | None = None,
) -> Provisioned:
    """The directory topic and each organization's topics; on a secured broker, as
    ``refnet provision org`` does, also each organization's credentials and ACLs.

    ``partitions``: of each organization's two topics (default: the catalog's).
    Counts go to ``summary``; a refusal by the broker stops it there and is
    ``summary.error``. Without a ``summary`` to count in, the refusal is raised
    (:class:`AdminError`) instead.
    """
    tally = summary if summary is not None else Summary()
    progress = progress if progress is not None else Progress(enabled=False)
    party = replace(topics, partitions=partitions) if partitions else topics
    try:
        secured = security_enabled(admin.bootstrap, auth=admin.auth)
    except AdminError as exc:
        tally.error = str(exc)
        tally["organizations"].left = len(org_ids)
        secured = False
    if tally.error is not None:
        done = Provisioned(0, 0)
    elif not secured:
        done = _plain(admin, topics, party, org_ids, tally, progress, limits)
    else:
        done = _secured(admin, topics, party, org_ids, tally, progress)
    if summary is None and tally.error is not None:
        raise AdminError(tally.error)
    return done


def _plain(
    admin: Admin,
    topics: Topics,
    party: Topics,
    org_ids: Sequence[str],
    summary: Summary,
    progress: Progress,
    limits: BatchLimits,
) -> Provisioned:
    """Topics only, in batches; an organization is done once both its topics are."""
    owner: dict[str, str] = {}
    specs = [topics.spec(topics.directory, TopicKind.DIRECTORY)]
    for org_id in org_ids:
        for spec in party.org_catalog(org_id):
            owner[spec.name] = org_id
            specs.append(spec)
    waiting = {org_id: 2 for org_id in org_ids}
    fresh: set[str] = set()
    progress.phase("organizations", len(org_ids))
    progress.phase("topics", len(specs))
    summary.totals.update(organizations=len(org_ids), topics=len(specs))
    seen: set[str] = set()

    def on_batch(batch: list[TopicResult]) -> None:
        _count_topics(summary, progress, batch)
        for result in batch:
            seen.add(result.name)
            org_id = owner.get(result.name)
            if org_id is None:
                continue
            if result.outcome is Outcome.CREATED:
                fresh.add(org_id)
            waiting[org_id] -= 1
            if waiting[org_id] == 0:
                tally = summary["organizations"]
                if org_id in fresh:
                    tally.created += 1
                else:
                    tally.present += 1
                progress.advance("organizations")

    try:
        apply_topics(admin.bootstrap, specs, auth=admin.auth, limits=limits, progress=on_batch)
    except AdminError as exc:
        summary.error = str(exc)
        refused = set(exc.names) if isinstance(exc, BatchFailed) else set()
        broken = {owner[name] for name in refused if name in owner}
        summary["topics"].failed = len(refused)
        summary["topics"].left = len(specs) - len(seen) - len(refused)
        summary["organizations"].failed = len(broken)
        summary["organizations"].left = sum(1 for o, n in waiting.items() if n and o not in broken)
    orgs = summary["organizations"]
    return Provisioned(orgs.created + orgs.present, summary["topics"].created)


def _count_topics(summary: Summary, progress: Progress, batch: list[TopicResult]) -> None:
    tally = summary["topics"]
    for result in batch:
        if result.outcome is Outcome.CREATED:
            tally.created += 1
        else:
            tally.present += 1
    progress.advance("topics", len(batch))


def _secured(
    admin: Admin,
    topics: Topics,
    party: Topics,
    org_ids: Sequence[str],
    summary: Summary,
    progress: Progress,
) -> Provisioned:
    """One organization at a time, as ``refnet provision org`` does (each request holds
    one organization's few topics and ACLs, well within the broker's limits)."""
    progress.phase("organizations", len(org_ids))
    progress.phase("topics", 1 + 2 * len(org_ids))
    summary.totals.update(organizations=len(org_ids), topics=1 + 2 * len(org_ids))
    files: list[Path] = []
    try:
        directory = [topics.spec(topics.directory, TopicKind.DIRECTORY)]
        _count_topics(summary, progress, apply_topics(admin.bootstrap, directory, auth=admin.auth))
    except AdminError as exc:
        summary.error = str(exc)
        summary["organizations"].left = len(org_ids)
        return Provisioned(0, 0)
    for index, org_id in enumerate(org_ids):
        try:
            done = provision_party(admin, party, "org", org_id)
        except (AdminError, ProvisionError) as exc:
            summary.error = f"organization {org_id}: {exc}"
            summary["organizations"].failed += 1
            summary["organizations"].left = len(org_ids) - index - 1
            break
        _count_topics(summary, progress, done.topics)
        created = any(r.outcome is Outcome.CREATED for r in done.topics)
        if created:
            summary["organizations"].created += 1
        else:
            summary["organizations"].present += 1
        progress.advance("organizations")
        if done.credentials is not None:
            files.append(done.credentials)
    orgs = summary["organizations"]
    return Provisioned(orgs.created + orgs.present, summary["topics"].created, tuple(files))


__all__ = ["Provisioned", "provision"]
