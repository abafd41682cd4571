"""The gateway's OpenAPI 3.1 document: every route, its request bodies (from the JSON Schemas in
``schemas/``), its answers for each status with their schemas and the references' examples. Built
once at start; served at ``/openapi.json`` and rendered at ``/docs``.

The answers' schemas are the contract ``tests/contract/test_openapi.py`` checks real answers
against, route by route and status by status.
"""

from __future__ import annotations

import json
from typing import Any

from ingest_core.paths import schema_path

VERSION = "0.1.0"
JSON = "application/json"


def _file_schema(name: str) -> dict[str, Any]:
    """A schema of ``schemas/`` as a component (JSON Schema 2020-12 is OpenAPI 3.1's dialect; the
    files' draft-07 keywords read the same)."""
    doc: dict[str, Any] = json.loads(schema_path(name).read_text("utf-8"))
    return {k: v for k, v in doc.items() if k not in ("$schema", "$id")}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
TIME_MS = {"type": ["string", "null"], "description": "ISO 8601 in UTC with milliseconds and Z"}


def _schemas() -> dict[str, Any]:
    params = _obj(
        ["status", "resmsgid"], status={"enum": ["SUCCESS", "FAILED"]}, msgid=STRING, resmsgid=STRING
    )
    envelope_head = {"id": {"const": "api.data.in"}, "ver": {"const": "v2"}, "ts": STRING, "params": params}
    problem = _obj(["path", "message"], path=STRING, message=STRING)
    job_status = {"enum": ["QUEUED", "RUNNING", "COMPLETED", "FAILED"]}
    job = _obj(
        [
            "id",
            "entity",
            "duration",
            "status",
            "type",
            "progress",
            "payload",
            "output",
            "jobEnd",
            "jobStart",
            "createdAt",
            "updatedAt",
            "lastHeartbeat",
        ],
        id={"type": "string", "format": "uuid"},
        entity=STRING,
        duration={"type": "string", "examples": ["10 seconds"]},
        status=job_status,
        type={"const": "IMPORT"},
        progress={"type": "integer", "minimum": 0, "maximum": 100},
        payload=_obj(
            ["fileName", "size", "type", "mapping", "locale", "timezoneOffset", "domain"],
            fileName=STRING,
            size=INTEGER,
            type={"enum": ["csv", "xlsx"]},
            mapping={"type": "object", "additionalProperties": STRING},
            locale=STRING,
            timezoneOffset=INTEGER,
            domain=STRING,
        ),
        output=_obj(
            ["importedCount", "failedCount", "errors"],
            importedCount=INTEGER,
            failedCount=INTEGER,
            errors={"type": "array", "items": _obj(["row", "message"], row=INTEGER, message=STRING)},
        ),
        jobEnd=TIME_MS,
        jobStart=TIME_MS,
        createdAt=TIME_MS,
        updatedAt=TIME_MS,
        lastHeartbeat=TIME_MS,
    )
    entity_envelope = _obj(
        ["status", "error", "message", "errors", "data"],
        status=INTEGER,
        error={"type": "boolean"},
        message=STRING,
        errors={"type": "array", "items": _obj(["field", "message"], field=STRING, message=STRING)},
    )
    operation = _obj(
        ["_id", "type", "importerKey", "ts", "status", "valid", "user", "_updatedAt"],
        _id={"type": "string", "pattern": "^[0-9a-f]{24}$"},
        type={"const": "api"},
        importerKey={"const": "api"},
        ts=TIME_MS,
        status=STRING,
        valid={"type": "boolean"},
        user=STRING,
        _updatedAt=TIME_MS,
    )
    return {
        "DataInRequest": _file_schema("envelope.json"),
        "DataInSuccess": {
            **_obj(
                ["id", "ver", "ts", "params", "responseCode", "result"],
                **envelope_head,
                responseCode={"const": "OK"},
                result=_obj(["message"], message=STRING),
            ),
        },
        "DataInError": _obj(
            ["id", "ver", "ts", "params", "responseCode", "result", "error"],
            **envelope_head,
            responseCode=STRING,
            result={"type": "object"},
            error=_obj(["code", "message", "trace"], code=STRING, message=STRING, trace=STRING),
        ),
        "SourceImportRequest": _file_schema("source_import.json"),
        "SourceImportStarted": _obj(["message", "import_id"], message=STRING, import_id=STRING),
        "MessageError": _obj(
            ["message", "errors"], message=STRING, errors={"type": "array", "items": problem}
        ),
        "JsonlImportCreated": _obj(
            ["import_id", "import_status", "upload_url"],
            import_id={"type": "string", "pattern": "^import_[0-9a-z]{26}$"},
            import_status={"const": "WAITING_FOR_UPLOAD"},
            upload_url={"type": "string", "format": "uri"},
        ),
        "JsonlUploadReceived": _obj(
            ["import_id", "import_status", "message"],
            import_id=STRING,
            import_status={"const": "IN_PROGRESS"},
            message=STRING,
        ),
        "JsonlImportStatus": _obj(
            ["import_id", "import_status", "counts", "errors", "created_at", "updated_at"],
            import_id=STRING,
            import_status={"enum": ["WAITING_FOR_UPLOAD", "IN_PROGRESS", "COMPLETE", "FAILED"]},
            counts=_obj(["total", "imported", "failed"], total=INTEGER, imported=INTEGER, failed=INTEGER),
            errors={"type": "array", "items": _obj(["line", "message"], line=INTEGER, message=STRING)},
            created_at=STRING,
            updated_at=STRING,
        ),
        "Job": job,
        "JobEnvelope": {
            **entity_envelope,
            "properties": {**entity_envelope["properties"], "data": _ref("Job")},
        },
        "EnvelopeError": {
            **entity_envelope,
            "properties": {
                **entity_envelope["properties"],
                "error": {"const": True},
                "data": {"type": "null"},
            },
        },
        "Operation": operation,
        "OperationNew": _obj(["operation", "success"], operation=_ref("Operation"), success={"const": True}),
        "OperationDone": _obj(["success"], success={"const": True}),
        "OperationStatus": _obj(
            ["success", "status", "count"],
            success={"const": True},
            status={"enum": ["none", "new", "ready", "importing", "done", "error", "canceled"]},
            count=_obj(["total", "completed", "error"], total=INTEGER, completed=INTEGER, error=INTEGER),
        ),
        "CurrentOperation": _obj(
            ["success", "operation"],
            success={"const": True},
            operation={"anyOf": [_ref("Operation"), {"type": "null"}]},
        ),
        "OperationError": _obj(["success", "error"], success={"const": False}, error=STRING),
        "LoggedOut": _obj(["status", "message"], status={"const": "error"}, message=STRING),
        "Health": _obj(["status"], status={"const": "ok"}),
        "Ready": _obj(["status"], status={"enum": ["ready", "not ready"]}),
    }


