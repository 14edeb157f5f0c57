"""Webhook URLs and Subscription headers are parsed at registration as the HTTP client will
send them; what it could not send, or must not, is refused with a reason."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.subscriptions import TASK_TOPIC
from connectors.gateway.egress import blocked
from connectors.gateway.notifier import receiver_url
from connectors.gateway.routers.subscriptions import _rest_hook


def _url(url: str, *, dev: bool = False) -> str:
    return receiver_url(url, allow_http_loopback=dev, missing="missing")


@pytest.mark.parametrize(
    "url",
    [
        "https://h:abc/",
        "https://xn--/",
        "https://h:99999/",
        "https://h:0/",
        "https://exa mple.org/",
        "https://ex%41mple.org/",
        "https://-bad-.org/",
        "https://user:pw@example.org/",
        "https:///path",
        "http://example.org/",
        "ftp://example.org/",
        "https://" + "a" * 64 + ".org/",
    ],
)
def test_a_url_the_client_cannot_send_is_refused(url: str) -> None:
    with pytest.raises(GatewayInputError) as refused:
        _url(url, dev=True)
    assert refused.value.status == 422
    assert str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/hook",
        "https://example.org:8443/hook?x=1",
        "https://\u4f8b\u3048.jp/",
        "https://[2001:db8::1]/",
        "https://93.184.216.34/",
    ],
)
def test_a_url_the_client_can_send_is_accepted(url: str) -> None:
    assert _url(url) == url


def test_plain_http_only_to_loopback_and_only_in_development() -> None:
    assert _url("http://127.0.0.1:9/hook", dev=True)
    with pytest.raises(GatewayInputError):
        _url("http://127.0.0.1:9/hook")


def _subscription(headers: Any = None, payload: Any = None) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": "https://example.org/fhir"}
    if headers is not None:
        channel["header"] = headers
    if payload is not None:
        channel["_payload"] = payload
    return {"resourceType": "Subscription", "criteria": TASK_TOPIC, "channel": channel}


@pytest.mark.parametrize(
    "header",
    [
        "X-Note: caf\u00e9",
        "X-Note: a\r\nInjected: 1",
        "Host: metadata.internal",
        "host: metadata.internal",
        "Connection: close",
        "Transfer-Encoding: chunked",
        "Content-Length: 5",
        "Proxy-Authorization: Basic eDp5",
        "TE: trailers",
        "Upgrade: h2c",
        "Keep-Alive: 5",
        "webhook-signature: v1,xyz",
        "Bad Name: x",
        "NoColon",
        "Empty:",
        7,
    ],
)
def test_a_header_that_cannot_or_must_not_be_sent_is_refused(header: object) -> None:
    with pytest.raises(GatewayInputError):
        _rest_hook(_subscription([header]), allow_http=False)


def test_an_ordinary_header_is_kept() -> None:
    _, _, headers = _rest_hook(_subscription(["Authorization: Bearer abc.def"]), allow_http=False)
    assert headers == ["Authorization: Bearer abc.def"]


@pytest.mark.parametrize("payload", [{"extension": 5}, {"extension": "x"}, {"extension": {}}])
def test_a_payload_extension_that_is_not_an_array_is_refused(payload: object) -> None:
    with pytest.raises(GatewayInputError):
        _rest_hook(_subscription(payload=payload), allow_http=False)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address: str) -> None:
    assert not blocked(ipaddress.ip_address(address))
