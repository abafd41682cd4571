"""The in-flight bounds: requests, bytes of bodies, events; each refused with OVERLOADED beyond."""

from __future__ import annotations

import pytest

from gateway.admission import Admission
from ingest_core.errors import Overloaded


def test_each_bound_refuses_what_would_go_beyond_it_and_keeps_no_share_of_it() -> None:
    a = Admission(max_requests=2, max_bytes=100, max_events=10)
    a.admit(60)
    with pytest.raises(Overloaded):
        a.admit(41)  # 101 bytes
    a.admit(40)  # exactly 100
    assert (a.requests, a.bytes) == (2, 100)
    a.release(40, 0)
    with pytest.raises(Overloaded):
        Admission(max_requests=1, max_bytes=100, max_events=10, requests=1).admit(0)
    a.add_events(7)
    with pytest.raises(Overloaded):
        a.add_events(4)
    assert (a.requests, a.bytes, a.events) == (1, 60, 7)
    a.release(60, 7)
    assert (a.requests, a.bytes, a.events) == (0, 0, 0)


def test_a_body_of_unannounced_length_gives_back_what_it_did_not_use() -> None:
    a = Admission(max_requests=10, max_bytes=100, max_events=10)
    a.admit(100)  # held at the most a body may be, until read
    with pytest.raises(Overloaded):
        a.admit(1)
    a.resize(100, 30)
    a.admit(70)
    assert a.bytes == 100
    a.release(30, 0)
    a.release(70, 0)
    assert (a.requests, a.bytes) == (0, 0)


async def test_a_held_share_is_given_back_on_every_way_out() -> None:
    a = Admission(max_requests=2, max_bytes=100, max_events=10)
    async with a.hold(100) as held:
        assert (a.requests, a.bytes) == (1, 100)
        held.resize(30)
        held.add_events(4)
        assert (a.bytes, a.events) == (30, 4)
    assert (a.requests, a.bytes, a.events) == (0, 0, 0)
    with pytest.raises(Overloaded):
        async with a.hold(100) as held:
            held.add_events(11)
    assert (a.requests, a.bytes, a.events) == (0, 0, 0)
    with pytest.raises(Overloaded):
        async with a.hold(101):
            raise AssertionError("not admitted: the body is over the bound")
    assert (a.requests, a.bytes, a.events) == (0, 0, 0)
