"""ethereum-etl 2.4.2 run as its users run it, for ``bench_ingest.py``: its own command line
against a JSON-RPC endpoint (``etl_rpc.py``, loopback, serving the same logs our side ingests),
writing into the same Postgres.

Two of its commands do the job:

* ``ethereumetl stream -e token_transfer --output postgresql+psycopg2://...``: reads blocks with
  their transactions and every receipt, extracts token transfers from the receipts' logs and
  upserts them into its ``token_transfers`` table (SQLAlchemy ``executemany``, one sync round of
  ``--block-batch-size`` blocks at a time; ``--batch-size`` blocks or receipts per JSON-RPC batch
  request, ``--max-workers`` threads). Timed from its first request until its last-synced-block
  file names the last block (written after that round's rows are committed).
* ``ethereumetl export_token_transfers`` to a CSV file (a log filter per ``--batch-size``
  blocks), then that file loaded with ``COPY`` into the same table, as ethereum-etl-postgres
  loads its exports. Its CSV carries no block timestamp or hash: it does less than ``stream``.

Beside them, as a bound and not a way its users run it, ``run_in_process`` calls its extractor and
Postgres exporter on the parsed logs directly (``etl_runner.py``), skipping JSON-RPC entirely.

ethereum-etl pins old libraries (web3 5, eth-abi 2 and its parsimonious 0.8, which imports
``inspect.getargspec``, gone in Python 3.11), so it gets its own virtual environment,
``bench/.etl-venv``, on a Python 3.8-3.10 (``NFTWATCH_ETL_PYTHON`` names one), created here from
PyPI on first use, with psycopg2-binary for its Postgres output and SQLAlchemy 1.4.0, the
version its ``streaming`` extra pins.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from etl_rpc import RpcServer
from sqlalchemy import Engine, text

HERE = Path(__file__).resolve().parent
VENV = HERE / ".etl-venv"
PACKAGES = ["ethereum-etl==2.4.2", "sqlalchemy==1.4.0", "psycopg2-binary==2.9.13"]
PROBE = "import ethereumetl.cli, sqlalchemy, psycopg2"
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@dataclass(frozen=True)
class Setting:
    command: str  # "stream" or "export_token_transfers"
    batch_size: int
    max_workers: int
    block_batch_size: int = 1  # stream only

    def label(self) -> str:
        if self.command == "stream":
            return f"stream -b {self.batch_size} -B {self.block_batch_size} -w {self.max_workers}"
        return f"export_token_transfers -b {self.batch_size} -w {self.max_workers} + COPY"


# each command at its own defaults (ethereumetl stream --help, export_token_transfers --help)
DEFAULTS = (Setting("stream", 10, 5, 1), Setting("export_token_transfers", 100, 5))
# the tuned settings the default bench run tries (the fastest of a wider sweep here: stream levels
# off at about 10 s for these 100,000 logs from -b 1000 on, whatever -B; more workers than the 2
# cores do not help), and the wider grid --etl-sweep tries
TUNED = (
    Setting("stream", 1000, 2, 10),
    Setting("stream", 1000, 2, 100),
    Setting("stream", 100, 1, 10),
    Setting("export_token_transfers", 250, 1),
)
SWEEP = tuple(
    [
        Setting("stream", b, w, bb)
        for b in (100, 1000, 2000)
        for bb in (10, 50, 250)
        for w in (1, 2, 5)
    ]
    + [Setting("export_token_transfers", b, w) for b in (25, 250, 1000) for w in (1, 2, 5)]
)


@dataclass
class EtlRun:
    setting: Setting
    seconds: list[float]  # each try: first JSON-RPC request -> its rows committed
    stored: int  # rows in its token_transfers after the last try
    calls: dict[str, int] = field(default_factory=dict)  # JSON-RPC calls served, per method
    server_cpu: float = 0.0  # CPU seconds the endpoint (this process) spent serving the last try

    @property
    def best(self) -> float:
        return min(self.seconds)


def _python() -> str:
    """A Python that ethereum-etl 2.4.2's pinned libraries import on (3.8-3.10)."""
    named = os.environ.get("NFTWATCH_ETL_PYTHON")
    candidates = [named] if named else []
    for minor in ("3.10", "3.9", "3.8"):
        found = shutil.which(f"python{minor}")
        if found:
            candidates.append(found)
        pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
        candidates += sorted(glob.glob(f"{pyenv}/versions/{minor}.*/bin/python{minor}"))
    for c in candidates:
        r = subprocess.run(
            [c, "-c", "import sys; assert (3, 8) <= sys.version_info[:2] <= (3, 10)"],
            capture_output=True,
        )
        if r.returncode == 0:
            return c
    raise RuntimeError(
        "ethereum-etl 2.4.2 needs Python 3.8-3.10 (its eth-abi 2 imports parsimonious 0.8, "
        "which uses inspect.getargspec, removed in 3.11); none found: set NFTWATCH_ETL_PYTHON"
    )


