from __future__ import annotations

import asyncio

import pytest

from tokenmeta.errors import BlockedAddress
from tokenmeta.fetch.guard import GuardedTransport, is_blocked_ip, normalize_allow_hosts


@pytest.mark.parametrize(
    "ip",
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
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "::127.0.0.1",
    ],
)
def test_non_public_addresses_are_blocked(ip: str) -> None:
    assert is_blocked_ip(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(ip: str) -> None:
    assert not is_blocked_ip(ip)


def test_allow_list_forms() -> None:
    allowed = normalize_allow_hosts(
        ["127.0.0.1:8080", "[::1]:9000", "http://Gw.Local:81/", "own.host"]
    )
    assert allowed == {"127.0.0.1:8080", "::1:9000", "gw.local:81", "own.host"}
    guard = GuardedTransport(allowed)
    assert guard.is_allowed("127.0.0.1", 8080)
    assert not guard.is_allowed("127.0.0.1", 8081)
    assert guard.is_allowed("own.host", 443)


def test_dns_answers_are_checked_all_and_the_first_is_pinned() -> None:
    answers = {"public.test": ["93.184.216.34"], "rebind.test": ["93.184.216.34", "127.0.0.1"]}

    async def fake_dns(host: str, port: int) -> list[str]:
        return answers[host]

    guard = GuardedTransport((), resolver=fake_dns)

    async def run() -> None:
        assert await guard.check("public.test", 443) == "93.184.216.34"
        with pytest.raises(BlockedAddress):
            await guard.check("rebind.test", 443)
        with pytest.raises(BlockedAddress):
            await guard.check("metadata.google.internal", 80)
        with pytest.raises(BlockedAddress):
            await guard.check("[::ffff:127.0.0.1]", 80)

    asyncio.run(run())
