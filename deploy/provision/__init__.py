"""Parties and their identities: what ``refnet provision`` and ``refnet deprovision`` do.

:mod:`.principals` names each party's principal and the ACLs the contract gives
it, :mod:`.files` writes its private files, :mod:`.parties` provisions and
deprovisions it (and the network's own identity), and :mod:`.access` says how a
command reaches Kafka.
"""

from deploy.provision.files import credentials_path
from deploy.provision.parties import (
    Admin,
    deprovision_party,
    provision_network,
    provision_party,
)
from deploy.provision.principals import (
    ProvisionError,
    network_acls,
    network_principal,
    party_principal,
)

__all__ = [
    "Admin",
    "ProvisionError",
    "credentials_path",
    "deprovision_party",
    "network_acls",
    "network_principal",
    "party_principal",
    "provision_network",
    "provision_party",
]
