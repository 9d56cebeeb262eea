"""Command groups, one module each; importing a module registers its commands on
``nftwatch.cli.cli``."""
