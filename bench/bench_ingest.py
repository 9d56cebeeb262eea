"""Ingest benchmark: recorded-shape ``eth_getLogs`` responses -> decoded events -> rows committed
in Postgres (events, token rows, ERC-1155 balances, outbox, checkpoint), through the same code the
backfill runs: ``decode_logs``, then ``prepare_batch`` on the reading thread and
``record_prepared`` on the writer thread, under ``bulk_tuning``.

    python bench/bench_ingest.py [--logs 100000] [--database-url URL | --locale en_US.UTF-8]
                                 [--repeat 3] [--no-etl | --etl-sweep]

The logs are synthetic but real-shaped (hex JSON as a node returns it): ERC-721 transfers and
mints, ERC-1155 batches, Seaport OrderFulfilled sales and ERC-20 noise. Prints NFT logs/s end to
end (best and median of --repeat runs), decode-only rates, and the ratio against web3.py's ABI
event decoding of the same logs, all measured in this run; then the same end to end with the hex
columns in the database's default collation beside migration 0007's "C", turn about. Without
--database-url it starts an embedded Postgres.

Then ethereum-etl 2.4.2, the anchor, as its users run it (``etl_compare.py``): its own commands
(``ethereumetl stream -e token_transfer`` into Postgres with psycopg2, and
``export_token_transfers`` to CSV loaded with COPY) against a loopback JSON-RPC endpoint serving
the same logs (``etl_rpc.py``), at their defaults and at tuned batch sizes and workers
(``--etl-sweep``: a wider grid). Prints ours / etl at its defaults and at its best.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import etl_compare
from eth_abi import encode
from etl_rpc import RecordedChain, RpcServer
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from listeners import decode as d
from listeners.backfill import chunk_job, prepare_decoded
from listeners.markets import seaport as seaport_market
from listeners.pipeline import Writer, bulk_tuning
from store.chain import recompute_tokens, staging
from store.models import PRICE_IN_ETHER
from store.records import BlockHeader

# migration 0007's statements, for the side-by-side run with the default collation
hex_collation = importlib.import_module("migrations.versions.0007_hex_columns_collate_c")


def _phase(q: str) -> str:
    if q.startswith("COPY _st_delta"):
        return "tokens: COPY deltas"
    if q.startswith("COPY _st_balance"):
        return "balances: COPY deltas"
    if q.startswith("COPY"):
        return f"events: COPY {q.split()[1]}"
    rules = (
        ("INTO outbox", "outbox: INSERT"),
        ("INTO balances", "balances: merge"),
        ("MERGE INTO balances", "balances: merge"),
        ("INTO tokens", "tokens: merge/recompute"),
        ("UPDATE _st_delta", "tokens: stored/merge marks"),
        ("INTO blocks", "blocks: INSERT"),
        ("checkpoints", "checkpoint"),
        ("pg_advisory", "advisory lock"),
        ("SELECT EXISTS", "existence checks"),
        ("CREATE TEMP", "staging tables (CREATE IF NOT EXISTS)"),
    )
    for needle, name in rules:
        if needle in q:
            return name
    if q.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
        return "savepoints"
    return q[:30]


class _Phases:
    """Seconds spent per kind of statement inside ``record_prepared`` (bench instrumentation: a
    psycopg cursor class that times execute/executemany/copy by the statement's leading words)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, sql: Any, dt_: float) -> None:
        self.mark("  " + _phase(" ".join(str(sql).split())), dt_)

    def mark(self, label: str, dt_: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + dt_

    def cursor_class(self) -> Any:
        import psycopg

        phases = self

        class Timed(psycopg.Cursor):
            def execute(self, query: Any, *a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return super().execute(query, *a, **k)
                finally:
                    phases.add(query, time.perf_counter() - t)

            def executemany(self, query: Any, *a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return super().executemany(query, *a, **k)
                finally:
                    phases.add(query, time.perf_counter() - t)

            @contextlib.contextmanager
            def copy(self, statement: Any, *a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    with super().copy(statement, *a, **k) as cp:
                        yield cp
                finally:
                    phases.add(statement, time.perf_counter() - t)

        return Timed


def _word(n: int) -> str:
    return "0x" + format(n, "064x")


def _addr_topic(a: str) -> str:
    return "0x" + "0" * 24 + a[2:]


def make_logs(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[BlockHeader], int]:
    """``n`` logs over blocks of 200; returns (logs, headers, NFT log count)."""
    rng = random.Random(seed)
    nfts = ["0x" + format(rng.getrandbits(160), "040x") for _ in range(20)]
    multis = ["0x" + format(rng.getrandbits(160), "040x") for _ in range(3)]
    erc20 = "0x" + format(rng.getrandbits(160), "040x")
    seaport = "0x00000000000000adc04c56bf30ac9d3c0aaf14dc"
    users = ["0x" + format(rng.getrandbits(160), "040x") for _ in range(500)]
    logs: list[dict[str, Any]] = []
    headers: list[BlockHeader] = []
    nft_logs = 0
    next_id = {c: 0 for c in nfts}
    per_block = 200
    parent = "0x" + "00" * 32
    for b in range(n // per_block + 1):
        bh = "0x" + format(rng.getrandbits(256), "064x")
        headers.append(BlockHeader(b + 1, bh, parent, 1_700_000_000 + 12 * b))
        parent = bh
        for i in range(min(per_block, n - b * per_block)):
            tx = "0x" + format(rng.getrandbits(256), "064x")
            base = {
                "blockNumber": hex(b + 1),
                "blockHash": bh,
                "transactionHash": tx,
                "logIndex": hex(i),
                "transactionIndex": hex(i),
                "removed": False,
            }
            r = rng.random()
            if r < 0.3:  # ERC-20 noise
                logs.append(
                    {
                        **base,
                        "address": erc20,
                        "topics": [
                            d.TRANSFER,
                            _addr_topic(rng.choice(users)),
                            _addr_topic(rng.choice(users)),
                        ],
                        "data": _word(rng.getrandbits(64)),
                    }
                )
                continue
            nft_logs += 1
            if r < 0.85:  # ERC-721 mint or transfer
                c = rng.choice(nfts)
                if next_id[c] < 50 or rng.random() < 0.3:
                    tid, frm = next_id[c], d.ZERO
                    next_id[c] += 1
                else:
                    tid, frm = rng.randrange(next_id[c]), rng.choice(users)
                logs.append(
                    {
                        **base,
                        "address": c,
                        "topics": [
                            d.TRANSFER,
                            _addr_topic(frm),
                            _addr_topic(rng.choice(users)),
                            _word(tid),
                        ],
                        "data": "0x",
                    }
                )
            elif r < 0.93:  # ERC-1155 batch of 4
                ids = [rng.randrange(100) for _ in range(4)]
                data = encode(["uint256[]", "uint256[]"], [ids, [1, 2, 3, 4]])
                logs.append(
                    {
                        **base,
                        "address": rng.choice(multis),
                        "topics": [
                            d.TRANSFER_BATCH,
                            _addr_topic(rng.choice(users)),
                            _addr_topic(rng.choice(users)),
                            _addr_topic(rng.choice(users)),
                        ],
                        "data": "0x" + data.hex(),
                    }
                )
            else:  # Seaport sale of an ERC-721 for ETH with a fee
                c = rng.choice(nfts)
                seller, buyer = rng.choice(users), rng.choice(users)
                price = rng.randrange(10**16, 10**19)
                data = encode(
                    [
                        "bytes32",
                        "address",
                        "(uint8,address,uint256,uint256)[]",
                        "(uint8,address,uint256,uint256,address)[]",
                    ],
                    [
                        b"\x01" * 32,
                        buyer,
                        [(2, c, rng.randrange(max(1, next_id[c])), 1)],
                        [
                            (0, d.ZERO, 0, price * 39 // 40, seller),
                            (0, d.ZERO, 0, price // 40, users[0]),
                        ],
                    ],
                )
                logs.append(
                    {
                        **base,
                        "address": seaport,
                        "topics": [
                            seaport_market.ORDER_FULFILLED,
                            _addr_topic(seller),
                            _addr_topic(d.ZERO),
                        ],
                        "data": "0x" + data.hex(),
                    }
                )
    return logs, headers, nft_logs


def web3_decode(logs: list[dict[str, Any]]) -> int:
    """The same decoding with web3.py's ABI machinery (the way a contract.events filter does)."""
    from eth_utils import to_bytes
    from hexbytes import HexBytes
    from web3 import Web3
    from web3._utils.events import get_event_data

    w3 = Web3()
    abi_721 = {
        "anonymous": False,
        "name": "Transfer",
        "type": "event",
        "inputs": [
            {"indexed": True, "name": "from", "type": "address"},
            {"indexed": True, "name": "to", "type": "address"},
            {"indexed": True, "name": "tokenId", "type": "uint256"},
        ],
    }
    abi_batch = {
        "anonymous": False,
        "name": "TransferBatch",
        "type": "event",
        "inputs": [
            {"indexed": True, "name": "operator", "type": "address"},
            {"indexed": True, "name": "from", "type": "address"},
            {"indexed": True, "name": "to", "type": "address"},
            {"indexed": False, "name": "ids", "type": "uint256[]"},
            {"indexed": False, "name": "values", "type": "uint256[]"},
        ],
    }
    item = [
        {"name": "itemType", "type": "uint8"},
        {"name": "token", "type": "address"},
        {"name": "identifier", "type": "uint256"},
        {"name": "amount", "type": "uint256"},
    ]
    abi_sea = {
        "anonymous": False,
        "name": "OrderFulfilled",
        "type": "event",
        "inputs": [
            {"indexed": False, "name": "orderHash", "type": "bytes32"},
            {"indexed": True, "name": "offerer", "type": "address"},
            {"indexed": True, "name": "zone", "type": "address"},
            {"indexed": False, "name": "recipient", "type": "address"},
            {"indexed": False, "name": "offer", "type": "tuple[]", "components": item},
            {
                "indexed": False,
                "name": "consideration",
                "type": "tuple[]",
                "components": [*item, {"name": "recipient", "type": "address"}],
            },
        ],
    }
    count = 0
    for log in logs:
        t0 = log["topics"][0]
        if t0 == d.TRANSFER:
            if len(log["topics"]) != 4:
                continue
            abi: dict[str, Any] = abi_721
        elif t0 == d.TRANSFER_BATCH:
            abi = abi_batch
        elif t0 == seaport_market.ORDER_FULFILLED:
            abi = abi_sea
        else:
            continue
        entry = {
            **log,
            "topics": [HexBytes(t) for t in log["topics"]],
            "data": HexBytes(to_bytes(hexstr=log["data"])),
            "blockNumber": int(log["blockNumber"], 16),
            "logIndex": int(log["logIndex"], 16),
            "transactionIndex": int(log["transactionIndex"], 16),
        }
        get_event_data(w3.codec, abi, entry)
        count += 1
    return count


def _fetch_logs(url: str, headers: list[BlockHeader], blocks_per_call: int) -> float:
    """Seconds to fetch every log from the loopback endpoint with ``eth_getLogs``, one call per
    ``blocks_per_call`` blocks, and parse the JSON: what our side would add before its ingest
    (which starts from the parsed logs) if it were not overlapped with it."""
    import json
    import urllib.request

    numbers = sorted(h.number for h in headers)
    t0 = time.perf_counter()
    got = 0
    for lo in range(numbers[0], numbers[-1] + 1, blocks_per_call):
        hi = min(lo + blocks_per_call - 1, numbers[-1])
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs"}
        body["params"] = [{"fromBlock": hex(lo), "toBlock": hex(hi)}]
        req = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as r:
            got += len(json.loads(r.read())["result"])
    return time.perf_counter() - t0


def _print_etl(
    runs: list[etl_compare.EtlRun | str],
    logs: list[dict[str, Any]],
    nft_logs: int,
    t_e2e: float,
    fetch_s: float,
    blocks_per_call: int,
    in_process: tuple[float, int] | None,
) -> None:
    rows, erc721 = etl_compare.expected_rows(logs)
    n = len(logs)
    print(
        "ethereum-etl 2.4.2 through its own command line (own venv, psycopg2), against a loopback "
        "JSON-RPC endpoint serving these logs (blocks with transactions and receipts for stream, "
        "a log filter for export_token_transfers), into the same Postgres:"
    )
    print(
        f"  it stores ERC-20 and ERC-721 Transfer logs as token_transfers rows ({rows:,} here, "
        f"{erc721:,} ERC-721); it does not decode ERC-1155 TransferSingle/TransferBatch nor "
        "Seaport sales, and keeps no tokens, balances, outbox or checkpoint"
    )
    valid: list[etl_compare.EtlRun] = []
    for r in runs:
        if isinstance(r, str):
            print(f"  failed: {r}")
            continue
        if r.stored == rows:
            valid.append(r)
            ok = "all rows stored"
        else:
            ok = f"only {r.stored:,} of {rows:,} rows stored: not counted"
        tries = f", best of {len(r.seconds)}" if len(r.seconds) > 1 else ""
        default = "  (its defaults)" if r.setting in etl_compare.DEFAULTS else ""
        print(
            f"  {r.setting.label():<42} {r.best:6.2f} s {n / r.best:>7,.0f} logs/s "
            f"{erc721 / r.best:>7,.0f} ERC-721/s; {ok}{tries}{default}; the endpoint used "
            f"{r.server_cpu:.1f} s CPU; {sum(r.calls.values()):,} calls"
        )
    print(
        f"  ours: {t_e2e:.2f} s, {n / t_e2e:,.0f} logs/s ({nft_logs / t_e2e:,.0f} NFT logs/s) from "
        f"parsed logs; fetching them from the same endpoint first (eth_getLogs per "
        f"{blocks_per_call} blocks, not overlapped) adds {fetch_s:.2f} s: "
        f"{n / (t_e2e + fetch_s):,.0f} logs/s"
    )
    if in_process is not None:
        secs, stored = in_process
        print(
            f"  not a command: its extractor and Postgres exporter alone, called in-process on "
            f"the parsed logs (no JSON-RPC, no blocks or receipts; etl_runner.py): {secs:.2f} s, "
            f"{n / secs:,.0f} logs/s, {stored:,} rows stored; ours / that = {secs / t_e2e:.1f}x"
        )
    if not valid:
        print("ours / etl: not measured (no run stored every row)")
        return
    best = min(valid, key=lambda r: r.best)
    at_defaults = [r for r in valid if r.setting in etl_compare.DEFAULTS]
    shown = [("defaults", min(at_defaults, key=lambda r: r.best))] if at_defaults else []
    for name, r in [*shown, ("best tuned", best)]:
        print(
            f"ours / etl ({name}: {r.setting.label()}): {r.best / t_e2e:.1f}x "
            f"(same {n:,} logs, time to rows committed; {r.best / (t_e2e + fetch_s):.1f}x with "
            "our fetch added)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=20_000, help="logs per recorded batch")
    ap.add_argument("--database-url")
    ap.add_argument(
        "--locale",
        help="embedded database's locale, e.g. en_US.UTF-8 as in the postgres image "
        "(default: the server's C.UTF-8; the OS must have the locale: localedef -i en_US -f UTF-8)",
    )
    ap.add_argument("--no-etl", action="store_true", help="skip the ethereum-etl comparison")
    ap.add_argument(
        "--etl-sweep",
        action="store_true",
        help="run ethereum-etl at a wider grid of settings (etl_compare.SWEEP, about 10 minutes "
        "more) instead of the few tuned ones",
    )
    ap.add_argument("--repeat", type=int, default=3, help="end-to-end runs (best and median)")
    args = ap.parse_args()

    logs, headers, nft_logs = make_logs(args.logs)
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}")
    print(f"{len(logs):,} logs ({nft_logs:,} NFT logs, {len(logs) - nft_logs:,} ERC-20 noise)")

    server = None
    url = args.database_url
    if url is None:
        from nftwatch.localstack.embedded import EmbeddedPostgres
        from store.db import upgrade

        server = EmbeddedPostgres(Path(tempfile.mkdtemp()), persistent=False)
        url = server.start()
        if args.locale:  # a database in that locale, as the usual Postgres image creates
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f"CREATE DATABASE bench TEMPLATE template0 LOCALE '{args.locale}'"))
            admin.dispose()
            url = url.replace("/postgres?", "/bench?")
        upgrade(url)
    engine = create_engine(url)
    factory = sessionmaker(engine)
    truncate = text(
        "TRUNCATE transfers, sales, listings, tokens, balances, blocks, outbox, checkpoints"
    )
    try:
        with engine.begin() as c:
            c.execute(truncate)
        t0 = time.perf_counter()
        decoded_only = d.decode_logs(logs)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_web3 = web3_decode(logs)
        t_web3 = time.perf_counter() - t0

        by_number = {h.number: h for h in headers}

        def ingest(*, pipelined: bool, incremental: bool, phases: _Phases | None = None) -> float:
            # Every run starts from the same state: empty tables, and no dirty buffers or unrecycled
            # WAL left by the previous run (without the CHECKPOINT, the runs after the first few
            # paid for writing out their predecessors' pages: a fifth slower).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(truncate)
                c.execute(text("CHECKPOINT"))
            t0 = time.perf_counter()
            with bulk_tuning():  # as the backfill does
                _run(pipelined, incremental, phases)
            return time.perf_counter() - t0

        def _run(pipelined: bool, incremental: bool, phases: _Phases | None) -> None:
            writer = Writer(factory) if pipelined else None
            for i in range(0, len(logs), args.chunk):
                chunk = logs[i : i + args.chunk]
                t = time.perf_counter()
                dec = d.decode_logs(chunk)
                if phases is not None:
                    phases.mark("decode (Python, no DB)", time.perf_counter() - t)
                    t = time.perf_counter()
                hs = [by_number[n] for n in sorted(dec.block_numbers())]
                batch = prepare_decoded(1, hs, dec)
                job = chunk_job(
                    batch, "bench", int(chunk[-1]["blockNumber"], 16), incremental=incremental
                )
                if phases is not None:
                    phases.mark("prepare rows and deltas (Python, no DB)", time.perf_counter() - t)
                if writer is not None:
                    writer.submit(job)
                elif phases is not None:
                    s = factory()
                    s.begin()
                    raw: Any = s.connection().connection.driver_connection
                    default_cursor = raw.cursor_factory
                    raw.cursor_factory = phases.cursor_class()
                    t = time.perf_counter()
                    job(s)
                    phases.mark("record_prepared (all SQL + Python)", time.perf_counter() - t)
                    raw.cursor_factory = default_cursor
                    t = time.perf_counter()
                    s.commit()
                    phases.mark("COMMIT", time.perf_counter() - t)
                    s.close()
                else:
                    with factory.begin() as s:
                        job(s)
            if writer is not None:
                writer.close()

        # "before": one thread, every touched token recomputed from all of its events
        t_before = ingest(pipelined=False, incremental=False)
        t_seq = ingest(pipelined=False, incremental=True)
        with engine.connect() as c:
            tokens_seq = c.execute(text("SELECT * FROM tokens ORDER BY 1, 2, 3")).all()
        # the figure: best and median of --repeat runs (the machine is shared and noisy)
        e2e_runs = sorted(ingest(pipelined=True, incremental=True) for _ in range(args.repeat))
        t_e2e = e2e_runs[0]
        t_median = e2e_runs[len(e2e_runs) // 2]
        recomputed = text(
            "SELECT chain_id, contract, token_id, owner, minted_block, transfer_count, "
            "sale_count, last_sale_wei, last_sale_at FROM tokens ORDER BY 1, 2, 3"
        )
        held = text("SELECT * FROM balances ORDER BY 1, 2, 3, 4")
        with engine.connect() as c:
            tokens_pipe = c.execute(text("SELECT * FROM tokens ORDER BY 1, 2, 3")).all()
            incremental_rows = c.execute(recomputed).all()
            incremental_balances = c.execute(held).all()
        with factory.begin() as s:
            recompute_tokens(s, 1)
        with engine.connect() as c:
            same = c.execute(recomputed).all() == incremental_rows
            same_balances = c.execute(held).all() == incremental_balances
        same = same and len(tokens_seq) == len(tokens_pipe)
        with engine.connect() as c:
            n_tr = c.execute(text("SELECT count(*) FROM transfers")).scalar()
            n_sa = c.execute(text("SELECT count(*) FROM sales")).scalar()
            n_tok = c.execute(text("SELECT count(*) FROM tokens")).scalar()
            n_bal = len(incremental_balances)
        phases = _Phases()
        t_phased = ingest(pipelined=False, incremental=True, phases=phases)

        def merge_run(fillfactor: int) -> tuple[float, float]:
            """tokens merge seconds and the share of its updates done in place (HOT)."""
            hot = text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'tokens'"
            )

            def counters() -> tuple[int, int]:
                # the writer's backend flushes its statistics when idle, at most once a second
                with factory() as s:
                    s.execute(text("SELECT pg_stat_force_next_flush()"))
                    s.commit()
                time.sleep(1.1)
                with factory() as s:
                    upd, hot_upd = s.execute(hot).one()
                return int(upd), int(hot_upd)

            with engine.begin() as c:
                c.execute(truncate)
                c.execute(text(f"ALTER TABLE tokens SET (fillfactor = {fillfactor})"))
            upd0, hot0 = counters()
            ph = _Phases()
            ingest(pipelined=False, incremental=True, phases=ph)
            upd1, hot1 = counters()
            merge = ph.seconds.get("  tokens: merge/recompute", 0.0)
            return merge, (hot1 - hot0) / max(1, upd1 - upd0)

        ff_runs: dict[int, list[tuple[float, float]]] = {100: [], 70: []}
        for ff in (100, 70, 100, 70):
            ff_runs[ff].append(merge_run(ff))

        def collation_run(collation: str) -> float:
            """End to end with the hex columns (tables and staging) in ``collation``."""
            ddl = staging.STAGING
            with engine.begin() as c:
                c.execute(truncate)
                # a column a generated column reads cannot change type: drop it meanwhile
                c.execute(text("ALTER TABLE sales DROP COLUMN price_eth_wei"))
                for statement in hex_collation.alter_statements(collation):
                    c.execute(text(statement))
                c.execute(
                    text(
                        "ALTER TABLE sales ADD COLUMN price_eth_wei NUMERIC(78, 0) "
                        f"GENERATED ALWAYS AS ({PRICE_IN_ETHER}) STORED"
                    )
                )
            engine.dispose()  # new connections: staging tables created afresh
            if collation != "C":
                staging.STAGING = ddl.replace(' COLLATE "C"', "")
            try:
                return ingest(pipelined=True, incremental=True)
            finally:
                staging.STAGING = ddl
                engine.dispose()

        coll_runs: dict[str, list[float]] = {"default": [], "C": []}
        for _ in range(args.repeat):
            for collation in ("default", "C"):  # the migrated schema ("C") last
                coll_runs[collation].append(collation_run(collation))
        etl_runs: list[etl_compare.EtlRun | str] = []
        blocks_per_call = max(1, args.chunk * len(headers) // max(1, len(logs)))
        etl_error = ""
        fetch_s = 0.0
        in_process: tuple[float, int] | None = None
        if not args.no_etl:
            with engine.begin() as c:
                c.execute(truncate)
            try:
                with RpcServer(RecordedChain(logs, headers)) as rpc:
                    fetch_s = _fetch_logs(rpc.url, headers, blocks_per_call)
                    etl_runs = etl_compare.compare(
                        logs, rpc, engine, url, sweep=args.etl_sweep, repeat=args.repeat
                    )
                times = {h.hash: h.timestamp for h in headers}
                in_process = etl_compare.run_in_process(logs, times, url, args.chunk)
            except Exception as exc:  # reported, the rest of the figures still stand
                etl_error = str(exc)
        print(
            f"rows: {n_tr:,} transfers, {n_sa:,} sales, {n_tok:,} tokens, {n_bal:,} ERC-1155 "
            "balances "
            f"({len(decoded_only.transfers):,} transfer events decoded)"
        )
        print(f"decode only  ours : {nft_logs / t_ours:>12,.0f} NFT logs/s")
        print(
            f"decode only  web3 : {n_web3 / t_web3:>12,.0f} NFT logs/s"
            f"   ours/web3 = {(nft_logs / t_ours) / (n_web3 / t_web3):.1f}x"
        )
        print(
            f"end to end   ours : {nft_logs / t_e2e:>12,.0f} NFT logs/s "
            f"(raw JSON -> rows committed, batches of {args.chunk:,} logs, decode overlapped "
            f"with writing; best of {args.repeat}, median {nft_logs / t_median:,.0f})"
        )
        print(
            f"  before: {nft_logs / t_before:,.0f} NFT logs/s (one thread, tokens recomputed from "
            f"all their events); one thread with incremental tokens: {nft_logs / t_seq:,.0f}; "
            f"after/before = {t_before / t_e2e:.2f}x"
        )
        print(f"  incremental token rows equal a full recompute: {same}")
        print(f"  incremental ERC-1155 balances equal a full recompute: {same_balances}")
        print(f"end to end vs web3 decode alone: {(nft_logs / t_e2e) / (n_web3 / t_web3):.1f}x")
        print(f"where the time goes (one thread, incremental, {t_phased:.2f} s in all):")
        for k, v in sorted(phases.seconds.items(), key=lambda kv: -kv[1]):
            print(f"  {k:<42} {v:7.3f} s  {100 * v / t_phased:5.1f}%")
        for ff, runs in ff_runs.items():
            print(
                f"tokens fillfactor {ff:>3}: merge {min(r[0] for r in runs):.3f} s (best of "
                f"{len(runs)}), in-place (HOT) updates {runs[-1][1]:.0%}"
                + ("   <- migration 0004" if ff == 70 else "")
            )
        for collation, ts in coll_runs.items():
            ts.sort()
            print(
                f"hex columns collation {collation!r:>9}: {nft_logs / ts[0]:,.0f} NFT logs/s "
                f"end to end (best of {len(ts)}, median {nft_logs / ts[len(ts) // 2]:,.0f})"
                + ("   <- migration 0007" if collation == "C" else "")
            )
        mid = args.repeat // 2
        before, after = coll_runs["default"], coll_runs["C"]
        print(
            f"  C / default: {before[0] / after[0]:.2f}x best, "
            f"{before[mid] / after[mid]:.2f}x median"
        )
        if etl_runs:
            _print_etl(etl_runs, logs, nft_logs, t_e2e, fetch_s, blocks_per_call, in_process)
        elif not args.no_etl:
            print(f"ethereum-etl: not measured: {etl_error}")
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    finally:
        engine.dispose()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
