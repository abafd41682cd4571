"""Principals and their keys: who may call the APIs, with which permissions, on which targets.

Read from ``AUTH_FILE`` (YAML, validated against ``schemas/auth.schema.json`` at start, like the
registry): each principal has an id, the hex SHA-256 of its secret (the secret itself is never
stored), permissions, and optionally scopes (ids of the datasets, sources, entities or types it may
write; absent or ``"*"``: all). A secret is looked up by its digest, compared with every
principal's in constant time, so neither a match nor its position shows in the time taken. Secrets
and the headers that carry them are never logged.

The file also sets rate limits (``Limits``): each principal's own, else the default for principals,
and one for anonymous callers (counted per client address); ``gateway.limits`` enforces them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest_core.config_files import check_document, read_yaml
from ingest_core.errors import Forbidden, Unauthorized

PERMISSIONS = ("ingest", "source-import", "entity-import", "import", "run-import")
ALL = "*"


class AuthFileError(ValueError):
    """The principals file is missing, unparsable or invalid; the message names the key at fault."""


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Limits:
    """One caller's token buckets: a rate per second and a burst for requests and for events; a rate
    of None is no limit on that count."""

    requests_per_s: float | None = None
    requests_burst: int = 1
    events_per_s: float | None = None
    events_burst: int = 1

    @property
    def unlimited(self) -> bool:
        return self.requests_per_s is None and self.events_per_s is None


UNLIMITED = Limits()


def parse_limits(item: dict[str, Any] | None, default: Limits = UNLIMITED) -> Limits:
    """Limits from a validated ``limits`` object; a burst defaults to one second's worth."""
    if item is None:
        return default
    requests, events = item.get("requests_per_s"), item.get("events_per_s")
    return Limits(
        requests_per_s=requests,
        requests_burst=item.get("requests_burst", max(1, int(requests or 1))),
        events_per_s=events,
        events_burst=item.get("events_burst", max(1, int(events or 1))),
    )


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    key_digest: bytes
    permissions: frozenset[str]
    scopes: frozenset[str] | None  # None: every target
    limits: Limits = UNLIMITED

    def may(self, permission: str, target: str | None = None) -> bool:
        """Does this principal hold ``permission`` (on ``target``, when one is named)?"""
        if permission not in self.permissions:
            return False
        return target is None or self.scopes is None or target in self.scopes

    @property
    def unscoped(self) -> bool:
        return self.scopes is None


class Principals:
    def __init__(self, principals: Iterable[Principal], anonymous: Limits = UNLIMITED) -> None:
        self._all = tuple(principals)
        self._by_id = {p.id: p for p in self._all}
        self.anonymous = anonymous  # the limits of each anonymous client address

    def __len__(self) -> int:
        return len(self._all)

    def authenticate(self, secret: str | None) -> Principal | None:
        """The principal whose secret this is, or None (no secret, or an unknown one)."""
        if not secret:
            return None
        wanted = digest(secret)
        found = None
        for principal in self._all:  # every one compared: the time does not tell which matched
            if hmac.compare_digest(principal.key_digest, wanted):
                found = principal
        return found

    def authenticate_user(self, user_id: str | None, secret: str | None) -> Principal | None:
        """``X-User-Id`` + ``X-Auth-Token``: the principal of that id, if the secret is its own."""
        principal = self.authenticate(secret)
        if principal is None or user_id is None or not hmac.compare_digest(principal.id, user_id):
            return None
        return principal

    def authorize(self, secret: str | None, permission: str, target: str | None = None) -> Principal:
        """The caller's principal when it may do ``permission`` on ``target``; raises Unauthorized
        (no or unknown credentials) or Forbidden (known, but not allowed)."""
        principal = self.authenticate(secret)
        if principal is None:
            raise Unauthorized()
        if not principal.may(permission, target):
            raise Forbidden()
        return principal


NOBODY = Principals(())


def parse_principals(doc: Any, source: Path) -> Principals:
    """Validate a parsed principals document; raises AuthFileError naming the key at fault."""
    check_document(doc, "auth.schema.json", source, AuthFileError)
    defaults = doc.get("limits", {})
    principal_limits = parse_limits(defaults.get("principal"))
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    out = []
    for i, item in enumerate(doc["principals"]):
        if item["id"] in seen_ids:
            raise AuthFileError(f"{source}: principals[{i}].id: duplicate principal id {item['id']!r}")
        if item["key_sha256"] in seen_keys:
            raise AuthFileError(f"{source}: principals[{i}].key_sha256: the same key as another principal")
        seen_ids.add(item["id"])
        seen_keys.add(item["key_sha256"])
        scopes = item.get("scopes")
        out.append(
            Principal(
                id=item["id"],
                key_digest=bytes.fromhex(item["key_sha256"]),
                permissions=frozenset(item["permissions"]),
                scopes=None if scopes is None or ALL in scopes else frozenset(scopes),
                limits=parse_limits(item.get("limits"), principal_limits),
            )
        )
    return Principals(out, parse_limits(defaults.get("anonymous")))


def load_principals(path: Path | None) -> Principals:
    """The principals of ``path``; none at all when no file is configured (every call is 401)."""
    if path is None:
        return NOBODY
    return parse_principals(read_yaml(path, "principals file", AuthFileError), path)
