"""``refnet directory import``: an Open Referral (HSDS) directory onto the directory topic.

Everything is read and checked first (:mod:`connectors.openreferral.importer`); a file
with a problem publishes nothing. Then the directory topic's current records
are read back from Kafka and compared by content (:func:`content_hash`), so a
re-import publishes only what changed, on any machine. What changed is
published in one Kafka transaction (:mod:`deploy.directory.kafka`): the network
(which reads the topic ``read_committed``) sees all of an import or none of it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TextIO

from connectors.kafka.admin import DEFAULT_LIMITS, BatchLimits
from connectors.openreferral.importer import (
    DEFAULT_RADIUS_KM,
    Conversion,
    HsdsError,
    convert,
    read,
)
from connectors.openreferral.taxonomy import Mapping, MappingError
from deploy.directory.kafka import DirectoryError, fence, publish, read_directory
from deploy.directory.plan import Current, Plan, plan
from deploy.directory.progress import Progress, Summary
from deploy.directory.provision import Provisioned, provision
from deploy.environment import admin_of, broker_for, topics_for
from deploy.provision.parties import Admin
from deploy.settings import Settings
from schemas.events import to_bytes
from schemas.topics import Topics

#: The bundled mapping from taxonomy terms to SDOH categories.
DEFAULT_MAPPING: Final = Path(__file__).resolve().parents[1] / "data" / "taxonomy-map.toml"
DEFAULT_SOURCE: Final = "hsds"


def kafka_admin(settings: Settings) -> Admin | None:
    """How the import reaches Kafka (the admin calls' access); None when there is no broker."""
    has_file = settings.kafka_admin_credentials or settings.kafka_credentials
    if not settings.kafka_bootstrap and not has_file and broker_for(settings).state() is None:
        return None
    return admin_of(settings)


# ---------------------------------------------------------------- the command
@dataclass(frozen=True)
class ImportOptions:
    paths: tuple[Path, ...]
    mapping: Path = DEFAULT_MAPPING
    source: str = DEFAULT_SOURCE
    dry_run: bool = False
    prune: bool = False
    strict: bool = False
    radius_km: float | None = DEFAULT_RADIUS_KM
    default_sla: timedelta | None = None
    #: partitions of each organization's two topics (None: REFNET_PARTITIONS)
    partitions: int | None = None
    #: the most one admin request carries
    limits: BatchLimits = DEFAULT_LIMITS
    #: a bar per phase on stderr (rich)
    progress: bool = False


def load(options: ImportOptions, *, now: datetime | None = None) -> Conversion:
    """Read, check and map the files (no Kafka). Raises HsdsError or MappingError."""
    mapping = Mapping.load(options.mapping)
    directory = read(options.paths)
    return convert(
        directory,
        mapping,
        now=now or datetime.now(UTC),
        radius_km=options.radius_km,
        default_sla=options.default_sla,
    )


def run_import(settings: Settings, admin: Admin | None, options: ImportOptions, out: TextIO) -> int:
    """The whole command; returns the exit status (0 done, 1 refused by --strict, 2 error)."""
    try:
        conversion = load(options)
    except (HsdsError, MappingError) as exc:
        print(f"refnet directory import: {exc}", file=sys.stderr)
        return 2
    for line in conversion.sources:
        print(f"read {line}", file=out)
    if admin is None and not options.dry_run:
        print(
            "refnet directory import: the files are fine, but there is no Kafka broker: run "
            "'refnet dev up' for the embedded one, or set REFNET_KAFKA_BOOTSTRAP=host:port "
            "(--dry-run checks the files only)",
            file=sys.stderr,
        )
        return 2
    topics = topics_for(settings)
    transactional_id = f"refnet-directory-import.{topics.prefix}.{options.source}"
    current: dict[str, Current] = {}
    compared = False
    if admin is not None:
        try:
            if not options.dry_run:  # a killed import's open transaction would hold us up
                fence(admin.bootstrap, transactional_id, auth=admin.auth)
            current = read_directory(admin.bootstrap, topics.directory, auth=admin.auth)
            compared = True
        except DirectoryError as exc:
            if not options.dry_run:
                print(f"refnet directory import: {exc}", file=sys.stderr)
                return 2
            print(f"note: {exc}; compared with nothing", file=out)
    elif options.dry_run:
        print(
            "note: no Kafka broker (refnet dev up, or REFNET_KAFKA_BOOTSTRAP): compared with "
            "nothing",
            file=out,
        )
    changes = plan(conversion, current, source=options.source, prune=options.prune)
    report(conversion, changes, topics.directory, out, dry_run=options.dry_run, compared=compared)
    if options.strict and (conversion.unmapped or conversion.warnings):
        print(
            "refused (--strict): services that could not be mapped or warnings; nothing was "
            "published",
            file=out,
        )
        return 1
    if options.dry_run or admin is None:
        return 0
    return apply(admin, topics, conversion, changes, options, out, transactional_id)


def apply(
    admin: Admin,
    topics: Topics,
    conversion: Conversion,
    changes: Plan,
    options: ImportOptions,
    out: TextIO,
    transactional_id: str,
) -> int:
    """Provision the organizations, then publish the changes; print the summary.

    Returns 0 when everything is done, 2 when the broker refused something and
    130 when interrupted (Ctrl-C): in both cases what was done stays, and the
    same import run again finishes it.
    """
    summary = Summary()
    summary["services"].present = len(changes.unchanged)
    summary.totals["services"] = len(changes.publish) + len(changes.unchanged)
    try:
        with Progress(enabled=options.progress) as progress:
            done = provision(
                admin,
                topics,
                sorted(conversion.organizations),
                summary=summary,
                progress=progress,
                limits=options.limits,
                partitions=options.partitions,
            )
            if summary.error is None:
                _publish(admin, topics, changes, options, summary, progress, transactional_id)
            else:
                summary["services"].left = len(changes.publish)
    except KeyboardInterrupt:
        summary.stopped("interrupted")
        summary.print(out)
        return 130
    where = f"; credentials in {done.credentials[0].parent}" if done.credentials else ""
    print(
        f"provisioned {done.organizations} organization(s) "
        f"({done.topics_created} topic(s) created{where})",
        file=out,
    )
    summary.print(out)
    if summary.error is not None:
        print(f"refnet directory import: {summary.error}", file=sys.stderr)
        return 2
    print(_totals(conversion, changes, done=True), file=out)
    return 0


def _publish(
    admin: Admin,
    topics: Topics,
    changes: Plan,
    options: ImportOptions,
    summary: Summary,
    progress: Progress,
    transactional_id: str,
) -> None:
    """Publish what changed in one transaction; count it in ``summary``."""
    tally = summary["services"]
    if not (changes.publish or changes.remove):
        return
    progress.phase("services", len(changes.publish) + len(changes.remove))
    try:
        publish(
            admin.bootstrap,
            topics.directory,
            changes,
            source=options.source,
            transactional_id=transactional_id,
            auth=admin.auth,
            progress=lambda n: progress.advance("services", n),
        )
    except DirectoryError as exc:
        summary.error = str(exc)
        tally.failed = len(changes.publish)
        return
    tally.created = len(changes.publish)


def report(
    conversion: Conversion,
    changes: Plan,
    topic: str,
    out: TextIO,
    *,
    dry_run: bool,
    compared: bool = True,
) -> None:
    """What the import publishes, leaves alone, removes, could not map, and its warnings."""
    verb = "would publish" if dry_run else "publish"
    for label, services in (("new", changes.new), ("changed", changes.changed)):
        for service in services:
            event = service.event
            print(
                f"{verb} ({label}) {event.service_id}  {event.name}  org {event.org_id}  "
                f"[{', '.join(event.categories)}]  via {'; '.join(service.mapped_by)}",
                file=out,
            )
            if dry_run:
                print(f"  {to_bytes(event).decode()}", file=out)
    if changes.unchanged:
        print(
            f"unchanged: {len(changes.unchanged)} service(s) already on {topic} "
            "with the same content",
            file=out,
        )
    for service_id in changes.remove:
        print(
            f"{'would remove' if dry_run else 'remove'} {service_id} (--prune: no longer in "
            "the directory)",
            file=out,
        )
    if conversion.unmapped:
        print(
            f"could not map {len(conversion.unmapped)} service(s) to an SDOH category "
            "(not published; add their terms or words to the mapping, --mapping FILE):",
            file=out,
        )
        for unmapped in conversion.unmapped:
            terms = ", ".join(unmapped.terms) if unmapped.terms else "no taxonomy terms"
            print(
                f"  {unmapped.service_id}  {unmapped.name}  ({unmapped.where}; {terms})", file=out
            )
    if conversion.warnings:
        print(f"warnings ({len(conversion.warnings)}):", file=out)
        for warning in conversion.warnings:
            print(f"  {warning}", file=out)
    if dry_run:
        print(
            _totals(conversion, changes, done=False)
            + ("" if compared else " (not compared with the directory topic)"),
            file=out,
        )


def _totals(conversion: Conversion, changes: Plan, *, done: bool) -> str:
    published, removed = ("published", "removed") if done else ("to publish", "to remove")
    return (
        f"{'imported' if done else 'dry run'}: {len(changes.publish)} {published} "
        f"({len(changes.new)} new, {len(changes.changed)} changed), "
        f"{len(changes.unchanged)} unchanged, {len(changes.remove)} {removed}, "
        f"{len(conversion.unmapped)} could not be mapped, {len(conversion.warnings)} warning(s)"
    )


__all__ = [
    "DEFAULT_MAPPING",
    "DEFAULT_SOURCE",
    "ImportOptions",
    "Provisioned",
    "apply",
    "kafka_admin",
    "load",
    "provision",
    "report",
    "run_import",
]
