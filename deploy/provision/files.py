"""The private files provisioning writes: credentials and gateway API tokens (mode 0600)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from connectors.kafka.auth import KafkaAuth
from deploy.provision.principals import PartyKind

SCRAM_MECHANISM = "SCRAM-SHA-512"


def credentials_path(data_dir: Path, kind: PartyKind | Literal["network"], party_id: str) -> Path:
    name = "network.json" if kind == "network" else f"{kind}-{party_id}.json"
    return data_dir / "credentials" / name


def existing_password(path: Path, username: str) -> str | None:
    """The password in an earlier credentials file of the same principal (kept on re-runs)."""
    try:
        kafka = json.loads(path.read_text())["kafka"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if kafka.get("sasl.username") == username and isinstance(kafka.get("sasl.password"), str):
        return str(kafka["sasl.password"])
    return None


def client_config(bootstrap: str, username: str, password: str, ca: str | None) -> dict[str, str]:
    """The librdkafka keys of a credentials file, usable as they are by any client."""
    auth = KafkaAuth(
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM_MECHANISM,
        username=username,
        password=password,
        ca_location=ca,
    )
    return {"bootstrap.servers": bootstrap, **auth.librdkafka()}


def api_token_path(data_dir: Path, kind: PartyKind, party_id: str) -> Path:
    """Where a party's gateway API token is written on a plain broker (no credentials file)."""
    return data_dir / "gateway" / "api-tokens" / f"{kind}-{party_id}.json"


def current_api_token(data_dir: Path, kind: PartyKind, party_id: str, path: Path) -> str:
    """The party's gateway token: the one in ``path`` if still current, else a new one.

    Only its SHA-256 is kept by the gateway (connectors.gateway.tokens).
    """
    from connectors.gateway.tokens import holds_token, issue_token

    assert kind in ("clinic", "org", "facility")
    try:
        earlier = json.loads(path.read_text()).get("api_token")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if isinstance(earlier, str) and holds_token(data_dir, kind, party_id, earlier):
        return earlier
    return issue_token(data_dir, kind, party_id)
