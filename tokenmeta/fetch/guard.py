"""The SSRF guard: an httpx transport that refuses addresses a token URI must never reach.

Every request (the first one and each redirect, which the fetcher follows itself) passes through
``GuardedTransport``: the host is resolved, every address it resolves to is checked, and the request
is then sent to the checked address itself (the URL's host is replaced by the IP; ``Host`` and TLS
SNI keep the name), so a second DNS answer cannot swap in a private address (DNS rebinding).

Refused: anything that is not globally routable — private, loopback, link-local (which holds the
cloud metadata address 169.254.169.254), multicast, unspecified, reserved, CGNAT 100.64/10,
documentation ranges — in IPv4 and IPv6, with IPv4 embedded in IPv6 (``::ffff:a.b.c.d``, NAT64,
6to4, Teredo) unwrapped and checked as IPv4. Hosts on the allow-list (the user's own gateways,
``host`` or ``host:port``) are exempt.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import certifi
import httpx

from tokenmeta.errors import BlockedAddress, UpstreamUnavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def is_blocked_ip(address: str | IPAddress) -> bool:
    """True for every address that is not a public unicast one."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return True
        inner = _embedded_v4(ip)
        if inner is not None:
            return is_blocked_ip(inner)
    return ip.is_multicast or not ip.is_global


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def normalize_allow_hosts(hosts: Iterable[str]) -> frozenset[str]:
    """``host``, ``host:port`` and ``[v6]:port`` entries, lower-cased, brackets removed."""
    out = set()
    for entry in hosts:
        text = entry.strip().lower()
        if "://" in text:
            url = httpx.URL(text)
            out.add(f"{normalize_host(url.host)}:{url.port or _default_port(url.scheme)}")
            continue
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            out.add(f"{host}{rest}" if rest.startswith(":") else host)
        else:
            out.add(text)
    return frozenset(out)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one loads the CA bundle, which cost more
    than a quarter of a resolve worker's CPU when every batch made its own."""
    return ssl.create_default_context(cafile=certifi.where())


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolve, check and pin the address of every request before it is sent."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_hosts = normalize_allow_hosts(allow_hosts)
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0, verify=shared_ssl_context())
        self._resolve = resolver

    def is_allowed(self, host: str, port: int) -> bool:
        host = normalize_host(host)
        return host in self.allow_hosts or f"{host}:{port}" in self.allow_hosts

    async def check(self, host: str, port: int) -> str | None:
        """The address to connect to (None for an allow-listed host); raises BlockedAddress."""
        if self.is_allowed(host, port):
            return None
        name = normalize_host(host)
        if name in _METADATA_HOSTS:
            raise BlockedAddress(f"refused cloud metadata host {host}")
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            ip = None
        if ip is not None:
            if is_blocked_ip(ip):
                raise BlockedAddress(f"refused non-public address {name}")
            return str(ip)
        try:
            addresses = await self._resolve(name, port)
        except OSError as exc:
            raise UpstreamUnavailable(f"cannot resolve {name}: {exc}") from None
        if not addresses:
            raise UpstreamUnavailable(f"{name} resolves to no address")
        # Refuse when ANY answer is private: a mixed answer is how rebinding attacks start.
        for address in addresses:
            if is_blocked_ip(address.split("%", 1)[0]):
                raise BlockedAddress(f"refused {name}: it resolves to non-public {address}")
        return addresses[0]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or _default_port(url.scheme)
        pinned = await self.check(url.host, port)
        if pinned is not None:
            # Host header is already set from the original URL; TLS must still check the name.
            request.url = url.copy_with(host=pinned)
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
