"""Token buckets per caller, on a fake clock: refill, Retry-After, batches larger than a burst, and
the bound on the callers kept; the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway.access import Access, bearer
from gateway.limits import RateLimiter
from ingest_core.auth import UNLIMITED, Limits, parse_limits
from ingest_core.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_beyond_the_burst_wait_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = Limits(requests_per_s=2, requests_burst=3)
    for _ in range(3):
        limiter.take("p:a", limits)
    with pytest.raises(RateLimited) as refused:
        limiter.take("p:a", limits)
    assert refused.value.retry_after_s == 1  # half a second rounds up to a whole one
    limiter.take("p:b", limits)  # another caller has buckets of its own
    clock.now += 0.5
    limiter.take("p:a", limits)
    with pytest.raises(RateLimited):
        limiter.take("p:a", limits)


def test_a_refused_request_takes_no_token() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = Limits(requests_per_s=1, requests_burst=1, events_per_s=10, events_burst=10)
    limiter.take("c", limits, requests=1, events=0)
    for _ in range(5):
        with pytest.raises(RateLimited):
            limiter.take("c", limits, requests=1, events=1)
    clock.now += 1
    limiter.take("c", limits, requests=1, events=10)  # the events' bucket was never drawn on


def test_events_are_limited_and_retry_after_counts_the_deficit() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = Limits(events_per_s=100, events_burst=100)
    limiter.take("c", limits, requests=0, events=100)
    with pytest.raises(RateLimited) as refused:
        limiter.take("c", limits, requests=0, events=100)
    assert refused.value.retry_after_s == 1
    clock.now += 0.3
    with pytest.raises(RateLimited) as refused:
        limiter.take("c", limits, requests=0, events=100)
    assert refused.value.retry_after_s == 1  # 70 events short at 100/s: 0.7 s, rounded up


def test_a_batch_larger_than_the_burst_passes_on_a_full_bucket_and_leaves_it_in_debt() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = Limits(events_per_s=10, events_burst=10)
    limiter.take("c", limits, requests=0, events=50)  # full bucket: passes, 40 in debt
    with pytest.raises(RateLimited) as refused:
        limiter.take("c", limits, requests=0, events=1)
    assert refused.value.retry_after_s == 5  # from -40 to 10 at 10/s
    clock.now += 5
    limiter.take("c", limits, requests=0, events=50)


def test_unlimited_callers_keep_no_state_and_callers_are_bounded() -> None:
    limiter = RateLimiter(max_callers=3, clock=Clock())
    for i in range(1000):
        limiter.take(f"a:{i}", UNLIMITED)
    assert len(limiter) == 0
    limits = Limits(requests_per_s=1, requests_burst=1)
    for i in range(10):
        limiter.take(f"a:{i}", limits)
    assert len(limiter) == 3
    limiter.take("a:0", limits)  # dropped long ago: starts again with a full bucket


def test_limits_default_their_burst_to_one_second() -> None:
    assert parse_limits({"requests_per_s": 50.5, "events_per_s": 0.5}) == Limits(50.5, 50, 0.5, 1)
    assert parse_limits(None) is UNLIMITED
    assert parse_limits({"requests_per_s": 5, "requests_burst": 9}).requests_burst == 9


class FakeRequest:
    def __init__(self, remote: str, forwarded: list[str]) -> None:
        from multidict import CIMultiDict, CIMultiDictProxy

        headers: CIMultiDict[str] = CIMultiDict()
        for value in forwarded:
            headers.add("X-Forwarded-For", value)
        self.remote = remote
        self.headers = CIMultiDictProxy(headers)


def _address(trusted: list[str], remote: str, *forwarded: str) -> str:
    access = Access(RateLimiter(), [ipaddress.ip_network(t) for t in trusted])
    request: Any = FakeRequest(remote, list(forwarded))
    return access.client_address(request)


def test_x_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    assert _address([], "203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert _address(["10.0.0.0/8"], "203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert _address(["10.0.0.0/8"], "10.1.2.3", "198.51.100.1") == "198.51.100.1"
    # A client's own X-Forwarded-For is to the left of what the trusted proxies appended.
    assert _address(["10.0.0.0/8"], "10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9") == "198.51.100.1"
    assert _address(["10.0.0.0/8"], "10.1.2.3", "1.1.1.1", "198.51.100.1") == "198.51.100.1"
    assert _address(["10.0.0.0/8"], "10.1.2.3", "not-an-address") == "10.1.2.3"
    assert _address(["10.0.0.0/8"], "10.1.2.3") == "10.1.2.3"
    assert _address(["::1/128"], "::1", "2001:db8::1") == "2001:db8::1"


def test_bearer_reads_only_the_bearer_scheme() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    def of(value: str) -> str | None:
        return bearer(CIMultiDictProxy(CIMultiDict({"Authorization": value})))

    assert of("Bearer s3cret") == "s3cret"
    assert of("bearer  s3cret ") == "s3cret"
    assert of("Basic dXNlcjpwYXNz") is None
    assert of("Bearer ") is None