def _answer(
    description: str, schema: str, example: Any = None, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(schema)}
    if example is not None:
        media["example"] = example
    out: dict[str, Any] = {"description": description, "content": {JSON: media}}
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": INTEGER}}
UNAUTHORIZED_EXAMPLE = {"status": "error", "message": "You must be logged in to do this."}
FORBIDDEN_EXAMPLE = {
    "success": False,
    "error": "User does not have the permissions required for this action [error-unauthorized]",
}


def _data_in() -> dict[str, Any]:
    error = "DataInError"
    return {
        "post": {
            "summary": "Ingest one event or a batch of events into a dataset",
            "operationId": "ingest",
            "tags": ["ingestion"],
            # Anonymous ({}) only for datasets the registry marks public.
            "security": [{}, {"apiKey": []}, {"bearer": []}],
            "parameters": [{"name": "dataset_id", "in": "path", "required": True, "schema": STRING}],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": _ref("DataInRequest"),
                        "example": {
                            "id": "api.data.in",
                            "ver": "v2",
                            "ts": "1711966306164",
                            "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"},
                            "data": {"eid": "INTERACT", "ets": 1711966306164},
                        },
                    }
                },
            },
            "responses": {
                "200": _answer("Every event acknowledged by Kafka", "DataInSuccess"),
                "400": _answer(
                    "DATA_INGESTION_INVALID_INPUT: not JSON, a bad envelope or an event failing its schema",
                    error,
                ),
                "401": _answer(
                    "UNAUTHORIZED_ACCESS: no key for a dataset that is not public, or an unknown key", error
                ),
                "403": _answer("FORBIDDEN_ACCESS: the key lacks ingest or the dataset in its scopes", error),
                "404": _answer("DATASET_NOT_FOUND, TOPIC_NOT_FOUND, or no such route", error),
                "405": _answer("METHOD_NOT_ALLOWED", error),
                "408": _answer("REQUEST_TIMEOUT: the body did not arrive in time", error),
                "413": _answer("PAYLOAD_TOO_LARGE", error),
                "415": _answer(
                    "UNSUPPORTED_CONTENT_ENCODING, or UNSUPPORTED_MEDIA_TYPE (a form, HTML or XML)", error
                ),
                "429": _answer(
                    "RATE_LIMITED: over the caller's requests/s or events/s", error, headers=RETRY_AFTER
                ),
                "500": _answer("INTERNAL_SERVER_ERROR", error),
                "503": _answer(
                    "KAFKA_UNAVAILABLE or OVERLOADED: retry with the same msgid", error, headers=RETRY_AFTER
                ),
            },
        }
    }


