"""What the client raises: a batch the gateway refused (with its code, message and the index of
the event at fault), a full buffer, a closed client."""

from __future__ import annotations

import re

_INDEX = re.compile(r"^data\[(\d+)\]")


class IngestClientError(Exception):
    """Every error of this package."""


class BufferFull(IngestClientError):
    """``send(..., block=False)`` while ``max_buffer_events`` events are pending."""


class ClientClosed(IngestClientError):
    """The client was closed: nothing more can be sent."""


class SendError(IngestClientError):
    """A batch that was not acknowledged.

    ``status``: the gateway's HTTP status (None: no answer); ``code`` and ``message``: its error
    (``DATA_INGESTION_INVALID_INPUT``, ...); ``index``: the event at fault within its batch, when the
    gateway named one; ``retriable``: a later send may succeed (the retries ran out)."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, retriable: bool = False
    ) -> None:
        super().__init__(
            message if status is None else f"{status} {code or ''}: {message}".replace(" :", ":")
        )
        self.message = message
        self.status = status
        self.code = code
        self.retriable = retriable
        found = _INDEX.match(message)
        self.index: int | None = int(found[1]) if found else None
