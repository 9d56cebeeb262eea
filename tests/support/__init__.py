"""What several test files share that is not a fixture (the fixtures are in ``tests/conftest.py``):

- ``servers``: the loopback HTTP origin whose routes a test sets, and the routes it serves.
- ``api``: the API served for real (``nftwatch api``'s worker processes) on a loopback port.
- ``media``: image bytes built in memory (PNG, GIF, a header with no pixels).
- ``seed``: rows for the API and desk tests (collection tokens, media, sales, listings,
  valuations), each value a keyword with the defaults ``test_api.py`` seeds.
- ``db``: one-line reads and the emptying of every table.
- ``workers``: ``nftwatch worker`` processes started together, waited on, and stopped.
- ``polling``: waiting for a condition with a deadline.
"""
