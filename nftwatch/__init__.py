"""The faces and the wiring: ``settings`` (the environment and an optional TOML file),
``runtime`` (the effective database and broker, embedded or not), ``cli/`` (one module per
command group), ``api/`` (the HTTP API and the desk page), ``service/`` (``nftwatch run``),
``demo/``, ``localstack/`` (embedded Postgres and Redis, anvil, a loopback IPFS gateway) and
``observability/``. Only this package reads the environment; the layers below take arguments."""