MESSAGE_ERRORS = {
    "400": "Malformed: every problem listed with its path",
    "401": "No or unknown credentials",
    "403": "The credentials lack the permission or the scope, or the upload URL is expired or altered",
    "404": "No such source or import",
    "409": "The import has its upload already",
    "413": "Too large",
    "415": "Unsupported media type or encoding",
    "429": "Over the caller's rate limit: retry after Retry-After",
    "503": "Kafka or the job store unavailable: retry",
    "507": "The upload directory is full: nothing was kept; retry after Retry-After",
}
ENVELOPE_ERRORS = {
    "400": "Malformed: each problem names its field",
    "401": "No or unknown credentials",
    "403": "The key lacks the permission or the entity",
    "404": "No such entity, job or API version",
    "413": "The file is too large",
    "415": "Not multipart/form-data",
    "429": "Over the caller's rate limit: retry after Retry-After",
    "503": "Kafka or the job store unavailable",
    "507": "The upload directory is full: nothing was kept",
}


def _errors(schema: str, words: dict[str, str], *statuses: str) -> dict[str, Any]:
    """The answers of ``statuses`` in ``schema`` (a 503 with its Retry-After)."""
    return {
        s: _answer(words[s], schema, headers=RETRY_AFTER if s in ("429", "503", "507") else None)
        for s in statuses
    }


def _message_errors(*statuses: str) -> dict[str, Any]:
    return _errors("MessageError", MESSAGE_ERRORS, *statuses)


def _envelope_errors(*statuses: str) -> dict[str, Any]:
    return _errors("EnvelopeError", ENVELOPE_ERRORS, *statuses)


def _operation_errors(*statuses: str) -> dict[str, Any]:
    out = {
        "401": _answer("Missing or wrong X-User-Id / X-Auth-Token", "LoggedOut", UNAUTHORIZED_EXAMPLE),
        "403": _answer("The user lacks run-import", "OperationError", FORBIDDEN_EXAMPLE),
        "429": _answer("Over the user's rate limit", "OperationError", headers=RETRY_AFTER),
    }
    if "400" in statuses:
        out["400"] = _answer("A call in the wrong state, or a bad body", "OperationError")
    if "503" in statuses:
        out["503"] = _answer("Kafka or the store unavailable: retry", "OperationError", headers=RETRY_AFTER)
    return out


