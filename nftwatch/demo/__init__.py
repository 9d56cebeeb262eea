"""``nftwatch demo``: the whole job on a local chain, with nothing running beforehand."""

from nftwatch.demo.run import run_demo

__all__ = ["run_demo"]
