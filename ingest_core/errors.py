"""Every failure of ingestion, as data: a code, a message, and whether a retry may succeed.

Raised by the core (preparing records, publishing them) and by the programs. No HTTP here: the
gateway maps each class to a status and its response envelope (``gateway.errors``). Messages never
carry internals or payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

Problem = tuple[str, str]


class IngestError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    retriable: ClassVar[bool] = False
    default_message: ClassVar[str] = "Internal server error"

    def __init__(
        self, message: str | None = None, msgid: str | None = None, problems: Sequence[Problem] = ()
    ) -> None:
        self.message = message or self.default_message
        # The request's msgid when it was read before the failure, for echoing it in the answer.
        self.msgid = msgid
        # Each problem found, where the API family lists them: (where in the request, what is wrong).
        self.problems = problems
        super().__init__(self.message)


class InvalidInput(IngestError):
    """The body is not JSON, the envelope fails its schema, or an event fails its dataset's schema."""

    code = "DATA_INGESTION_INVALID_INPUT"
    default_message = "Invalid input"


class DatasetNotFound(IngestError):
    code = "DATASET_NOT_FOUND"
    default_message = "Dataset with id not found"


class TopicNotDefined(IngestError):
    """The dataset has no entry topic in the registry."""

    code = "TOPIC_NOT_FOUND"
    default_message = "Entry topic is not defined"


class TopicMissing(IngestError):
    """The entry topic is configured but does not exist on the cluster (deleted after start)."""

    code = "TOPIC_NOT_FOUND"
    default_message = "Entry topic does not exist in Kafka"


class PayloadTooLarge(IngestError):
    """A body over its limit, or an event whose Kafka record would be over the producers' limit."""

    code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body is too large"


class KafkaUnavailable(IngestError):
    """Kafka did not acknowledge the events in time; nothing in this request may be counted as ingested."""

    code = "KAFKA_UNAVAILABLE"
    retriable = True
    default_message = "Kafka did not acknowledge the events in time; retry with the same msgid"


class Overloaded(IngestError):
    """Too many requests or events in flight: shed load fast instead of queueing without bound."""

    code = "OVERLOADED"
    retriable = True
    default_message = "The gateway is at capacity; retry with the same msgid"


class Unauthorized(IngestError):
    """No credentials, or credentials of no known principal."""

    code = "UNAUTHORIZED_ACCESS"
    default_message = "Missing or invalid credentials"


class Forbidden(IngestError):
    """A known principal without the permission, or without the target in its scope."""

    code = "FORBIDDEN_ACCESS"
    default_message = "Not allowed: the credentials lack the permission or the scope"


class SourceNotFound(IngestError):
    """A REST-source import names a source the registry does not have."""

    code = "SOURCE_NOT_FOUND"
    default_message = "Unknown source_id"


class EntityNotFound(IngestError):
    """An entity file import names an entity the registry does not have."""

    code = "ENTITY_NOT_FOUND"
    default_message = "Unknown entity"


class ImportNotFound(IngestError):
    code = "IMPORT_NOT_FOUND"
    default_message = "No such import"


class Conflict(IngestError):
    """The request cannot be taken in the state its target is in (an import uploaded already)."""

    code = "CONFLICT"
    default_message = "The import has its upload already"


class StoreDown(IngestError):
    """The job store did not answer: nothing was changed."""

    code = "STORE_UNAVAILABLE"
    retriable = True
    default_message = "The job store is unavailable; retry later"


class BlobStoreDown(IngestError):
    """The blob store (the uploads' directory or S3 bucket) did not answer: nothing was kept."""

    code = "BLOB_STORE_UNAVAILABLE"
    retriable = True
    default_message = "The upload store is unavailable; retry later"


class UnsupportedMedia(IngestError):
    """A body in a form the route does not take."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Unsupported media type"


class RateLimited(IngestError):
    """The caller is over its rate limit: nothing of the request was done; retry after ``retry_after_s``."""

    code = "RATE_LIMITED"
    retriable = True
    default_message = "Too many requests or events: over the rate limit; retry after the time given"

    def __init__(self, retry_after_s: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageFull(IngestError):
    """The upload directory has no room (ENOSPC, or the quota): nothing of the upload was kept."""

    code = "INSUFFICIENT_STORAGE"
    retriable = True
    default_message = "The upload store is full: nothing was kept; retry later"
