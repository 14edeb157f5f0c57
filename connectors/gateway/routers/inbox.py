"""The web inbox: the page itself, and who its token speaks for."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from connectors.gateway.dependencies import Party, Running

router = APIRouter()


@router.get("/inbox", response_class=HTMLResponse, tags=["inbox"])
async def inbox() -> HTMLResponse:
    page = (resources.files("connectors.gateway") / "inbox.html").read_text("utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/me", tags=["gateway"])
async def me(who: Party, gateway: Running) -> dict[str, str]:
    """Who the token speaks for, and (an organization the directory names) its name."""
    answer = {"party": who.kind, "id": who.id}
    name = gateway.names.get(who.id) if who.kind == "org" else None
    if name:
        answer["name"] = name
    return answer


__all__ = ["router"]
