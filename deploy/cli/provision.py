"""``refnet provision`` and ``refnet deprovision``: a party's topics, credentials and ACLs;
``refnet provision list``: the parties provisioned in ``REFNET_DATA_DIR``."""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import Subparsers
from deploy.environment import CliError, admin_of, database_for, topics_for
from deploy.provision.files import provisioned_parties
from deploy.provision.parties import deprovision_party, provision_party
from deploy.provision.principals import PARTY_KINDS
from deploy.settings import Settings


def cmd_provision(settings: Settings, args: argparse.Namespace) -> int:
    if args.party == "list":
        for kind, party_id, path in provisioned_parties(settings.data_dir):
            print(f"{kind:<9} {party_id:<40} {path or '-'}")
        return 0
    if args.id is None:
        raise CliError(f"refnet provision {args.party} needs the party's id")
    admin = admin_of(settings)
    done = provision_party(admin, topics_for(settings), args.party, args.id)
    for result in done.topics:
        print(f"{result.outcome:<9} {result.name}")
    if done.api_token_file is not None:
        print(f"# gateway API token (api_token) in {done.api_token_file}", file=sys.stderr)
    if not done.secured:
        print("# this broker enforces no ACLs (plain mode): no credentials made", file=sys.stderr)
        return 0
    print(f"# principal User:{done.principal}: {len(done.acls)} ACLs", file=sys.stderr)
    print(done.credentials)
    return 0


def cmd_deprovision(settings: Settings, args: argparse.Namespace) -> int:
    admin = admin_of(settings)
    done = deprovision_party(
        admin, topics_for(settings), args.party, args.id, keep_topics=args.keep_topics
    )
    print(f"credentials {'revoked' if done.credentials_removed else 'none on the broker'}")
    print(f"acls        {done.acls_deleted} deleted")
    for name in done.topics_deleted:
        print(f"deleted     {name}")
    if done.file_removed is not None:
        print(f"removed     {done.file_removed}")
    _purge_gateway(settings)
    return 0


def _purge_gateway(settings: Settings) -> None:
    """Remove at once what the party registered through the gateway (else the gateways do
    within a second, or at their next start)."""
    url = settings.database_url or database_for(settings).url()
    if url is None:
        print("# no PostgreSQL reachable: the gateways purge the party's state", file=sys.stderr)
        return
    from deploy.provision.revocation import purge_gateway_state

    removed = purge_gateway_state(settings.data_dir, url)
    print(f"gateway     {sum(removed.values())} rows removed")


def register(sub: Subparsers) -> None:
    """Add ``provision`` and ``deprovision`` to the ``refnet`` parser."""
    ids = "clinic_id, org_id, facility_id or directory admin id: [a-z0-9][a-z0-9-]{1,62}"
    provision = sub.add_parser(
        "provision",
        help="create a party's topics (and, on a secured broker, its credentials and ACLs)",
    )
    provision.add_argument(
        "party", choices=(*PARTY_KINDS, "list"), help="a kind of party, or list (those provisioned)"
    )
    provision.add_argument("id", nargs="?", help=ids)
    provision.set_defaults(func=cmd_provision)
    deprovision = sub.add_parser(
        "deprovision", help="revoke a party's credentials and ACLs and delete its topics"
    )
    deprovision.add_argument("party", choices=PARTY_KINDS)
    deprovision.add_argument("id", help=ids)
    deprovision.add_argument(
        "--keep-topics", action="store_true", help="revoke access only; keep the party's topics"
    )
    deprovision.set_defaults(func=cmd_deprovision)
