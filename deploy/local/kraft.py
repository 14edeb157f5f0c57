"""The configuration of each node of the embedded KRaft cluster (plain or secure).

Every node runs broker and controller in one process (combined mode); the
cluster's controllers are a static quorum of all its nodes, so a cluster of
three keeps its metadata quorum (and its partitions' leaders) when one dies.

Listeners of one node, plain mode: ``PLAINTEXT`` (clients, and the brokers
among themselves) and ``CONTROLLER`` (KRaft, PLAINTEXT), both on the
configured host.

Secure mode (``refnet dev up --secure``):

* ``CLIENT``: SASL_SSL, SCRAM-SHA-512 over TLS; every client, the network's
  own workers included, authenticates with a username and password;
* ``INTERNAL`` (brokers among themselves) and ``CONTROLLER`` (KRaft): TLS with
  client certificates required (mutual TLS). Only a holder of a certificate
  signed by the local CA gets in, as ``User:CN=refnet-broker``, a super user;
* the ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``:
  what no ACL allows is denied; ``super.users`` are the operator principal
  (``refnet-operator``, whose SCRAM credentials are written at format time)
  and the brokers' certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from deploy.local.ca import BROKER_PRINCIPAL, TlsFiles

HERE = Path(__file__).resolve().parent
PROPERTIES_TEMPLATE = HERE / "server.properties.template"

#: The super user of a secure embedded cluster: it creates topics, credentials and ACLs.
OPERATOR = "refnet-operator"
SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class NodePorts:
    node_id: int
    port: int
    controller_port: int
    #: the brokers' own listener (secure mode only; plain mode shares the client one)
    internal_port: int | None = None


def voters(host: str, nodes: list[NodePorts]) -> str:
    return ",".join(f"{n.node_id}@{host}:{n.controller_port}" for n in nodes)


def render(
    *,
    host: str,
    node: NodePorts,
    nodes: list[NodePorts],
    log_dirs: Path,
    tls: TlsFiles | None,
) -> str:
    """``server.properties`` of ``node`` in a cluster of ``nodes``; ``tls`` set: secure mode."""
    replication = min(3, len(nodes))
    min_isr = 2 if replication >= 3 else 1
    if tls is None:
        listeners = f"PLAINTEXT://{host}:{node.port},CONTROLLER://{host}:{node.controller_port}"
        advertised = f"PLAINTEXT://{host}:{node.port}"
        protocol_map = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        inter_broker = "PLAINTEXT"
        security = ""
    else:
        assert node.internal_port is not None
        listeners = (
            f"CLIENT://{host}:{node.port},INTERNAL://{host}:{node.internal_port},"
            f"CONTROLLER://{host}:{node.controller_port}"
        )
        advertised = f"CLIENT://{host}:{node.port},INTERNAL://{host}:{node.internal_port}"
        protocol_map = "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
        inter_broker = "INTERNAL"
        security = secure_block(tls)
    return Template(PROPERTIES_TEMPLATE.read_text()).substitute(
        node_id=node.node_id,
        voters=voters(host, nodes),
        listeners=listeners,
        advertised_listeners=advertised,
        inter_broker_listener=inter_broker,
        protocol_map=protocol_map,
        log_dirs=str(log_dirs),
        replication=replication,
        min_isr=min_isr,
        security=security,
    )


def secure_block(tls: TlsFiles) -> str:
    mechanism = SCRAM_MECHANISM.lower()
    return "\n".join(
        [
            "# Secure mode: SCRAM-SHA-512 over TLS for clients; mutual TLS between brokers and",
            "# to the controllers; what no ACL allows is denied.",
            f"listener.name.client.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.client.{mechanism}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.broker}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_cert}",
            "listener.name.internal.ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{OPERATOR};{BROKER_PRINCIPAL}",
            "",
        ]
    )


__all__ = ["OPERATOR", "SCRAM_MECHANISM", "NodePorts", "render", "secure_block", "voters"]
