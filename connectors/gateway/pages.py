"""What every answer of the gateway tells a browser, and no page that loads a CDN script.

Every response carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
no-referrer``, ``X-Frame-Options: DENY`` and a Content-Security-Policy with
``frame-ancestors 'none'``. The web inbox's policy allows only its own inline
script and styles, by their SHA-256 hashes (computed from ``inbox.html`` when the
app is built), and requests to its own origin. Swagger UI and ReDoc, which load
their scripts from a CDN without integrity, are not served: ``/openapi.json`` is.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import Response

#: what the JSON API answers (nothing in it is ever to be run or framed)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: pages whose scripts come from a CDN without integrity
CDN_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_STYLE_ATTR = re.compile(r'style="([^"]*)"')


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_policy(html: str) -> str:
    """The Content-Security-Policy of a page: its own inline scripts and styles only."""
    scripts = " ".join(sorted({_hash(s) for s in _SCRIPT.findall(html)})) or "'none'"
    styles = sorted({_hash(s) for s in _STYLE.findall(html)})
    attributes = sorted({_hash(s) for s in _STYLE_ATTR.findall(html)})
    style_src = " ".join([*styles, *(["'unsafe-hashes'", *attributes] if attributes else [])])
    style_src = style_src or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src {style_src}; "
        "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def secure_pages(app: FastAPI) -> None:
    """Add the headers to every response of ``app`` and drop its CDN-loaded pages."""
    inbox = page_policy((resources.files("connectors.gateway") / "inbox.html").read_text("utf-8"))
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in CDN_PAGES
    ]

    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in COMMON.items():
            response.headers.setdefault(name, value)
        policy = inbox if request.url.path == "/inbox" else API_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        return response

    app.middleware("http")(headers)


__all__ = ["API_POLICY", "page_policy", "secure_pages"]
