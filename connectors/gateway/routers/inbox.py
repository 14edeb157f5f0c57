"""The web inbox: the page itself, and who its token speaks for."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from connectors.gateway.dependencies import Party

router = APIRouter()


@router.get("/inbox", response_class=HTMLResponse, tags=["inbox"])
async def inbox() -> HTMLResponse:
    page = (resources.files("connectors.gateway") / "inbox.html").read_text("utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/me", tags=["gateway"])
async def me(who: Party) -> dict[str, str]:
    return {"party": who.kind, "id": who.id}


__all__ = ["router"]
