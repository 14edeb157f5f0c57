"""What a route depends on: the running gateway, and who is asking.

Every request names its party with ``Authorization: Bearer <api_token>``; a
route asks for :data:`Party` (any party), :data:`Clinic`, :data:`Org`,
:data:`Facility`, or :data:`Referrer` (a clinic or an organization).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.gateway.state import Gateway
from connectors.gateway.tokens import PartyRef


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


#: the app's running gateway (views, store, deliverer)
Running = Annotated[Gateway, Depends(_gateway)]


async def _party(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> PartyRef:
    gateway: Gateway = request.app.state.gateway
    scheme, _, token = (authorization or "").partition(" ")
    found = gateway.tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise StarletteHTTPException(401, "a valid Authorization: Bearer token is required")
    request.state.party = found.label
    return found


Party = Annotated[PartyRef, Depends(_party)]


def _clinic(who: Party) -> PartyRef:
    if who.kind != "clinic":
        raise StarletteHTTPException(403, "only a clinic's token may do this")
    return who


def _org(who: Party) -> PartyRef:
    if who.kind != "org":
        raise StarletteHTTPException(403, "only an organization's token may do this")
    return who


def _facility(who: Party) -> PartyRef:
    if who.kind != "facility":
        raise StarletteHTTPException(403, "only a facility's token may do this")
    return who


def _referrer(who: Party) -> PartyRef:
    if who.kind not in ("clinic", "org"):
        raise StarletteHTTPException(403, "only a clinic's or an organization's token may do this")
    return who


Clinic = Annotated[PartyRef, Depends(_clinic)]
Org = Annotated[PartyRef, Depends(_org)]
Facility = Annotated[PartyRef, Depends(_facility)]
Referrer = Annotated[PartyRef, Depends(_referrer)]

__all__ = ["Clinic", "Facility", "Org", "Party", "Referrer", "Running"]
