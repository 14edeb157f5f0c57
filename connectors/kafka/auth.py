"""How every Kafka client of refnet authenticates: one value, three client dialects.

refnet talks to Kafka through aiokafka (the ingress, the view, the ledger sink,
benchmarks), Faust (the agents) and confluent-kafka (topic and ACL admin). A
:class:`KafkaAuth` says once how to reach a broker (plain, or SASL_SSL with
SCRAM-SHA-512 and a CA) and renders the keyword arguments each of them wants.
A party's credentials file (``refnet provision``) holds the librdkafka form in
its ``kafka`` member; :meth:`KafkaAuth.from_librdkafka` reads it back.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.errors import RefnetError

PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


class KafkaAuthError(RefnetError, ValueError):
    """Settings or a credentials file that cannot describe a Kafka connection."""


@dataclass(frozen=True)
class KafkaAuth:
    """Security of a Kafka connection (``PLAINTEXT``, the default, needs nothing)."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    #: PEM file of the CA that signed the broker's certificate
    ca_location: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise KafkaAuthError(
                f"security protocol {self.security_protocol!r} is not one of {sorted(PROTOCOLS)}"
            )
        if self.sasl and (not self.username or self.password is None):
            raise KafkaAuthError(f"{self.security_protocol} needs a SASL username and password")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_location)
        # The broker's certificate names the host it was made for; a local CA
        # issues it for the addresses the broker listens on.
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / admin clients."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return kwargs

    def librdkafka(self) -> dict[str, str]:
        """Configuration keys for confluent-kafka / librdkafka clients."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        config = {"security.protocol": self.security_protocol.lower()}
        if self.tls and self.ca_location:
            config["ssl.ca.location"] = self.ca_location
        if self.sasl:
            config.update(
                {
                    "sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": self.username or "",
                    "sasl.password": self.password or "",
                }
            )
        return config

    def faust(self) -> Any:
        """Faust's ``broker_credentials`` (None for PLAINTEXT)."""
        if self.security_protocol == "PLAINTEXT":
            return None
        import faust

        if self.sasl:
            return faust.SASLCredentials(
                username=self.username,
                password=self.password,
                ssl_context=self.ssl_context(),
                mechanism=self.sasl_mechanism,
            )
        return faust.SSLCredentials(self.ssl_context())

    @classmethod
    def from_librdkafka(cls, config: dict[str, Any]) -> KafkaAuth:
        """The librdkafka keys of a credentials file's ``kafka`` member."""
        protocol = str(config.get("security.protocol", "plaintext")).upper()
        return cls(
            security_protocol=protocol,
            sasl_mechanism=str(config.get("sasl.mechanism", "SCRAM-SHA-512")),
            username=config.get("sasl.username"),
            password=config.get("sasl.password"),
            ca_location=config.get("ssl.ca.location"),
        )

    @classmethod
    def from_file(cls, path: Path) -> tuple[str | None, KafkaAuth]:
        """``(bootstrap.servers, auth)`` from a party's credentials file."""
        try:
            document = json.loads(path.read_text())
            kafka = document["kafka"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KafkaAuthError(f"{path}: not a refnet credentials file ({exc})") from None
        if not isinstance(kafka, dict):
            raise KafkaAuthError(f"{path}: its 'kafka' member is not an object")
        return kafka.get("bootstrap.servers"), cls.from_librdkafka(kafka)


PLAINTEXT = KafkaAuth()

__all__ = ["PLAINTEXT", "KafkaAuth", "KafkaAuthError"]
