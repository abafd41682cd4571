"""Principals and keys: the file is validated with the key at fault named, secrets are matched by
digest in constant time, and missing, unknown or insufficient credentials are told apart."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest_core import auth
from ingest_core.auth import AuthFileError, load_principals, parse_principals
from ingest_core.auth_cli import main as auth_main
from ingest_core.auth_cli import make_dev_principal, make_dev_signing_key
from ingest_core.errors import Forbidden, Unauthorized


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


DOC = {
    "principals": [
        {"id": "all", "key_sha256": sha("s-all"), "permissions": list(auth.PERMISSIONS)},
        {"id": "src", "key_sha256": sha("s-src"), "permissions": ["source-import"], "scopes": ["your_id"]},
        {"id": "star", "key_sha256": sha("s-star"), "permissions": ["import"], "scopes": ["*"]},
    ]
}


def principals() -> auth.Principals:
    return parse_principals(DOC, Path("auth.yaml"))


def test_credentials_are_told_apart_missing_unknown_and_not_allowed() -> None:
    p = principals()
    assert p.authorize("s-all", "source-import", "anything").id == "all"
    assert p.authorize("s-src", "source-import", "your_id").id == "src"
    for secret in (None, "", "nope"):
        with pytest.raises(Unauthorized):
            p.authorize(secret, "source-import", "your_id")
    with pytest.raises(Forbidden):
        p.authorize("s-src", "import")  # lacks the permission
    with pytest.raises(Forbidden):
        p.authorize("s-src", "source-import", "other")  # lacks the scope
    star = p.authorize("s-star", "import", "whatever")
    assert star.unscoped


def test_every_principal_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    p = principals()
    assert p.authenticate("s-all") is not None  # the first one matches: the others are compared too
    assert len(calls) == 3
    assert all(b == hashlib.sha256(b"s-all").digest() for _a, b in calls)


def test_user_id_and_token_must_belong_together() -> None:
    p = principals()
    assert p.authenticate_user("all", "s-all") is not None
    assert p.authenticate_user("src", "s-all") is None
    assert p.authenticate_user(None, "s-all") is None


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({}, "(top level): 'principals' is a required property"),
        ({"principals": [{"id": "a", "key_sha256": "abc", "permissions": []}]}, "principals[0].key_sha256"),
        (
            {"principals": [{"id": "a", "key_sha256": sha("x"), "permissions": ["fly"]}]},
            "principals[0].permissions[0]",
        ),
        (
            {"principals": [{"id": "a", "key_sha256": sha("x")}]},
            "principals[0]: 'permissions' is a required property",
        ),
        (
            {"principals": [{"id": "a", "key_sha256": sha("x"), "permissions": []}] * 2},
            "principals[1].id: duplicate principal id 'a'",
        ),
        (
            {
                "principals": [
                    {"id": "a", "key_sha256": sha("x"), "permissions": []},
                    {"id": "b", "key_sha256": sha("x"), "permissions": []},
                ]
            },
            "principals[1].key_sha256: the same key as another principal",
        ),
    ],
)
def test_a_bad_file_names_the_key_at_fault(tmp_path: Path, doc: Any, fragment: str) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(AuthFileError) as info:
        load_principals(path)
    assert str(info.value).startswith(str(path))
    assert fragment in str(info.value)


def test_no_file_means_no_principals() -> None:
    assert len(load_principals(None)) == 0
    with pytest.raises(Unauthorized):
        load_principals(None).authorize("anything", "ingest")


def test_the_development_principal_is_made_once_private_and_holds_every_permission(tmp_path: Path) -> None:
    path, secret = make_dev_principal(tmp_path / "data")
    assert secret is not None
    for made in (path, tmp_path / "data" / "dev-secret"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert (tmp_path / "data" / "dev-secret").read_text().strip() == secret
    assert secret not in path.read_text()  # only its digest
    p = load_principals(path)
    for permission in auth.PERMISSIONS:
        assert p.authorize(secret, permission, "any-target").id == "dev"
    again, none = make_dev_principal(tmp_path / "data")
    assert (again, none) == (path, None)  # kept, and not shown again
    key = make_dev_signing_key(tmp_path / "data")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == make_dev_signing_key(tmp_path / "data").read_text()


def test_hash_prints_the_digest_for_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("my secret\n"))
    assert auth_main(["hash"]) == 0
    assert capsys.readouterr().out.strip() == sha("my secret")
