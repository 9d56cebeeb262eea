"""The one exception root of ``tokenmeta``: fetching and decoding what a token points at.

    TokenMetaError
    ├── Retryable                  worth trying again later, with backoff
    │   ├── FetchTimeout           connect/read timed out, or a slow drip hit the deadline
    │   ├── RateLimited            429 (``retry_after`` seconds when the server said)
    │   ├── UpstreamUnavailable    5xx, 502/504 from a gateway, connection refused or reset
    │   └── AllGatewaysFailed      every configured gateway failed with a retryable error
    └── Permanent                  retrying the same input gives the same answer
        ├── NoTokenURI             empty tokenURI
        ├── InvalidURI             unparseable URI or invalid CID (no network call was made)
        ├── NotFound               404/410 from every source
        ├── BlockedAddress         the SSRF guard refused a private/loopback/metadata address
        ├── TooManyRedirects
        ├── ResponseTooLarge       a byte cap hit while streaming
        ├── ContentMismatch        bytes do not hash to the CID they were asked for
        ├── InvalidJSON            metadata is not JSON (HTML with status 200, garbage)
        ├── InvalidShape           metadata JSON is not an object
        ├── UnsupportedMedia       video, HTML, unknown magic bytes
        ├── ImageTooLarge          pixel/frame caps: a decompression bomb
        ├── ImageDecodeError       truncated or corrupt image bytes
        ├── ClientError            another 4xx (400, 401, 403, 451 …) from every source
        └── UnexpectedError        a bug caught at a batch boundary (one token never sinks a batch)

Every error has a stable ``code`` (its class name) recorded with fetch outcomes.
"""

from __future__ import annotations


class TokenMetaError(Exception):
    """Root of every error raised by tokenmeta."""

    retryable: bool = False

    @property
    def code(self) -> str:
        return type(self).__name__


class Retryable(TokenMetaError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(TokenMetaError):
    retryable = False


class FetchTimeout(Retryable):
    pass


class RateLimited(Retryable):
    pass


class UpstreamUnavailable(Retryable):
    pass


class AllGatewaysFailed(Retryable):
    pass


class NoTokenURI(Permanent):
    pass


class InvalidURI(Permanent):
    pass


class NotFound(Permanent):
    pass


class BlockedAddress(Permanent):
    pass


class TooManyRedirects(Permanent):
    pass


class ResponseTooLarge(Permanent):
    pass


class ContentMismatch(Permanent):
    pass


class InvalidJSON(Permanent):
    pass


class InvalidShape(Permanent):
    pass


class UnsupportedMedia(Permanent):
    pass


class ImageTooLarge(Permanent):
    pass


class ImageDecodeError(Permanent):
    pass


class ClientError(Permanent):
    pass


class UnexpectedError(Permanent):
    pass