def ensure_venv() -> Path:
    """The ``ethereumetl`` command of the venv, installing it on first use; raises with pip's
    output."""
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", PROBE], capture_output=True).returncode == 0:
        return VENV / "bin" / "ethereumetl"
    r = subprocess.run([_python(), "-m", "venv", "--clear", str(VENV)], capture_output=True)
    if r.returncode != 0:  # the interpreter lacks venv/ensurepip: try this one's module
        venv.create(VENV, with_pip=True, clear=True)
    r2 = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", *PACKAGES], capture_output=True, text=True
    )
    if r2.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(PACKAGES)} failed:\n{r2.stderr[-2000:]}")
    check = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"ethereum-etl does not import:\n{check.stderr[-2000:]}")
    return VENV / "bin" / "ethereumetl"


def psycopg2_url(url: str) -> str:
    """Our ``postgresql+psycopg://user:@/db?host=SOCKETDIR`` (or host:port) for SQLAlchemy 1.4 +
    psycopg2, as ethereum-etl's ``--output`` takes it."""
    u = urlsplit(url)
    user = u.username or "postgres"
    db = u.path.lstrip("/") or "postgres"
    auth = f"{user}:{u.password}" if u.password else user
    host = parse_qs(u.query).get("host", [None])[0]
    if host and host.startswith("/"):
        return f"postgresql+psycopg2://{auth}@/{db}?host={host}"
    return f"postgresql+psycopg2://{auth}@{u.hostname}:{u.port or 5432}/{db}"


