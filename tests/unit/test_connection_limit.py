"""The most connections the gateway keeps open, against the process's file descriptor limit."""

from __future__ import annotations

import logging
import resource

import pytest

from gateway.listener import FD_RESERVE, connection_limit

INF = resource.RLIM_INFINITY


def limits(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, settable: bool = True
) -> list[tuple[int, int]]:
    """Fake descriptor limits; returns the list of limits set."""
    state, calls = [soft, hard], []

    def setrlimit(_which: int, value: tuple[int, int]) -> None:
        calls.append(value)
        if not settable:
            raise ValueError("not allowed")
        state[:] = list(value)

    monkeypatch.setattr(resource, "getrlimit", lambda _which: tuple(state))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return calls


def test_the_soft_limit_is_raised_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = limits(monkeypatch, 1024, 1_048_576)
    assert connection_limit(10_000) == 10_000
    assert calls == [(10_000 + FD_RESERVE, 1_048_576)]


def test_a_limit_that_fits_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits(monkeypatch, 20_000, 20_000) == []
    assert connection_limit(10_000) == 10_000
    assert limits(monkeypatch, INF, INF) == []
    assert connection_limit(10_000) == 10_000


def test_fewer_connections_where_the_hard_limit_is_too_low(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = limits(monkeypatch, 1024, 4096)
    with caplog.at_level(logging.WARNING):
        assert connection_limit(10_000) == 4096 - FD_RESERVE
    assert calls == [(4096, 4096)]
    assert "GATEWAY_MAX_CONNECTIONS=10000 lowered to 3968" in caplog.text
    limits(monkeypatch, 200, 200)
    assert connection_limit(10_000) == 100  # half, where the reserve would leave too few


def test_a_limit_that_cannot_be_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    limits(monkeypatch, 1024, 1_048_576, settable=False)
    with caplog.at_level(logging.WARNING):
        assert connection_limit(10_000) == 1024 - FD_RESERVE
    assert "cannot raise the file descriptor limit from 1024 to 10128" in caplog.text
