"""The gateway's API tokens: one per party, issued by ``refnet provision``, stored hashed.

A token is ``rnt_`` and 43 URL-safe characters (256 random bits). The gateway
keeps only the SHA-256 of each token, in ``{REFNET_DATA_DIR}/gateway/tokens.json``
(mode 0600): ``{"<sha256 hex>": {"party": "org", "id": "bronx-pantry"}}``. A
high-entropy random token needs no slow hash: SHA-256 of it cannot be reversed
or guessed. Issuing a token again for the same party replaces its old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connectors.files import private_dir, write_private_json
from schemas.errors import RefnetError

GatewayPartyKind = Literal["clinic", "org", "facility"]
GATEWAY_PARTY_KINDS: tuple[GatewayPartyKind, ...] = ("clinic", "org", "facility")
TOKEN_PREFIX = "rnt_"  # noqa: S105 - a prefix, not a secret


class TokenStoreError(RefnetError, ValueError):
    """The token store file cannot be read as one."""


@dataclass(frozen=True, slots=True)
class PartyRef:
    """Who a token speaks for."""

    kind: GatewayPartyKind
    id: str

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.id}"


def tokens_path(data_dir: Path) -> Path:
    return data_dir / "gateway" / "tokens.json"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TokenStoreError(f"{path}: not a token store ({exc})") from None
    return document if isinstance(document, dict) else {}


_LOCK = threading.Lock()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time, across threads and processes (``refnet provision`` runs
    beside the gateway and other provisioning)."""
    private_dir(path)
    with _LOCK, open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def issue_token(
    data_dir: Path, kind: GatewayPartyKind, party_id: str, token: str | None = None
) -> str:
    """Store (the hash of) ``token``, or of a new one, as the party's only token; return it."""
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    path = tokens_path(data_dir)
    with _locked(path):
        document = {
            digest: party
            for digest, party in _read(path).items()
            if party != {"party": kind, "id": party_id}
        }
        document[token_hash(token)] = {"party": kind, "id": party_id}
        write_private_json(path, document, sort_keys=True)
    return token


def holds_token(data_dir: Path, kind: GatewayPartyKind, party_id: str, token: str) -> bool:
    """Whether ``token`` is the party's current token."""
    found = _read(tokens_path(data_dir)).get(token_hash(token))
    return found == {"party": kind, "id": party_id}


def revoke_token(data_dir: Path, kind: GatewayPartyKind, party_id: str) -> bool:
    """Forget the party's token; True if it had one."""
    path = tokens_path(data_dir)
    with _locked(path):
        document = _read(path)
        kept = {d: p for d, p in document.items() if p != {"party": kind, "id": party_id}}
        if len(kept) == len(document):
            return False
        write_private_json(path, kept, sort_keys=True)
    return True


class TokenStore:
    """Looks tokens up in the store file, re-reading it when it changes (new parties)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = tokens_path(data_dir)
        self._mtime: tuple[int, int, int] | None = None
        self._parties: dict[str, PartyRef] = {}
        self._generations: dict[PartyRef, str] = {}
        #: how many times the registry was read anew (a change to act on: revocation)
        self.version = 0

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            mtime = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            if self._mtime is not None or self.version == 0:
                self.version += 1
            self._parties, self._generations, self._mtime = {}, {}, None
            return
        if mtime == self._mtime:
            return
        parties = {}
        for digest, party in _read(self.path).items():
            if isinstance(party, dict) and party.get("party") in GATEWAY_PARTY_KINDS:
                parties[digest] = PartyRef(party["party"], str(party["id"]))
        self._parties, self._mtime = parties, mtime
        self._generations = {party: digest for digest, party in parties.items()}
        self.version += 1

    def lookup(self, token: str) -> PartyRef | None:
        self._refresh()
        return self._parties.get(token_hash(token))

    def generation(self, kind: str, party_id: str) -> str | None:
        """The SHA-256 of the party's current token (what its rows are made under), or None."""
        self._refresh()
        return self._generations.get(PartyRef(kind, party_id))  # type: ignore[arg-type]

    def generations(self) -> dict[tuple[str, str], str]:
        """Every provisioned party's current token generation."""
        self._refresh()
        return {(p.kind, p.id): digest for p, digest in self._generations.items()}

    def parties(self) -> list[PartyRef]:
        self._refresh()
        return sorted(set(self._parties.values()), key=lambda p: (p.kind, p.id))


__all__ = [
    "GATEWAY_PARTY_KINDS",
    "TOKEN_PREFIX",
    "GatewayPartyKind",
    "PartyRef",
    "TokenStore",
    "TokenStoreError",
    "holds_token",
    "issue_token",
    "revoke_token",
    "token_hash",
    "tokens_path",
]
