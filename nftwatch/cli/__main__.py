"""``python -m nftwatch.cli``: the same as the ``nftwatch`` console script."""

from nftwatch.cli import main

main()
