"""Who is calling, and may they now: credentials from the headers, the data-in API's access rule,
the caller's identity for its rate limits (a principal, or an anonymous client's address, read
from ``X-Forwarded-For`` only when the peer is a trusted proxy), and taking its tokens.

The data-in rule: a dataset the registry marks ``public`` takes anonymous requests; otherwise, and
whenever credentials are sent, they must be a principal's with ``ingest`` and the dataset in scope.
An unknown dataset is not refused here: it answers as before (400 for a bad envelope, else 404).

A request whose credentials are missing or unknown counts against the anonymous limits of its
address, on every API: guessing keys, or flooding with 401s, is limited as anonymous requests are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import hdrs, web
from multidict import CIMultiDictProxy

from gateway.limits import RateLimiter
from gateway.settings import Network
from ingest_core.auth import Limits, Principal
from ingest_core.errors import Forbidden, Unauthorized

if TYPE_CHECKING:  # the context holds an Access
    from gateway.context import GatewayContext

INGEST = "ingest"
API_KEY = "X-API-KEY"


def bearer(headers: CIMultiDictProxy[str]) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header."""
    scheme, _, secret = headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


class Caller(NamedTuple):
    """Whose tokens a request takes: ``key`` names the bucket, ``limits`` sizes it."""

    key: str
    limits: Limits


class Access:
    def __init__(self, limiter: RateLimiter, trusted_proxies: Sequence[Network] = ()) -> None:
        self.limiter = limiter
        self._trusted = tuple(trusted_proxies)

    def data_in(self, ctx: GatewayContext, request: web.Request, dataset_id: str) -> Caller | None:
        """Check the data-in rule and take one request token; the caller, to take its events'
        tokens once they are counted (None: no limits apply). Raises Unauthorized, Forbidden or
        RateLimited."""
        headers = request.headers
        secret = headers.get(API_KEY) or (bearer(headers) if hdrs.AUTHORIZATION in headers else None)
        if secret is None:
            dataset = ctx.registry.datasets.get(dataset_id)
            if dataset is not None and not dataset.public:
                self.unauthenticated(ctx, request)
                raise Unauthorized(
                    "This dataset takes no anonymous requests: send X-API-KEY or Authorization: Bearer"
                )
            limits = ctx.principals.anonymous
            if limits.unlimited:  # the common anonymous path: nothing more to do
                return None
            caller = Caller("a:" + self.client_address(request), limits)
        else:
            principal = ctx.principals.authenticate(secret)
            if principal is None:
                self.unauthenticated(ctx, request)
                raise Unauthorized("Unknown API key")
            if not principal.may(INGEST, dataset_id):
                raise Forbidden("This key may not publish to this dataset: it lacks ingest or the scope")
            caller = self.of(principal)
        self.limiter.take(caller.key, caller.limits)
        return caller

    def authorize(
        self, ctx: GatewayContext, request: web.Request, secret: str | None, permission: str,
        target: str | None = None,
    ) -> Principal:  # fmt: skip
        """The import APIs' check (``Principals.authorize``), then one request token of the principal."""
        try:
            principal = ctx.principals.authorize(secret, permission, target)
        except Unauthorized:
            self.unauthenticated(ctx, request)
            raise
        self.take_request(principal)
        return principal

    def unauthenticated(self, ctx: GatewayContext, request: web.Request) -> None:
        """A request about to be answered 401 takes an anonymous token of its address; raises
        RateLimited (429) when there is none left."""
        limits = ctx.principals.anonymous
        if not limits.unlimited:
            self.limiter.take("a:" + self.client_address(request), limits)

    def take_events(self, caller: Caller | None, events: int) -> None:
        if caller is not None:
            self.limiter.take(caller.key, caller.limits, requests=0, events=events)

    def take_request(self, principal: Principal) -> None:
        """One request of an authenticated principal; raises RateLimited."""
        caller = self.of(principal)
        self.limiter.take(caller.key, caller.limits)

    @staticmethod
    def of(principal: Principal) -> Caller:
        return Caller("p:" + principal.id, principal.limits)

    def client_address(self, request: web.Request) -> str:
        """The peer's address; behind trusted proxies, the right-most untrusted address of
        ``X-Forwarded-For`` (each proxy appends the address it got the request from)."""
        peer = request.remote or ""
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops = [h.strip() for h in ",".join(request.headers.getall(hdrs.X_FORWARDED_FOR, ())).split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # not an address: the header cannot be believed past here
        return peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)
