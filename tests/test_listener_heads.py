"""New heads over WebSocket wake the follower (anvil serves ws on its HTTP port); without a
socket it follows by polling."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from listeners.follower import Follower
from listeners.heads import ws_url_for
from listeners.rpc import Rpc
from nftwatch.localstack import chaintools as ct
from nftwatch.localstack.embedded import Anvil
from tests.support.polling import wait_for

CHAIN = 31337


def transfers(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.execute(text("SELECT count(*) FROM transfers")).scalar_one())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ws_url_for() -> None:
    assert ws_url_for("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert ws_url_for("https://node.example/v3/key") == "wss://node.example/v3/key"


@pytest.mark.parametrize("ws", ["anvil", "closed"])
def test_follower_wakes_on_new_heads_or_polls(anvil: Anvil, sessions, ws: str) -> None:
    w3 = ct.connect(anvil.url)
    nft = ct.deploy(w3, "DemoNFT", "Heads", "HD")
    url = ws_url_for(anvil.url) if ws == "anvil" else f"ws://127.0.0.1:{closed_port()}"
    # subscribed, the follower polls only every 10 minutes: anything it ingests came from a head;
    # without a socket it polls every 0.2 s
    with Rpc(anvil.url) as rpc:
        follower = Follower(
            rpc,
            sessions,
            CHAIN,
            [nft.address],
            start_block=w3.eth.block_number + 1,
            ws_url=url,
            ws_safety_poll=600.0,
        )
        stop = threading.Event()
        runner = threading.Thread(target=follower.run, args=(stop, 0.2))
        runner.start()
        try:
            heads = follower.heads
            assert heads is not None
            if ws == "anvil":
                wait_for("the subscription", heads.connected.is_set)
            else:
                wait_for("a failed connection", lambda: heads.failures > 0)
            polls = follower.stats.polls
            for token_id in range(1, 4):
                ct.mint(w3, nft, w3.eth.accounts[1], token_id)
                wait_for(f"mint {token_id} ingested", lambda n=token_id: transfers(sessions) == n)
            if ws == "anvil":
                assert heads.heads >= 3 and heads.connected.is_set()
                # one poll per head (plus at most one in flight when subscribing)
                assert follower.stats.polls - polls <= heads.heads + 1
            else:
                assert heads.heads == 0 and not heads.connected.is_set()
        finally:
            stop.set()
            runner.join(timeout=10)
        assert not runner.is_alive()
