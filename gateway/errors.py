"""How the gateway answers each failure: the HTTP status and envelope code of every ``IngestError``
(``ingest_core.errors``), plus the failures only HTTP has (an unknown route, a method not allowed,
a body in an unsupported coding or too slow to arrive).

``gateway.handling`` renders any of them (and aiohttp's own 404/405/413) in the API's envelope.
"""

from __future__ import annotations

from typing import NamedTuple

from ingest_core.errors import (
    BlobStoreDown,
    Conflict,
    DatasetNotFound,
    EntityNotFound,
    Forbidden,
    ImportNotFound,
    IngestError,
    InvalidInput,
    KafkaUnavailable,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    SourceNotFound,
    StorageFull,
    StoreDown,
    TopicMissing,
    TopicNotDefined,
    Unauthorized,
    UnsupportedMedia,
)


class UnsupportedEncoding(IngestError):
    """The body's Content-Encoding is not one the gateway decodes (gzip, deflate, or none)."""

    code = "UNSUPPORTED_CONTENT_ENCODING"
    default_message = "Content-Encoding not supported: send the body as it is, or in gzip or deflate"


class BodyTimeout(IngestError):
    """The body did not arrive in full within BODY_TIMEOUT_MS; nothing of the request was published."""

    code = "REQUEST_TIMEOUT"
    retriable = True
    default_message = "The request body did not arrive in time"


class RouteNotFound(IngestError):
    code = "NOT_FOUND"
    default_message = "No such endpoint"


class MethodNotAllowed(IngestError):
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed on this endpoint"


class HttpForm(NamedTuple):
    """How one kind of error is answered."""

    status: int
    response_code: str  # the envelope's responseCode
    retry_after_s: int | None = None
    headers: dict[str, str] | None = None  # sent with the error response


HTTP: dict[type[IngestError], HttpForm] = {
    InvalidInput: HttpForm(400, "BAD_REQUEST"),
    DatasetNotFound: HttpForm(404, "BAD_REQUEST"),  # sic: the reference answers 404 with BAD_REQUEST
    TopicNotDefined: HttpForm(404, "BAD_REQUEST"),
    TopicMissing: HttpForm(404, "BAD_REQUEST"),
    PayloadTooLarge: HttpForm(413, "PAYLOAD_TOO_LARGE"),
    # RFC 9110, 12.5.3: a 415 for a content coding names the codings that would be accepted.
    UnsupportedEncoding: HttpForm(
        415, "UNSUPPORTED_MEDIA_TYPE", headers={"Accept-Encoding": "gzip, deflate"}
    ),
    BodyTimeout: HttpForm(408, "REQUEST_TIMEOUT"),
    KafkaUnavailable: HttpForm(503, "SERVICE_UNAVAILABLE", retry_after_s=2),
    Overloaded: HttpForm(503, "SERVICE_UNAVAILABLE", retry_after_s=1),
    RouteNotFound: HttpForm(404, "NOT_FOUND"),
    MethodNotAllowed: HttpForm(405, "METHOD_NOT_ALLOWED"),
    IngestError: HttpForm(500, "SERVER_ERROR"),
    # The import APIs' (each family words them in its own format).
    Unauthorized: HttpForm(401, "UNAUTHORIZED"),
    Forbidden: HttpForm(403, "FORBIDDEN"),
    SourceNotFound: HttpForm(404, "NOT_FOUND"),
    ImportNotFound: HttpForm(404, "NOT_FOUND"),
    EntityNotFound: HttpForm(404, "NOT_FOUND"),
    Conflict: HttpForm(409, "CONFLICT"),
    StoreDown: HttpForm(503, "SERVICE_UNAVAILABLE", retry_after_s=2),
    BlobStoreDown: HttpForm(503, "SERVICE_UNAVAILABLE", retry_after_s=2),
    UnsupportedMedia: HttpForm(415, "UNSUPPORTED_MEDIA_TYPE"),
    RateLimited: HttpForm(429, "TOO_MANY_REQUESTS"),  # Retry-After: the error's own
    StorageFull: HttpForm(507, "INSUFFICIENT_STORAGE", retry_after_s=30),
}


def http_form(error: type[IngestError]) -> HttpForm:
    """The answer to ``error``: its own, else its nearest base class's (500 at worst)."""
    for cls in error.__mro__:
        form = HTTP.get(cls)
        if form is not None:
            return form
    return HTTP[IngestError]


# Every code a client of the ingestion API can see, for the README's error table and its contract test.
ALL_ERRORS: tuple[type[IngestError], ...] = (
    InvalidInput,
    DatasetNotFound,
    TopicNotDefined,
    TopicMissing,
    PayloadTooLarge,
    UnsupportedEncoding,
    UnsupportedMedia,
    BodyTimeout,
    KafkaUnavailable,
    Overloaded,
    Unauthorized,
    Forbidden,
    RateLimited,
    RouteNotFound,
    MethodNotAllowed,
    IngestError,
)

__all__ = [
    "ALL_ERRORS",
    "HTTP",
    "BodyTimeout",
    "DatasetNotFound",
    "Forbidden",
    "HttpForm",
    "IngestError",
    "InvalidInput",
    "KafkaUnavailable",
    "MethodNotAllowed",
    "Overloaded",
    "PayloadTooLarge",
    "RateLimited",
    "RouteNotFound",
    "SourceNotFound",
    "TopicMissing",
    "TopicNotDefined",
    "Unauthorized",
    "UnsupportedEncoding",
    "UnsupportedMedia",
    "http_form",
]
