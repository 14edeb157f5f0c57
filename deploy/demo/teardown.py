"""Stopping the demo: the worker always; its parties, topics and services unless ``--keep``."""

from __future__ import annotations

import contextlib
import shutil

from connectors.kafka.admin import admin_client
from connectors.kafka.auth import KafkaAuth
from deploy.demo.display import Output
from deploy.demo.simulation import DemoOptions, Run
from deploy.environment import (
    broker_for,
    database_for,
)
from deploy.launcher import stop_worker
from deploy.provision.parties import deprovision_party
from deploy.provision.principals import network_acls
from deploy.settings import Settings


def delete_demo_topics(run: Run, auth: KafkaAuth) -> int:
    """Delete the demo's topics and consumer groups; return how many topics went."""
    if run.bootstrap is None or run.topics is None:
        return 0
    admin = admin_client(run.bootstrap, auth)
    names = [
        name
        for name in admin.list_topics(timeout=15).topics
        if name.startswith(f"{run.topics.prefix}.") or name.startswith(f"{run.app_id}-")
    ]
    deleted = 0
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
                deleted += 1
    groups = [
        run.app_id,
        f"{run.app_id}-ingress",
        f"{run.app_id}-ingress-updates",
        f"{run.app_id}-ledger",
    ]
    with contextlib.suppress(Exception):
        for future in admin.delete_consumer_groups(groups, request_timeout=15).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)
    return deleted


def revoke_network_rules(run: Run) -> None:
    """The rules that granted the network's principal the demo's topics and groups."""
    from confluent_kafka.admin import AclBindingFilter  # type: ignore[attr-defined]

    admin, topics = run.admin, run.topics
    if admin is None or topics is None or admin.network_user is None:
        return
    rules = network_acls(topics, run.app_id, admin.network_user)
    filters = []
    for rule in rules:
        if rule.resource == "cluster":  # idempotent writes: the real network needs that
            continue
        b = rule.binding()
        filters.append(
            AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                             b.operation, b.permission_type)
        )  # fmt: skip
    client = admin_client(admin.bootstrap, admin.auth)  # alive until the answers come
    for future in client.delete_acls(filters, request_timeout=30).values():
        future.result(timeout=30)


def cleanup(
    settings: Settings,
    run: Run,
    auth: KafkaAuth,
    options: DemoOptions,
    output: Output,
    *,
    failed: bool,
) -> None:
    """Stop what the demo started: always the worker and the MLLP listener; the rest
    unless --keep.

    The worker's files (its log) stay after a failure, to be read.
    """
    stop_worker(run.worker, timeout=15.0, group=True)
    stop_worker(run.listener, timeout=10.0, group=True)
    if options.keep:
        output.say(
            f"kept (--keep): topics {run.topics.prefix if run.topics else ''}.*, the "
            "broker and the database ('refnet dev down' stops them)"
        )
        return
    if run.admin is not None and run.admin.auth.sasl and run.topics is not None:
        try:  # a secure broker: the demo's parties' SCRAM users and ACLs go
            for kind, party_id in run.parties:
                deprovision_party(run.admin, run.topics, kind, party_id, keep_topics=True)
            revoke_network_rules(run)
            output.say(f"revoked the credentials of the demo's {len(run.parties)} parties")
        except Exception as exc:  # noqa: BLE001 - reported; the topics still go below
            output.say(f"could not revoke the demo's credentials ({type(exc).__name__}: {exc})")
    if run.bootstrap is not None:
        try:
            deleted = delete_demo_topics(run, auth)
            output.say(f"deleted the demo's {deleted} topics")
        except Exception as exc:  # noqa: BLE001 - best effort: the demo's prefix is unique
            output.say(f"could not delete the demo's topics ({type(exc).__name__})")
    if run.started_broker:
        broker_for(settings).stop()
        output.say("stopped the embedded Kafka broker it started")
    if run.started_database:
        database_for(settings).stop()
        output.say("stopped the embedded PostgreSQL it started")
    if run.work_dir is not None and not failed:
        shutil.rmtree(run.work_dir, ignore_errors=True)
