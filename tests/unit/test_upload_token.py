"""Upload tokens: valid for their import until they expire; any change, another key or another
import is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingest_core.errors import Forbidden
from ingest_core.upload_token import VALID_FOR_S, sign, verify

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_a_token_is_valid_for_its_import_for_an_hour() -> None:
    token = sign(KEY, "import_a", NOW)
    verify(KEY, token, "import_a", NOW)
    verify(KEY, token, "import_a", NOW + VALID_FOR_S)
    with pytest.raises(Forbidden, match="expired"):
        verify(KEY, token, "import_a", NOW + VALID_FOR_S + 1)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("import_a", "import_b"),  # another import
        lambda t: (
            t.split(".")[0] + "." + str(int(t.split(".")[1]) + 3600) + "." + t.split(".")[2]
        ),  # later expiry
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature
        lambda t: "",
        lambda t: "no-dots",
        lambda t: "a.b.c",
    ],
)
def test_a_changed_token_is_refused(tamper: Callable[[str], str]) -> None:
    token = sign(KEY, "import_a", NOW)
    with pytest.raises(Forbidden, match="not valid"):
        verify(KEY, tamper(token), "import_a", NOW)


def test_a_token_of_another_key_or_for_another_import_is_refused() -> None:
    with pytest.raises(Forbidden):
        verify(b"other" * 8, sign(KEY, "import_a", NOW), "import_a", NOW)
    with pytest.raises(Forbidden):
        verify(KEY, sign(KEY, "import_b", NOW), "import_a", NOW)
    with pytest.raises(Forbidden):
        verify(KEY, None, "import_a", NOW)


@pytest.mark.parametrize("token", ["import_x.²³.sig", "import_x.1.sïg", "impört.1.sig", "\x00.1.x"])
def test_a_token_of_other_characters_is_refused_not_a_server_error(token: str) -> None:
    # Found by hypothesis: int() reads non-ASCII digits, and compare_digest refuses non-ASCII text.
    with pytest.raises(Forbidden, match="not valid"):
        verify(b"k" * 32, token, "import_x")
