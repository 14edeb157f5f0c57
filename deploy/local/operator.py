"""The operator of a secure embedded cluster: its super user's credentials file."""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path

from connectors.files import write_private_json
from connectors.kafka.auth import KafkaAuth
from deploy.local.kraft import OPERATOR, SCRAM_MECHANISM

#: The operator's (super user's) credentials file of a secure cluster, in its data dir.
OPERATOR_FILE = "operator.json"


class OperatorFile:
    """``operator.json`` (mode 0600): the operator's SCRAM login, librdkafka keys in ``kafka``."""

    def __init__(self, path: Path, ca_path: Path) -> None:
        self.path = path
        self.ca_path = ca_path

    def password(self) -> str:
        """The operator's password: the one on file, or a new one (kept from now on)."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            password = json.loads(self.path.read_text())["kafka"]["sasl.password"]
            if isinstance(password, str) and password:
                return password
        password = secrets.token_urlsafe(24)
        self.write("", password)
        return password

    def write(self, bootstrap: str, password: str | None = None) -> None:
        """(Re)write the file with the cluster's current address."""
        auth = KafkaAuth(
            security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            username=OPERATOR,
            password=password if password is not None else self.password(),
            ca_location=str(self.ca_path),
        )
        document = {
            "principal": f"User:{OPERATOR}",
            "role": "operator: a super user of this embedded cluster",
            "kafka": {"bootstrap.servers": bootstrap, **auth.librdkafka()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private_json(self.path, document)