def create_table(url: str) -> None:
    """Its ``token_transfers`` table, from its own schema
    (``ethereumetl.streaming.postgres_tables``, primary key transaction_hash, log_index): it
    creates none itself."""
    py = VENV / "bin" / "python"
    code = (
        "import sys, sqlalchemy as sa\n"
        "from ethereumetl.streaming.postgres_tables import TOKEN_TRANSFERS as t\n"
        "e = sa.create_engine(sys.argv[1])\n"
        "t.drop(e, checkfirst=True); t.create(e)\n"
    )
    r = subprocess.run([str(py), "-c", code, psycopg2_url(url)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"creating token_transfers failed:\n{r.stderr[-2000:]}")


def expected_rows(logs: list[dict[str, Any]]) -> tuple[int, int]:
    """(token transfers its extractor takes, of which ERC-721): Transfer logs with 3 topics
    (ERC-20, amount in data) or 4 (ERC-721, token id as the last topic)."""
    rows = nft = 0
    for log in logs:
        if log["topics"] and log["topics"][0] == TRANSFER and len(log["topics"]) in (3, 4):
            rows += 1
            nft += len(log["topics"]) == 4
    return rows, nft


def _fresh(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("TRUNCATE token_transfers"))
        c.execute(text("CHECKPOINT"))


def _stored(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM token_transfers")).scalar_one())


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def run_stream(
    etl: Path, server: RpcServer, s: Setting, url: str, first: int, last: int, timeout: float
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        synced = Path(tmp, "last_synced_block.txt")
        log = Path(tmp, "etl.log")
        cmd = [
            str(etl),
            "stream",
            "-e",
            "token_transfer",
            "-p",
            server.url,
            "-o",
            psycopg2_url(url),
            "-s",
            str(first),
            "-l",
            str(synced),
            "-b",
            str(s.batch_size),
            "-B",
            str(s.block_batch_size),
            "-w",
            str(s.max_workers),
            "--log-file",
            str(log),
        ]
        with open(Path(tmp, "stdout"), "wb") as out:  # its SQL echo (print_sql is on)
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            done = None
            try:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        if int(synced.read_text() or -1) >= last:
                            done = time.perf_counter()
                            break
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.01)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        if done is None or server.first_request is None:
            why = "exited" if proc.returncode is not None and done is None else "timed out"
            raise RuntimeError(
                f"ethereumetl {s.label()} {why} before syncing block {last}:\n{_tail(log)}"
                f"{_tail(Path(tmp, 'stdout'))[-500:]}"
            )
        return done - server.first_request


def run_export(
    etl: Path, server: RpcServer, s: Setting, engine: Engine, first: int, last: int, timeout: float
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "token_transfers.csv")
        cmd = [
            str(etl),
            "export_token_transfers",
            "-s",
            str(first),
            "-e",
            str(last),
            "-b",
            str(s.batch_size),
            "-w",
            str(s.max_workers),
            "-p",
            server.url,
            "-o",
            str(csv),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 or server.first_request is None:
            raise RuntimeError(f"ethereumetl {s.label()} failed:\n{r.stderr[-2000:]}")
        columns = csv.open().readline().strip()
        raw: Any = engine.raw_connection()
        try:
            with raw.cursor() as cur:
                statement = f"COPY token_transfers ({columns}) FROM STDIN WITH (FORMAT csv, HEADER)"
                with cur.copy(statement) as cp, csv.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        cp.write(chunk)
            raw.commit()
        finally:
            raw.close()
        return time.perf_counter() - server.first_request


def run_settings(
    logs: list[dict[str, Any]],
    server: RpcServer,
    engine: Engine,
    url: str,
    settings: tuple[Setting, ...],
    *,
    timeout: float = 300.0,
    progress: bool = True,
) -> list[EtlRun | str]:
    """Each setting once, from an empty ``token_transfers``; an ``EtlRun`` or why it failed."""
    etl = ensure_venv()
    create_table(url)
    blocks = [int(lg["blockNumber"], 16) for lg in logs]
    first, last = min(blocks), server.chain.latest
    out: list[EtlRun | str] = []
    for s in settings:
        _fresh(engine)
        server.reset()
        cpu = time.process_time()
        try:
            if s.command == "stream":
                secs = run_stream(etl, server, s, url, first, last, timeout)
            else:
                secs = run_export(etl, server, s, engine, first, last, timeout)
        except Exception as exc:  # reported beside the others
            out.append(f"{s.label()}: {exc}")
            continue
        cpu = time.process_time() - cpu
        run = EtlRun(s, [secs], _stored(engine), dict(server.calls), cpu)
        if progress:
            print(f"  (ethereum-etl {s.label()}: {secs:.2f} s)", file=sys.stderr, flush=True)
        out.append(run)
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS token_transfers"))
    return out


def run_in_process(
    logs: list[dict[str, Any]], times: dict[str, int], url: str, chunk: int
) -> tuple[float, int]:
    """(seconds, rows stored) for ethereum-etl's extraction and Postgres exporter alone, called
    in-process on the parsed logs by ``etl_runner.py`` (its receipt-log mapper, token transfer
    extractor and ``PostgresItemExporter`` over psycopg2, ``chunk`` logs per export): no JSON-RPC,
    no blocks or receipts, none of its commands. An upper bound for what its commands can do."""
    py = VENV / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        lp, bp = Path(tmp, "logs.json"), Path(tmp, "blocks.json")
        lp.write_text(json.dumps(logs))
        bp.write_text(json.dumps(times))
        r = subprocess.run(
            [str(py), str(HERE / "etl_runner.py"), str(lp), str(bp), psycopg2_url(url), str(chunk)],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0:
        raise RuntimeError(f"etl_runner.py failed:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return float(out["e2e_s"]), int(out["stored"])


def compare(
    logs: list[dict[str, Any]],
    server: RpcServer,
    engine: Engine,
    url: str,
    *,
    sweep: bool = False,
    repeat: int = 3,
) -> list[EtlRun | str]:
    """Both commands at their defaults and at the tuned settings (``SWEEP`` with ``sweep``), once
    each; then the fastest at defaults and the fastest of all again, to the best of ``repeat``."""
    runs = run_settings(logs, server, engine, url, DEFAULTS + (SWEEP if sweep else TUNED))
    rows, _ = expected_rows(logs)
    ok = [r for r in runs if isinstance(r, EtlRun) and r.stored == rows]
    again = {
        min(group, key=lambda r: r.best).setting: min(group, key=lambda r: r.best)
        for group in ([r for r in ok if r.setting in DEFAULTS], ok)
        if group
    }
    for _ in range(repeat - 1):
        for s, run in again.items():
            more = run_settings(logs, server, engine, url, (s,))[0]
            if isinstance(more, EtlRun):
                run.seconds += more.seconds
                run.stored = min(run.stored, more.stored)
                run.server_cpu = more.server_cpu
    return runs


if __name__ == "__main__":
    print(ensure_venv(), file=sys.stderr)
