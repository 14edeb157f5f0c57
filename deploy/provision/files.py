"""The private files provisioning writes: credentials and gateway API tokens (mode 0600)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from connectors.kafka.auth import KafkaAuth
from deploy.provision.principals import PARTY_KINDS, PartyKind

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


def provisioned_parties(data_dir: Path) -> list[tuple[str, str, Path | None]]:
    """The parties provisioned in ``data_dir``: (kind, id, credentials file or None).

    From the gateway's token registry (clinics, organizations, facilities) and the
    credentials files of a secured broker (those and directory admins).
    """
    from connectors.gateway.tokens import TokenStore

    found: dict[tuple[str, str], Path | None] = {
        (party.kind, party.id): None for party in TokenStore(data_dir).parties()
    }
    for path in sorted((data_dir / "credentials").glob("*.json")):
        kind, _, party_id = path.stem.partition("-")
        if kind in PARTY_KINDS and party_id:
            found[(kind, party_id)] = path
    return [(kind, party_id, path) for (kind, party_id), path in sorted(found.items())]
