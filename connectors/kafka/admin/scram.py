"""SCRAM-SHA-512 credentials on the broker: each party's username and password."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from connectors.kafka.admin.client import CHANGE_TIMEOUT, AdminError, admin_client, settle
from connectors.kafka.auth import PLAINTEXT, KafkaAuth

#: PBKDF2 iterations of a stored SCRAM credential (Kafka's minimum is 4096).
SCRAM_ITERATIONS = 8192


def upsert_scram(
    bootstrap: str,
    username: str,
    password: str,
    *,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
) -> None:
    """Create or replace ``username``'s SCRAM-SHA-512 credential."""
    admin = admin_client(bootstrap, auth)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    change = UserScramCredentialUpsertion(username, info, password.encode())
    futures = admin.alter_user_scram_credentials([change], request_timeout=timeout)
    settle(futures, "setting the SCRAM credential of", timeout)


def delete_scram(
    bootstrap: str, username: str, *, timeout: float = CHANGE_TIMEOUT, auth: KafkaAuth = PLAINTEXT
) -> bool:
    """Remove ``username``'s SCRAM-SHA-512 credential; False when it had none."""
    admin = admin_client(bootstrap, auth)
    change = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
    futures = admin.alter_user_scram_credentials([change], request_timeout=timeout)
    for user, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if "RESOURCE_NOT_FOUND" in str(exc):
                return False
            raise AdminError(f"deleting the SCRAM credential of {user}: {exc}") from exc
    return True


__all__ = ["SCRAM_ITERATIONS", "delete_scram", "upsert_scram"]
