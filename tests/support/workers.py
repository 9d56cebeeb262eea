"""``nftwatch worker`` processes started together, each logging to its own file: started,
waited on until every one says ``ready.``, and stopped; and what the workers stored, checked
against the chain and the content the demo collections published."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3

from nftwatch.demo import world
from nftwatch.demo.art import DemoToken
from nftwatch.localstack import chaintools
from store.models import Media, Token, Transfer


def start_workers(
    env: Mapping[str, str], logs: list[Path], *, queues: str = "resolve", pool: str = "solo"
) -> list[subprocess.Popen[bytes]]:
    """One worker per log file, each in a session of its own (so a signal reaches its children)."""
    command = [sys.executable, "-m", "nftwatch.cli", "worker", "--queues", queues, "--pool", pool]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=dict(env),
                    start_new_session=True,
                )
            )
    return workers


def wait_until_ready(
    workers: list[subprocess.Popen[bytes]],
    logs: list[Path],
    timeout: float,
    *,
    interval: float = 0.3,
) -> None:
    """Until every log says ``ready.``; a worker that exits first fails with its log's tail."""
    deadline = time.monotonic() + timeout
    while not all("ready." in log.read_text(errors="replace") for log in logs):
        dead = [w for w in workers if w.poll() is not None]
        assert not dead, logs[workers.index(dead[0])].read_text()[-2000:]
        assert time.monotonic() < deadline, "workers did not all become ready"
        time.sleep(interval)


def stop_workers(workers: list[subprocess.Popen[bytes]], *, grace: float | None = 30.0) -> None:
    """SIGTERM to each one still running, then up to ``grace`` s for each to exit before a
    SIGKILL; ``grace=None``: SIGKILL at once."""
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGTERM if grace is not None else signal.SIGKILL)
    if grace is None:
        return
    for w in workers:
        try:
            w.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)


def published(
    deployed: Sequence[world.Deployed],
) -> dict[tuple[str, int], tuple[world.Deployed, DemoToken]]:
    """Every token of the deployed collections, by (contract, token id)."""
    return {(d.address, t.token_id): (d, t) for d in deployed for t in d.collection.tokens}


def assert_tokens_as_published(
    session: Session, w3: Web3, deployed: Sequence[world.Deployed]
) -> list[Token]:
    """Every token of the deployed (and minted) collections is stored once, resolved, with its
    owner on chain, its published attributes and its image; every mint is one transfer row, no
    two alike; the stored media are the published images, each once. The stored tokens."""
    expected = published(deployed)
    tokens = list(session.scalars(select(Token)).all())
    assert {(t.contract, int(t.token_id)) for t in tokens} == set(expected)
    for t in tokens:
        d, demo = expected[(t.contract, int(t.token_id))]
        assert t.metadata_status == "ok", (t.contract, t.token_id, t.error_class)
        owner = chaintools.at(w3, "DemoNFT", d.address).functions.ownerOf(int(t.token_id)).call()
        assert t.owner == str(owner).lower()
        assert t.attributes == demo.attributes
        assert t.image_sha256 == hashlib.sha256(demo.image_png).hexdigest()
    # every mint once: as many rows as Transfer events on chain, no two alike
    mints = session.execute(select(Transfer.tx_hash, Transfer.log_index)).all()
    assert len(mints) == len(set(mints)) == len(expected)
    images = {hashlib.sha256(t.image_png).hexdigest() for _, t in expected.values()}
    assert set(session.scalars(select(Media.sha256))) == images
    return tokens
