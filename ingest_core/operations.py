"""Import operations (``/api/v1/import.*``): an operation stages users, then publishes them in one
run. Pure: the states, the checks of staged users, and how an operation is shown.

An operation is a job of kind ``import-operation`` (``ingest_core.jobs``): its id 24 hex digits,
its principal the ``user``, its status one of ``STATUSES``, its staged users in the job's request,
its counts the run's. A principal's current operation is its latest.

States, as the reference names them and as ``import.status`` shows them::

    importer_new --addUsers--> importer_user_selection (ready) --run--> importer_importing
        --> importer_done | importer_import_failed
    import.new: the current operation, unless finished, becomes importer_import_cancelled; its
    staged users are cleared either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from ingest_core.errors import InvalidInput
from ingest_core.jobs import Job, iso_ms

NEW = "importer_new"
READY = "importer_user_selection"
IMPORTING = "importer_importing"
DONE = "importer_done"
FAILED = "importer_import_failed"
CANCELLED = "importer_import_cancelled"
# What import.status calls each state ("none": no operation at all).
STATES = {
    NEW: "new", READY: "ready", IMPORTING: "importing", DONE: "done", FAILED: "error", CANCELLED: "canceled",
}  # fmt: skip
FINISHED = frozenset({DONE, FAILED, CANCELLED})
USER_TYPE = "user"  # the registry's type whose topic the users are published to
MAX_STAGED_USERS = 10_000


class WrongState(InvalidInput):
    """A call the current operation's state does not allow."""

    code = "WRONG_STATE"


def new_operation_id() -> str:
    """24 hex digits, as the reference's ``_id``: 4 bytes of seconds since the epoch, 8 random."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


def state(operation: Job | None) -> str:
    return "none" if operation is None else STATES.get(operation.status, operation.status)


def operation_view(operation: Job) -> dict[str, Any]:
    return {
        "_id": operation.id, "type": "api", "importerKey": "api", "ts": iso_ms(operation.created_at),
        "status": operation.status, "valid": True, "user": operation.principal,
        "_updatedAt": iso_ms(operation.updated_at),
    }  # fmt: skip


def counts(operation: Job | None) -> dict[str, int]:
    if operation is None:
        return {"total": 0, "completed": 0, "error": 0}
    staged = len(operation.request.get("users", []))
    return {"total": staged, "completed": operation.imported, "error": operation.failed}


def check_users(doc: Any, already: int) -> list[dict[str, Any]]:
    """The users of an ``import.addUsers`` body; raises InvalidInput naming the first bad user by
    its index (nothing is staged then)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("users"), list) or not doc["users"]:
        raise InvalidInput('The body must be {"users": [...]} with at least one user')
    users: list[Any] = doc["users"]
    if already + len(users) > MAX_STAGED_USERS:
        raise InvalidInput(f"An operation stages at most {MAX_STAGED_USERS} users ({already} staged already)")
    for i, user in enumerate(users):
        if not isinstance(user, Mapping):
            raise InvalidInput(f"users[{i}] is not an object")
        for field in ("emails", "importIds"):
            values = user.get(field)
            if not (isinstance(values, list) and values and all(isinstance(v, str) and v for v in values)):
                raise InvalidInput(f"users[{i}] needs at least one of {field}, each a non-empty string")
        if "username" in user and not isinstance(user["username"], str):
            raise InvalidInput(f"users[{i}].username must be a string")
    return [dict(user) for user in users]
