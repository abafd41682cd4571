"""Every failure the gateway answers, as data: a code, an HTTP status, a message, retriable or not.

One class per failure; ``gateway.handling`` renders any of them (and aiohttp's own 404/405/413)
in the API's response envelope. Messages never carry internals or payloads.
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    status: ClassVar[int] = 500
    response_code: ClassVar[str] = "SERVER_ERROR"
    retriable: ClassVar[bool] = False
    default_message: ClassVar[str] = "Internal server error"
    retry_after_s: ClassVar[int | None] = None
    headers: ClassVar[dict[str, str] | None] = None  # sent with the error response

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidInput(ApiError):
    """The body is not JSON, the envelope fails its schema, or an event fails its dataset's schema."""

    code = "DATA_INGESTION_INVALID_INPUT"
    status = 400
    response_code = "BAD_REQUEST"
    default_message = "Invalid input"


class DatasetNotFound(ApiError):
    code = "DATASET_NOT_FOUND"
    status = 404
    response_code = "BAD_REQUEST"  # sic: the reference answers 404 with BAD_REQUEST
    default_message = "Dataset with id not found"


class TopicNotDefined(ApiError):
    """The dataset has no entry topic in the registry."""

    code = "TOPIC_NOT_FOUND"
    status = 404
    response_code = "BAD_REQUEST"
    default_message = "Entry topic is not defined"


class TopicMissing(ApiError):
    """The entry topic is configured but does not exist on the cluster (deleted after start)."""

    code = "TOPIC_NOT_FOUND"
    status = 404
    response_code = "BAD_REQUEST"
    default_message = "Entry topic does not exist in Kafka"


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    response_code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body is too large"


class UnsupportedEncoding(ApiError):
    """The body's Content-Encoding is not one the gateway decodes (gzip, deflate, or none)."""

    code = "UNSUPPORTED_CONTENT_ENCODING"
    status = 415
    response_code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Content-Encoding not supported: send the body as it is, or in gzip or deflate"
    # RFC 9110, 12.5.3: a 415 for a content coding names the codings that would be accepted.
    headers: ClassVar[dict[str, str] | None] = {"Accept-Encoding": "gzip, deflate"}


class BodyTimeout(ApiError):
    """The body did not arrive in full within BODY_TIMEOUT_MS; nothing of the request was published."""

    code = "REQUEST_TIMEOUT"
    status = 408
    response_code = "REQUEST_TIMEOUT"
    retriable = True
    default_message = "The request body did not arrive in time"


class KafkaUnavailable(ApiError):
    """Kafka did not acknowledge the events in time; nothing in this request may be counted as ingested."""

    code = "KAFKA_UNAVAILABLE"
    status = 503
    response_code = "SERVICE_UNAVAILABLE"
    retriable = True
    retry_after_s = 2
    default_message = "Kafka did not acknowledge the events in time; retry with the same msgid"


class Overloaded(ApiError):
    """Too many requests or events in flight: shed load fast instead of queueing without bound."""

    code = "OVERLOADED"
    status = 503
    response_code = "SERVICE_UNAVAILABLE"
    retriable = True
    retry_after_s = 1
    default_message = "The gateway is at capacity; retry with the same msgid"


class RouteNotFound(ApiError):
    code = "NOT_FOUND"
    status = 404
    response_code = "NOT_FOUND"
    default_message = "No such endpoint"


class MethodNotAllowed(ApiError):
    code = "METHOD_NOT_ALLOWED"
    status = 405
    response_code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed on this endpoint"


# Every code a client can see, for the README's error table and its contract test.
ALL_ERRORS: tuple[type[ApiError], ...] = (
    InvalidInput,
    DatasetNotFound,
    TopicNotDefined,
    TopicMissing,
    PayloadTooLarge,
    UnsupportedEncoding,
    BodyTimeout,
    KafkaUnavailable,
    Overloaded,
    RouteNotFound,
    MethodNotAllowed,
    ApiError,
)
