"""Topics, SCRAM credentials and ACLs on the broker, each applied idempotently.

Uses confluent-kafka's AdminClient: unlike aiokafka's admin client it has the
ACL and SCRAM calls that per-party credentials need (``refnet provision``).

- :mod:`.batches`: requests cut to what the broker accepts (:class:`BatchLimits`);
- :mod:`.client`: the admin client, its :class:`AdminError`, waiting on its futures;
- :mod:`.topics`: making topics match their specs (``refnet topics apply``), listing, deleting;
- :mod:`.partitions`: the state topics' partition count, which never changes;
- :mod:`.acls`: the ALLOW rules of each party;
- :mod:`.scram`: each party's SCRAM credential.
"""

from connectors.kafka.admin.acls import (
    CLUSTER,
    Acl,
    create_acls,
    delete_acls,
    delete_topic_acls,
    describe_acls,
    security_enabled,
)
from connectors.kafka.admin.batches import DEFAULT_LIMITS, BatchLimits
from connectors.kafka.admin.client import AdminError, admin_client
from connectors.kafka.admin.partitions import (
    PartitionChangeRefused,
    check_partitions,
    partition_advice,
    partition_problems,
)
from connectors.kafka.admin.scram import delete_scram, upsert_scram
from connectors.kafka.admin.topics import (
    BatchFailed,
    Outcome,
    TopicResult,
    apply_topics,
    delete_topics,
    list_topics,
)

__all__ = [
    "CLUSTER",
    "DEFAULT_LIMITS",
    "Acl",
    "AdminError",
    "BatchFailed",
    "BatchLimits",
    "Outcome",
    "PartitionChangeRefused",
    "TopicResult",
    "admin_client",
    "apply_topics",
    "check_partitions",
    "create_acls",
    "delete_acls",
    "delete_scram",
    "delete_topic_acls",
    "delete_topics",
    "describe_acls",
    "list_topics",
    "partition_advice",
    "partition_problems",
    "security_enabled",
    "upsert_scram",
]
