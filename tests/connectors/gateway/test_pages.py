"""What the gateway tells browsers: framing, sniffing, referrers, and which scripts may run."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from connectors.gateway.app import GatewayConfig, create_app
from schemas.topics import Topics

Client = httpx.AsyncClient


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewayConfig(bootstrap="", topics=Topics(prefix="t"), data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


async def test_the_inbox_runs_only_its_own_script_and_is_never_framed(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/inbox")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    policy = dict(
        [*part.strip().split(" ", 1), ""][:2]
        for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert scripts
    assert sorted(policy["script-src"].split()) == sorted({_sha256(s) for s in scripts})
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert re.search(r"<script[^>]*\bsrc=", page.text) is None


async def test_every_api_answer_carries_the_headers(client: httpx.AsyncClient) -> None:
    for answer in (
        await client.get("/fhir/Task"),
        await client.get("/openapi.json"),
        await client.get("/nowhere"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def test_no_page_loads_a_cdn_script_and_the_openapi_description_stays(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/docs", "/redoc"):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert "cdn" not in answer.text.lower()
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "refnet gateway"
