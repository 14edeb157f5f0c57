"""``refnet directory import``: an Open Referral (HSDS) directory onto the directory topic.

Everything is read and checked first (:mod:`connectors.openreferral.importer`); a file
with a problem publishes nothing. Then the directory topic's current records
are read back from Kafka and compared by content (:func:`content_hash`), so a
re-import publishes only what changed, on any machine. What changed is
published in one Kafka transaction: the network (which reads the topic
``read_committed``) sees all of an import or none of it. Each record carries the
headers ``refnet-import-source`` (the ``--source`` name) and
``refnet-content-sha256``; ``--prune`` removes (with a tombstone) only services
that an import of the same source published and this one no longer has.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from pydantic import TypeAdapter, ValidationError

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.openreferral.importer import (
    DEFAULT_RADIUS_KM,
    Conversion,
    HsdsError,
    ImportedService,
    content_hash,
    convert,
    read,
)
from connectors.openreferral.taxonomy import Mapping, MappingError
from deploy.settings import Settings

if TYPE_CHECKING:
    from deploy.provision import Admin
from schemas.events import ResponseSla, ServiceUpserted, to_bytes
from schemas.topics import Topics

#: The bundled mapping from taxonomy terms to SDOH categories.
DEFAULT_MAPPING: Final = Path(__file__).resolve().parent / "data" / "taxonomy-map.toml"
SOURCE_HEADER: Final = "refnet-import-source"
HASH_HEADER: Final = "refnet-content-sha256"
DEFAULT_SOURCE: Final = "hsds"

log = logging.getLogger(__name__)


class DirectoryError(RuntimeError):
    """Kafka could not be read or written; nothing was published (the message says why)."""


@dataclass(frozen=True)
class Current:
    """A service on the directory topic now: its content hash and who published it."""

    content_hash: str | None
    source: str | None


@dataclass
class Plan:
    """What an import changes on the directory topic."""

    new: list[ImportedService] = field(default_factory=list)
    changed: list[ImportedService] = field(default_factory=list)
    unchanged: list[ImportedService] = field(default_factory=list)
    #: service ids to remove (``--prune``)
    remove: list[str] = field(default_factory=list)

    @property
    def publish(self) -> list[ImportedService]:
        return [*self.new, *self.changed]


def plan(conversion: Conversion, current: dict[str, Current], *, source: str, prune: bool) -> Plan:
    """Compare an import with the topic's current records."""
    result = Plan()
    for service in conversion.services:
        now = current.get(service.event.service_id)
        if now is None:
            result.new.append(service)
        elif now.content_hash == content_hash(service.event):
            result.unchanged.append(service)
        else:
            result.changed.append(service)
    if prune:
        imported = {s.event.service_id for s in conversion.services}
        imported |= {u.service_id for u in conversion.unmapped}  # reported, never silently removed
        result.remove = sorted(
            sid for sid, now in current.items() if now.source == source and sid not in imported
        )
    return result


# ---------------------------------------------------------------- Kafka
def _quiet_logger() -> logging.Logger:
    quiet = logging.getLogger("refnet.directory.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def read_directory(
    bootstrap: str, topic: str, *, auth: KafkaAuth = PLAINTEXT, timeout: float = 30.0
) -> dict[str, Current]:
    """The directory topic's current services (latest value per key, tombstones applied)."""
    from confluent_kafka import (
        OFFSET_BEGINNING,
        Consumer,
        KafkaError,
        KafkaException,
        TopicPartition,
    )

    def client(isolation: str) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"refnet-directory-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "isolation.level": isolation,
                "logger": _quiet_logger(),
                **auth.librdkafka(),
            }
        )

    consumer = client("read_committed")
    found: dict[str, Current] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return found
        # Read each partition up to its high watermark as it is now. A
        # read_committed client is told the last stable offset instead, which
        # lags a just-committed transaction until its markers are written (a
        # directory read right after an import then looked empty): the high
        # watermark comes from a read_uncommitted client, and only the position
        # past it means "all read".
        ends: dict[int, int] = {}
        probe = client("read_uncommitted")
        try:
            for partition in sorted(meta.partitions):
                low, high = probe.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                if high > low:
                    ends[partition] = high
        finally:
            probe.close()
        if ends:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends:
            message = consumer.poll(0.2)
            if message is not None:
                error = message.error()
                if error is None:
                    _fold(found, message.key(), message.value(), message.headers())
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise DirectoryError(f"reading {topic}: {error.str()}")
            for partition, end in list(ends.items()):
                (position,) = consumer.position([TopicPartition(topic, partition)])
                if position.offset >= end:
                    del ends[partition]
            if ends and time.monotonic() > deadline:
                raise DirectoryError(
                    f"timed out reading {topic} from {bootstrap} (is another import's "
                    "transaction still open?)"
                )
    except KafkaException as exc:
        raise DirectoryError(f"cannot read {topic} from Kafka at {bootstrap}: {exc}") from None
    finally:
        consumer.close()
    return found


