"""Where the gateway may post: webhook URLs, Subscription headers and the addresses behind them.

Every receiver is chosen by an untrusted party, so the gateway:

* parses a URL at registration exactly as the HTTP client will (:func:`url_problem`):
  what httpx could not send (``https://h:abc/``, ``https://xn--/``, port 99999, a
  space in the host) is refused with a reason, never discovered by the deliverer;
* accepts only headers that are printable ASCII and not the connection's own
  (:func:`header_problem`: no ``Host``, hop-by-hop or framing headers, no
  ``webhook-*`` signature headers);
* checks the *resolved* address when it connects (:class:`GuardedBackend`): no
  loopback, link-local, private, shared, multicast, unspecified or reserved address,
  IPv4 or IPv6 (IPv4-mapped and 6to4/NAT64 forms included), unless the development
  flag ``REFNET_GATEWAY_ALLOW_PRIVATE_WEBHOOKS`` allows them. The connection goes to
  the address that was checked (a second DNS answer cannot swap it);
* sorts any failure into a category (:func:`failure_category`), the only thing a
  party reads back in ``last_error``: nothing the target answered is echoed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import certifi
import httpcore
import httpx

#: headers a party may not set: the connection's own, the body's framing, the signature's
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "expect",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")
_VALUE = re.compile(r"^[\x20-\x7e]{0,900}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Policy:
    """What the gateway allows receivers and the parties that register them."""

    #: development and tests only: deliver to loopback, private and link-local addresses
    allow_private: bool = False
    #: one attempt's whole time, connect to last byte of the answer (seconds)
    attempt_deadline: float = 10.0
    #: attempts in flight at once (at most one per receiver)
    concurrency: int = 16
    #: webhooks and Subscriptions one party may hold
    max_webhooks: int = 10
    max_subscriptions: int = 10
    #: the largest Subscription resource stored (bytes of its JSON)
    max_subscription_bytes: int = 16_384


class BlockedAddress(httpcore.ConnectError):
    """The receiver's name resolved to an address the gateway does not post to."""


def url_problem(url: str, *, allow_http_loopback: bool) -> str | None:
    """Why ``url`` cannot receive deliveries, or None: parsed as httpx will send it."""
    if not isinstance(url, str) or len(url) > 2000:
        return "a webhook URL is a string of at most 2000 characters"
    try:
        parsed = httpx.URL(url)
        host = parsed.host
        port = parsed.port
        raw_host = parsed.raw_host.decode("ascii")
    except Exception:  # noqa: BLE001 - whatever httpx cannot parse is refused the same way
        return "not a URL the gateway can post to"
    if not host:
        return "a webhook URL needs a host"
    if parsed.userinfo:
        return "a webhook URL must not carry credentials"
    if port is not None and not 0 < port < 65536:
        return "a webhook URL's port must be between 1 and 65535"
    if not _valid_host(raw_host):
        return "a webhook URL's host must be a DNS name or an IP address"
    if parsed.scheme == "https":
        return None
    if parsed.scheme == "http" and host in LOOPBACK_NAMES and allow_http_loopback:
        return None
    return (
        "a webhook URL must be https:// (http:// to loopback only with "
        "REFNET_GATEWAY_DEV_HTTP_WEBHOOKS)"
    )


def _valid_host(raw_host: str) -> bool:
    try:
        ipaddress.ip_address(raw_host)
        return True
    except ValueError:
        pass
    name = raw_host.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def header_problem(line: object) -> str | None:
    """Why a Subscription header line ``Name: value`` cannot be sent, or None."""
    if not isinstance(line, str):
        return "each Subscription.channel.header is a string 'Name: value'"
    name, colon, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.match(name) or not value:
        return "each Subscription.channel.header is 'Name: value' with a valid name"
    if not _VALUE.match(value):
        return "a Subscription.channel.header value must be printable ASCII (at most 900)"
    if name.lower() in FORBIDDEN_HEADERS:
        return f"a Subscription.channel.header must not set {name.lower()}"
    return None


def parse_headers(lines: Iterable[str]) -> dict[str, str]:
    """The headers of valid lines (a stored line that is not valid is left out)."""
    headers: dict[str, str] = {}
    for line in lines:
        if header_problem(line) is None:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return headers


def blocked(address: IPAddress) -> bool:
    """True for any address that is not a public unicast one."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour):
            if embedded is not None and blocked(embedded):
                return True
        if address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return blocked(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and refusing blocked addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception = httpcore.ConnectError("the receiver's name did not resolve")
        for address in await self._resolve(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                failure = exc
        raise failure

    async def _resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, in order, once every one is allowed."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise httpcore.ConnectError("the receiver's name did not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not self.allow_private and any(blocked(a) for a in addresses):
            raise BlockedAddress("the receiver resolves to an address the gateway does not reach")
        return list(dict.fromkeys(str(a) for a in addresses))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("the gateway does not post to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def tls_context(extra_ca: str | None = None) -> ssl.SSLContext:
    """The system's CAs and certifi's, plus ``extra_ca`` (a PEM file) when given."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    if extra_ca:
        context.load_verify_locations(cafile=extra_ca)
    return context


def guarded_client(
    *, allow_private: bool, extra_ca: str | None = None, timeout: float = 10.0
) -> httpx.AsyncClient:
    """An httpx client that connects only to allowed addresses, with no proxy from the
    environment and no redirects."""
    context = tls_context(extra_ca)
    transport = httpx.AsyncHTTPTransport(verify=context)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(allow_private=allow_private),
    )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )


def failure_category(exc: BaseException) -> str:
    """What a party may read about a failed attempt: a category, never the target's words."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, BlockedAddress):
            return "blocked-address"
        if isinstance(cause, ssl.SSLError):
            return "tls"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        return "tls" if "ssl" in text or "certificate" in text else "refused"
    if isinstance(exc, httpx.InvalidURL | UnicodeError | ValueError):
        return "invalid-target"
    if isinstance(exc, httpx.HTTPError):
        return "network"
    return "error"


def status_category(status: int) -> str | None:
    """None for a 2xx answer, else ``http-3xx``, ``http-4xx`` or ``http-5xx``."""
    if 200 <= status < 300:
        return None
    return f"http-{min(max(status // 100, 1), 5)}xx"


__all__ = [
    "FORBIDDEN_HEADERS",
    "BlockedAddress",
    "GuardedBackend",
    "Policy",
    "blocked",
    "failure_category",
    "guarded_client",
    "header_problem",
    "parse_headers",
    "status_category",
    "tls_context",
    "url_problem",
]
