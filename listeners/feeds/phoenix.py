"""Phoenix Channels frames, serializer v2 (``vsn=2.0.0``): every frame is a JSON array
``[join_ref, ref, topic, event, payload]``. Pure: text in, :class:`Frame` out, and back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from listeners.errors import FeedMessageError

VSN = "2.0.0"
JOIN = "phx_join"
REPLY = "phx_reply"
ERROR = "phx_error"
CLOSE = "phx_close"
HEARTBEAT = "heartbeat"
PHOENIX = "phoenix"  # the socket's own topic: heartbeats


@dataclass(frozen=True, slots=True)
class Frame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: dict[str, Any]

    def encode(self) -> str:
        return json.dumps([self.join_ref, self.ref, self.topic, self.event, self.payload])

    @property
    def reply_ok(self) -> bool:
        return self.event == REPLY and self.payload.get("status") == "ok"


def decode(text: str | bytes) -> Frame:
    """The frame ``text`` holds; FeedMessageError (with the text) for anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FeedMessageError(f"frame is not JSON: {exc}", raw=text) from None
    if not (isinstance(data, list) and len(data) == 5):
        raise FeedMessageError("frame is not a 5-element array", raw=text)
    join_ref, ref, topic, event, payload = data
    if not (isinstance(topic, str) and isinstance(event, str) and isinstance(payload, dict)):
        raise FeedMessageError("frame topic/event/payload have the wrong types", raw=text)
    if not all(x is None or isinstance(x, str) for x in (join_ref, ref)):
        raise FeedMessageError("frame refs must be strings or null", raw=text)
    return Frame(join_ref, ref, topic, event, payload)


def join(topic: str, ref: str) -> Frame:
    """Joining ``topic``: the join's ref is also the channel's join ref."""
    return Frame(ref, ref, topic, JOIN, {})


def heartbeat(ref: str) -> Frame:
    return Frame(None, ref, PHOENIX, HEARTBEAT, {})
