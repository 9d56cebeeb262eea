"""ethereum-etl on the same recorded logs and the same Postgres, for ``bench_ingest.py``.

ethereum-etl pins old libraries (web3 5, eth-abi 2, SQLAlchemy 1.4 for its Postgres exporter),
so it gets its own virtual environment, ``bench/.etl-venv``, created here from PyPI on first use;
``etl_runner.py`` runs inside it and reports its timings as one JSON line.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
VENV = HERE / ".etl-venv"
PACKAGES = ["ethereum-etl==2.4.2", "sqlalchemy==1.4.0", "pg8000==1.16.6"]


@dataclass
class EtlResult:
    decode_s: float  # map + extract only, no database
    e2e_s: float  # map + extract + its Postgres exporter, committed
    nft_logs: int  # ERC-721 logs it extracted (the only NFT kind its extractor knows)
    rows: int  # token transfers it wrote (ERC-721 and ERC-20)
    stored: int


def ensure_venv() -> Path:
    """The venv's python, installing ethereum-etl on first use; raises with pip's output."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import ethereumetl, sqlalchemy, pg8000"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    venv.create(VENV, with_pip=True)
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", *PACKAGES], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(PACKAGES)} failed:\n{r.stderr[-2000:]}")
    return py


def pg8000_url(url: str) -> str:
    """Our ``postgresql+psycopg://user:@/db?host=SOCKETDIR`` (or host:port) for SQLAlchemy 1.4 +
    pg8000, which wants the socket file itself."""
    u = urlsplit(url)
    user = u.username or "postgres"
    db = u.path.lstrip("/") or "postgres"
    host = parse_qs(u.query).get("host", [None])[0]
    if host and host.startswith("/"):
        sock = sorted(glob.glob(f"{host}/.s.PGSQL.*"))[0]
        return f"postgresql+pg8000://{user}@/{db}?unix_sock={sock}"
    auth = f"{user}:{u.password}" if u.password else user
    return f"postgresql+pg8000://{auth}@{u.hostname}:{u.port or 5432}/{db}"


def run_etl(logs: list[dict[str, Any]], times: dict[str, int], url: str, chunk: int) -> EtlResult:
    py = ensure_venv()
    with tempfile.TemporaryDirectory() as tmp:
        lp, bp = Path(tmp, "logs.json"), Path(tmp, "blocks.json")
        lp.write_text(json.dumps(logs))
        bp.write_text(json.dumps(times))
        r = subprocess.run(
            [str(py), str(HERE / "etl_runner.py"), str(lp), str(bp), pg8000_url(url), str(chunk)],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0:
        raise RuntimeError(f"ethereum-etl run failed:\n{r.stderr[-2000:]}")
    return EtlResult(**json.loads(r.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    print(ensure_venv(), file=sys.stderr)
