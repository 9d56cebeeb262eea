"""The one exception root of ``listeners``, and of every JSON-RPC read (the worker's contract
reads go through :mod:`listeners.rpc` too).

ListenerError
├── Retryable              worth trying again, with backoff; ``retry_after``: the node's
│   │                      Retry-After in seconds when it sent one, the soonest to try again
│   ├── RpcTimeout         connect/read timeout
│   ├── RpcUnavailable     connection refused/reset, 5xx, 429
│   ├── RangeTooLarge      the provider refused an eth_getLogs range; ``suggested`` holds
│   │                      the (from, to) it said it would accept, when it said one
│   └── FeedUnavailable    a listings feed (socket or REST) dropped, timed out, 5xx, 429
└── Permanent              the same request gives the same answer
    ├── RpcError           a JSON-RPC error that is not one of the above (bad params, revert)
    ├── ChainMismatch      the node serves another chain id than the one configured
    ├── FeedRefused        a listings feed refused the API key (401/403) or a channel join
    └── FeedMessageError   a feed message that does not parse (kept whole in ``raw``)
"""

from __future__ import annotations


class ListenerError(Exception):
    retryable: bool = False

    @property
    def code(self) -> str:
        return type(self).__name__


class Retryable(ListenerError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(ListenerError):
    retryable = False


class RpcTimeout(Retryable):
    pass


class RpcUnavailable(Retryable):
    pass


class RangeTooLarge(Retryable):
    def __init__(self, message: str, *, suggested: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.suggested = suggested


class RpcError(Permanent):
    def __init__(self, message: str, *, rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


class ChainMismatch(Permanent):
    pass


class FeedUnavailable(Retryable):
    pass


class FeedRefused(Permanent):
    pass


class FeedMessageError(Permanent):
    def __init__(self, message: str, *, raw: object = None) -> None:
        super().__init__(message)
        self.raw = raw