def _fold(
    found: dict[str, Current],
    key: bytes | None,
    value: bytes | None,
    headers: object,
) -> None:
    if key is None:
        return
    service_id = key.decode("utf-8", "replace")
    if value is None:
        found.pop(service_id, None)
        return
    source = None
    pairs: list[Any] = list(headers.items()) if isinstance(headers, dict) else []
    if isinstance(headers, list):
        pairs = headers
    for name, raw in pairs:
        if name == SOURCE_HEADER and isinstance(raw, bytes | str):
            source = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        digest: str | None = content_hash(ServiceUpserted.model_validate_json(value))
    except ValidationError:
        digest = None  # not a valid service: an import replaces it
    found[service_id] = Current(digest, source)


def publish(
    bootstrap: str,
    topic: str,
    changes: Plan,
    *,
    source: str,
    transactional_id: str,
    auth: KafkaAuth = PLAINTEXT,
    timeout: float = 60.0,
) -> None:
    """Write an import's changes in one transaction: all of them become visible, or none."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "logger": _quiet_logger(),
            **auth.librdkafka(),
        }
    )
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    try:
        producer.init_transactions(timeout)
        producer.begin_transaction()
        for service in changes.publish:
            event = service.event
            headers: list[tuple[str, str | bytes | None]] = [
                (SOURCE_HEADER, source.encode()),
                (HASH_HEADER, content_hash(event).encode()),
            ]
            producer.produce(
                topic,
                key=event.service_id.encode(),
                value=to_bytes(event),
                headers=headers,
                on_delivery=delivered,
            )
            producer.poll(0)
        for service_id in changes.remove:
            producer.produce(
                topic,
                key=service_id.encode(),
                value=None,
                headers=[(SOURCE_HEADER, source.encode())],
                on_delivery=delivered,
            )
            producer.poll(0)
        producer.flush(timeout)
        if failures:
            raise DirectoryError(f"the broker refused records: {failures[0]}")
        producer.commit_transaction(timeout)
    except (KafkaException, DirectoryError, BufferError) as exc:
        try:
            producer.abort_transaction(10)
        except KafkaException:
            log.warning("aborting the import's transaction failed; the broker aborts it later")
        raise DirectoryError(f"nothing was published to {topic}: {exc}") from None


@dataclass(frozen=True)
class Provisioned:
    organizations: int
    topics_created: int
    #: credentials files written (a broker that enforces ACLs only)
    credentials: tuple[Path, ...] = ()


def provision(admin: Admin, topics: Topics, org_ids: Sequence[str]) -> Provisioned:
    """The directory topic and each organization's topics; on a secured broker, as
    ``refnet provision org`` does, also each organization's credentials and ACLs."""
    from connectors.kafka.admin import Outcome, apply_topics, security_enabled
    from deploy.provision import provision_party
    from schemas.topics import TopicKind

    directory = [topics.spec(topics.directory, TopicKind.DIRECTORY)]
    if not security_enabled(admin.bootstrap, auth=admin.auth):
        specs = directory + [spec for org in org_ids for spec in topics.org_catalog(org)]
        results = apply_topics(admin.bootstrap, specs, auth=admin.auth)
        created = sum(1 for r in results if r.outcome is Outcome.CREATED)
        return Provisioned(len(org_ids), created)
    results = apply_topics(admin.bootstrap, directory, auth=admin.auth)
    created = sum(1 for r in results if r.outcome is Outcome.CREATED)
    files = []
    for org_id in org_ids:
        done = provision_party(admin, topics, "org", org_id)
        created += sum(1 for r in done.topics if r.outcome is Outcome.CREATED)
        if done.credentials is not None:
            files.append(done.credentials)
    return Provisioned(len(org_ids), created, tuple(files))


