"""``refnet topics apply|list``: the topic catalog."""

from __future__ import annotations

import argparse

from connectors.kafka.admin import list_topics
from deploy.cli.common import Subparsers
from deploy.environment import admin_of, apply_network, resolve_kafka
from deploy.settings import Settings


def cmd_topics_apply(settings: Settings, args: argparse.Namespace) -> int:
    admin = admin_of(settings)
    results, granted = apply_network(settings, admin)
    for result in results:
        detail = f" ({result.detail})" if result.detail else ""
        print(f"{result.outcome:<9} {result.name}{detail}")
    if granted is not None:
        print(f"{'acls':<9} User:{admin.network_user} ({granted} rules)")
    return 0


def cmd_topics_list(settings: Settings, args: argparse.Namespace) -> int:
    access = resolve_kafka(settings, admin=True)
    for name, partitions in sorted(list_topics(access.bootstrap, auth=access.auth).items()):
        print(f"{name}\t{partitions}")
    return 0


def register(sub: Subparsers) -> None:
    topics = sub.add_parser("topics", help="the topic catalog")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    topics_sub.add_parser("apply", help="create or update the network's topics").set_defaults(
        func=cmd_topics_apply
    )
    topics_sub.add_parser("list", help="list topics and partitions").set_defaults(
        func=cmd_topics_list
    )