def _operation(
    method: str, summary: str, answer: str, example: Any, *errors: str, body: Any = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": ["import operations"],
        "security": [{"userId": [], "authToken": []}],
        "responses": {"200": _answer("OK", answer, example), **_operation_errors(*errors)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return {method: op}


def build() -> dict[str, Any]:
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"const": "v1"}}
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    user = {
        "type": "object",
        "required": ["emails", "importIds"],
        "properties": {
            "username": STRING,
            "name": STRING,
            "emails": {"type": "array", "minItems": 1, "items": STRING},
            "importIds": {"type": "array", "minItems": 1, "items": STRING},
        },
    }
    paths: dict[str, Any] = {
        "/v2/data/in/{dataset_id}": _data_in(),
        "/api/v1/source/import": {
            "post": {
                "summary": "Import a REST source's entries",
                "tags": ["imports"],
                "security": [{"apiKey": []}],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("SourceImportRequest")}}},
                "responses": {
                    "200": _answer(
                        "Every entry acknowledged by Kafka",
                        "SourceImportStarted",
                        {
                            "message": "REST import started successfully",
                            "import_id": "import_01hexzqs3n8hx83psy4ernj2zz",
                        },
                    ),
                    **_message_errors("400", "401", "403", "404", "413", "429", "503"),
                },
            }
        },
        "/v1/import": {
            "post": {
                "summary": "Make a JSONL import and its signed upload URL",
                "tags": ["imports"],
                "security": bearer,
                "responses": {
                    "200": _answer("Made", "JsonlImportCreated"),
                    **_message_errors("401", "403", "429", "503"),
                },
            }
        },
        "/v1/import/{import_id}/upload": {
            "put": {
                "summary": "Upload the import's JSON Lines file (the URL's token authorises it)",
                "tags": ["imports"],
                "parameters": [
                    {"name": "import_id", "in": "path", "required": True, "schema": STRING},
                    {"name": "token", "in": "query", "required": True, "schema": STRING},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/jsonl": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "200": _answer("Received and queued", "JsonlUploadReceived"),
                    **_message_errors("403", "404", "409", "413", "415", "503", "507"),
                },
            }
        },
        "/v1/import/{import_id}": {
            "get": {
                "summary": "A JSONL import's status",
                "tags": ["imports"],
                "security": bearer,
                "parameters": [{"name": "import_id", "in": "path", "required": True, "schema": STRING}],
                "responses": {
                    "200": _answer("The import", "JsonlImportStatus"),
                    **_message_errors("401", "403", "404", "429"),
                },
            }
        },
        "/api/{version}/entities/{entity}/import": {
            "post": {
                "summary": "Import a CSV or XLSX file into an entity",
                "tags": ["imports"],
                "security": bearer,
                "parameters": [
                    version_param,
                    {"name": "entity", "in": "path", "required": True, "schema": STRING},
                    {"name": "domain", "in": "header", "required": True, "schema": STRING},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "file", "mapping"],
                                "properties": {
                                    "type": {"enum": ["csv", "xlsx"]},
                                    "file": {"type": "string", "format": "binary"},
                                    "mapping": {
                                        "type": "string",
                                        "description": "JSON object: 1-based column index -> property",
                                    },
                                    "locale": STRING,
                                    "timezoneOffset": INTEGER,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _answer("Import job created", "JobEnvelope"),
                    **_envelope_errors("400", "401", "403", "404", "413", "415", "429", "503", "507"),
                },
            }
        },
        "/api/{version}/job/{id}": {
            "get": {
                "summary": "An import job",
                "tags": ["imports"],
                "security": bearer,
                "parameters": [
                    version_param,
                    {"name": "id", "in": "path", "required": True, "schema": STRING},
                ],
                "responses": {
                    "200": _answer("The job", "JobEnvelope"),
                    **_envelope_errors("401", "403", "404", "429"),
                },
            }
        },
        "/api/v1/import.new": _operation(
            "post", "Create a new import operation (the current one is aborted)", "OperationNew", None, "503"
        ),
        "/api/v1/import.addUsers": _operation(
            "post",
            "Stage users in the current operation",
            "OperationDone",
            {"success": True},
            "400",
            body={
                "type": "object",
                "required": ["users"],
                "properties": {"users": {"type": "array", "items": user}},
            },
        ),
        "/api/v1/import.run": _operation(
            "post", "Run the current operation", "OperationDone", {"success": True}, "400", "503"
        ),
        "/api/v1/import.status": _operation(
            "get", "The current operation's state and counts", "OperationStatus", None
        ),
        "/api/v1/getCurrentImportOperation": _operation(
            "get", "The current operation", "CurrentOperation", None
        ),
        "/health": {
            "get": {
                "summary": "The process answers",
                "tags": ["operations"],
                "responses": {"200": _answer("Alive", "Health")},
            }
        },
        "/ready": {
            "get": {
                "summary": "Ready for traffic (registry loaded, Kafka answering)",
                "tags": ["operations"],
                "responses": {"200": _answer("Ready", "Ready"), "503": _answer("Not ready", "Ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus' text format",
                        "content": {"text/plain": {"schema": STRING}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["operations"],
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}
                },
            }
        },
        "/docs": {
            "get": {
                "summary": "This document, rendered",
                "tags": ["operations"],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": STRING}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ingest-gateway",
            "version": VERSION,
            "description": "Event ingestion into Apache Kafka, and the import APIs. Every answer carries"
            " X-Request-ID.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "userId": {"type": "apiKey", "in": "header", "name": "X-User-Id"},
                "authToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            },
        },
    }
