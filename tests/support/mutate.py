"""Generated inputs: a valid JSON document mutated at random, for tests that compare two paths."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def mutate(rng: random.Random, doc: Any, values: Sequence[Any], names: Sequence[str], depth: int = 0) -> Any:
    """``doc`` with at most one change per level: a value replaced by one of ``values``, a member or
    item dropped, or a member named from ``names`` added. ``doc`` itself is not changed."""
    if not isinstance(doc, dict | list) or depth > 3 or rng.random() < 0.1:
        return rng.choice(values) if rng.random() < 0.5 else doc
    out: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    keys = list(range(len(out))) if isinstance(out, list) else list(out)
    if keys and rng.random() < 0.65:
        key = rng.choice(keys)
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = mutate(rng, out[key], values, names, depth + 1)
    elif isinstance(out, dict):
        out[rng.choice(names)] = rng.choice(values)
    return out
