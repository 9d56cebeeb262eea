"""Off-chain listing feeds: marketplaces' signed orders, which never reach the chain until
filled, stored beside the on-chain offers.

    phoenix          Phoenix Channels v2 frames (pure)
    opensea_events   OpenSea Stream API events and REST book entries → ``store.orders.OrderEvent``
                     (pure)
    opensea          the client: the socket, heartbeats, reconnects with backoff and jitter, and
                     the REST catch-up after each (re)connect

Errors are ``listeners.errors``' ``FeedUnavailable`` (retried) and ``FeedRefused`` /
``FeedMessageError`` (not).
"""
