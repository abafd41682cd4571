"""Typed reading of environment variables, with errors that name the variable at fault."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """A setting from the environment is malformed; the message names the variable."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def env_opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _env_number(
    env: Mapping[str, str], name: str, default: N, minimum: N, parse: Callable[[str], N], kind: str,
    maximum: N | None = None,
) -> N:  # fmt: skip
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected {kind}") from None
    if not value >= minimum:  # also refuses nan
        raise SettingsError(f"{name}={value}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value}: must be at most {maximum}")
    return value


def env_int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    return _env_number(env, name, default, minimum, int, "an integer", maximum)


def env_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    return _env_number(env, name, default, minimum, float, "a number", maximum)


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(env, name, default).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value