def kafka_admin(settings: Settings) -> Admin | None:
    """How the import reaches Kafka (the admin calls' access); None when there is no broker."""
    from deploy.cli import broker_for
    from deploy.provision import admin_for

    has_file = settings.kafka_admin_credentials or settings.kafka_credentials
    if not settings.kafka_bootstrap and not has_file and broker_for(settings).state() is None:
        return None
    return admin_for(settings, broker_for(settings))


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
    topics = Topics(
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    current: dict[str, Current] = {}
    compared = False
    if admin is not None:
        try:
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
    done = provision(admin, topics, sorted(conversion.organizations))
    where = f"; credentials in {done.credentials[0].parent}" if done.credentials else ""
    print(
        f"provisioned {done.organizations} organization(s) "
        f"({done.topics_created} topic(s) created{where})",
        file=out,
    )
    if changes.publish or changes.remove:
        publish(
            admin.bootstrap,
            topics.directory,
            changes,
            source=options.source,
            transactional_id=f"refnet-directory-import.{topics.prefix}.{options.source}",
            auth=admin.auth,
        )
    print(_totals(conversion, changes, done=True), file=out)
    return 0


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


_SLA: Final[TypeAdapter[timedelta]] = TypeAdapter(ResponseSla)


def _sla(text: str) -> timedelta:
    try:
        return _SLA.validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            "an ISO 8601 duration of at most P90D, such as PT24H"
        ) from None


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 500:
        raise argparse.ArgumentTypeError("kilometres, from 0 to 500")
    return value


def cmd_directory_import(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.provision import ProvisionError

    options = ImportOptions(
        paths=tuple(Path(p) for p in args.paths),
        mapping=Path(args.mapping) if args.mapping else DEFAULT_MAPPING,
        source=args.source,
        dry_run=args.dry_run,
        prune=args.prune,
        strict=args.strict,
        radius_km=args.radius_km,
        default_sla=args.default_response_sla,
    )
    try:
        return run_import(settings, kafka_admin(settings), options, sys.stdout)
    except (DirectoryError, ProvisionError) as exc:
        print(f"refnet directory import: {exc}", file=sys.stderr)
        return 2


def register(subparsers: Any) -> None:
    """Add ``refnet directory import`` to the CLI."""
    directory = subparsers.add_parser("directory", help="the service directory (Open Referral)")
    sub = directory.add_subparsers(dest="directory_command", required=True)
    imp = sub.add_parser(
        "import",
        help="publish an Open Referral (HSDS 3.0/3.1) directory as service.upserted events",
        description=(
            "Read HSDS JSON files (an organization, a service, a service_at_location, an array "
            "of them or an API page) and tabular data packages (folders of CSV files), map "
            "them to service.upserted events, provision each organization's topics and publish "
            "what changed to the directory topic in one transaction."
        ),
    )
    imp.add_argument("paths", nargs="+", metavar="PATH", help="a JSON file or a CSV folder")
    imp.add_argument(
        "--mapping",
        metavar="FILE",
        help=f"taxonomy-to-category mapping (TOML; default {DEFAULT_MAPPING.name})",
    )
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be published; publish and provision nothing",
    )
    imp.add_argument(
        "--prune",
        action="store_true",
        help="remove services an earlier import of this --source published and "
        "this one no longer has",
    )
    imp.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="name of this directory, for --prune (default: %(default)s)",
    )
    imp.add_argument(
        "--strict",
        action="store_true",
        help="publish nothing when a service cannot be mapped or a warning is raised (exit 1)",
    )
    imp.add_argument(
        "--radius-km",
        type=_radius,
        default=DEFAULT_RADIUS_KM,
        help="radius around a service's location when its service areas name no "
        "postal code (default: %(default)s)",
    )
    imp.add_argument(
        "--default-response-sla",
        type=_sla,
        default=None,
        metavar="DURATION",
        help="response_sla of services without a refnet:response_sla attribute "
        "(default: none, the network's REFNET_DEFAULT_RESPONSE_SLA applies)",
    )
    imp.set_defaults(func=cmd_directory_import)


__all__ = [
    "DEFAULT_MAPPING",
    "Current",
    "DirectoryError",
    "ImportOptions",
    "Plan",
    "kafka_admin",
    "load",
    "plan",
    "provision",
    "publish",
    "read_directory",
    "register",
    "report",
    "run_import",
]
