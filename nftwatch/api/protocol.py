"""uvicorn's h11 protocol with what it lacks for a server on the open network:

- a header-read timeout: a request whose headers are not complete ``HEADER_TIMEOUT_S`` after
  its first byte (or after the connection opened) is answered 408 and closed, so slow clients
  (slowloris) cannot hold connections open; uvicorn alone waits for ever;
- one log line for every connection that closes, with its cause (idle keep-alive expiry, the
  client closing, a reset, a header timeout, a malformed request, shutdown).

The timeout is a module setting because uvicorn builds the protocol itself, in each worker
process, from its class: the app factory sets it in the process that serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("nftwatch.api.connections")

HEADER_TIMEOUT_S = 10.0


def configure(header_timeout_s: float) -> None:
    global HEADER_TIMEOUT_S
    HEADER_TIMEOUT_S = header_timeout_s


class GuardedH11Protocol(H11Protocol):
    _header_timer: asyncio.TimerHandle | None = None
    _close_cause: str | None = None
    _requests = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # a new request begins on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()  # its headers are in

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:
            self._requests += 1

    def send_400_response(self, msg: str) -> None:
        self._close_cause = self._close_cause or f"malformed request ({msg})"
        super().send_400_response(msg)

    def timeout_keep_alive_handler(self) -> None:
        self._close_cause = self._close_cause or f"idle for {self.timeout_keep_alive} s"
        super().timeout_keep_alive_handler()

    def shutdown(self) -> None:
        self._close_cause = self._close_cause or "server shutting down"
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        cause = self._close_cause
        mid_response = self.cycle is not None and not self.cycle.response_complete
        if cause is None:
            if exc is not None:
                cause = f"connection lost ({type(exc).__name__}: {exc})"
            elif mid_response:
                cause = "client closed before the response was complete"
            elif self.conn.their_state is not h11.IDLE or self.conn.trailing_data[0]:
                cause = "client closed mid-request"
            else:
                cause = "client closed"
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown peer"
        # an idle or orderly close is routine; anything that cut a request short is not
        routine = cause.startswith(("idle", "client closed", "server shutting")) and not (
            mid_response or cause == "client closed mid-request"
        )
        log.log(
            logging.INFO if routine else logging.WARNING,
            "connection %s closed after %d request(s): %s",
            peer,
            self._requests,
            cause,
        )
        super().connection_lost(exc)

    # ------------------------------------------------------------ header timeout

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        partial = bool(self.conn.trailing_data[0])
        if not partial and self._requests:
            return  # between requests: the keep-alive timer owns this connection
        self._close_cause = (
            f"request headers incomplete after {HEADER_TIMEOUT_S:g} s"
            if partial
            else f"no request within {HEADER_TIMEOUT_S:g} s of connecting"
        )
        if partial and self.conn.our_state is h11.IDLE:
            body = f"request headers not received within {HEADER_TIMEOUT_S:g} s\n".encode()
            with contextlib.suppress(h11.LocalProtocolError):  # no response possible: close
                self.transport.write(
                    self.conn.send(
                        h11.Response(
                            status_code=408,
                            headers=[
                                (b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"),
                            ],
                        )
                    )
                    + self.conn.send(h11.Data(data=body))
                    + self.conn.send(h11.EndOfMessage())
                )
        self.transport.close()
