"""``ingest-auth``: the principals file's helpers.

ingest-auth hash         read a secret on standard input, print its SHA-256 (for key_sha256)
ingest-auth check        validate AUTH_FILE
ingest-auth dev [DIR]    a development principal with every permission and an upload signing key,
                         for ``make run`` without AUTH_FILE: made once under DIR (default ./data),
                         files of mode 0600; the secret is printed when it is made, with a curl
                         example per import API
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import yaml

from ingest_core.auth import PERMISSIONS, AuthFileError, digest, load_principals

DEV_ID = "dev"
AUTH_NAME = "auth.yaml"
SECRET_NAME = "dev-secret"  # noqa: S105 (a file name, not a secret)
SIGNING_KEY_NAME = "upload-signing-key"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def examples(secret: str, base_url: str) -> str:
    """A working curl per import API, for the development principal."""
    entry = '{"date": "2024-03-08 00:29:00", "name": "User 1", "content": "Feedback 1"}'
    line = '{"type": "user_profile", "data": {"user_id": "12345", "name": "John Doe"}}'
    return (
        "# a REST source's entries\n"
        f"curl -X POST '{base_url}/api/v1/source/import' -H 'X-API-KEY: {secret}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"""  -d '{{"source_id": "your_id", "payload": [{entry}]}}'\n"""
        "# a JSONL import: make it, upload its file to the upload_url answered, read its status\n"
        f"curl -X POST '{base_url}/v1/import' -H 'Authorization: Bearer {secret}'\n"
        f"echo '{line}' > lines.jsonl\n"
        "curl -X PUT -T lines.jsonl '<upload_url>' -H 'Content-Type: application/jsonl'\n"
        f"curl '{base_url}/v1/import/<import_id>' -H 'Authorization: Bearer {secret}'\n"
        "# an entity file import (CSV or XLSX), then its job\n"
        "printf 'name,email,age\\nAnn,ann@example.com,41\\n' > customers.csv\n"
        f"curl -X POST '{base_url}/api/v1/entities/customers/import' -H 'Authorization: Bearer {secret}' \\\n"
        "  -H 'domain: example.com' -F type=csv -F file=@customers.csv \\\n"
        """  -F 'mapping={"1": "name", "2": "email", "3": "age"}'\n"""
        f"curl '{base_url}/api/v1/job/<id>' -H 'Authorization: Bearer {secret}'\n"
        "# an import operation: new, stage users, run, status\n"
        f"H=(-H 'X-User-Id: {DEV_ID}' -H 'X-Auth-Token: {secret}')\n"
        f"curl -X POST '{base_url}/api/v1/import.new' \"${{H[@]}}\"\n"
        f"curl -X POST '{base_url}/api/v1/import.addUsers' \"${{H[@]}}\" \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"users": [{"username": "ann", "emails": ["ann@example.com"], "importIds": ["a1"]}]}'\n"""
        f"curl -X POST '{base_url}/api/v1/import.run' \"${{H[@]}}\"\n"
        f"curl '{base_url}/api/v1/import.status' \"${{H[@]}}\"\n"
    )


def make_dev_signing_key(directory: Path) -> Path:
    """The development UPLOAD_SIGNING_KEY under ``directory`` (mode 0600), made if missing."""
    path = directory / SIGNING_KEY_NAME
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(path, secrets.token_urlsafe(32) + "\n")
    return path


def make_dev_principal(directory: Path) -> tuple[Path, str | None]:
    """The development principals file under ``directory``, made if missing; the new secret when it
    was made now, else None (it was printed when made, and is kept in ``dev-secret``)."""
    auth = directory / AUTH_NAME
    if auth.exists():
        return auth, None
    directory.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    doc = {
        "principals": [
            {
                "id": DEV_ID,
                "description": "made by make run for local development; every permission",
                "key_sha256": digest(secret).hex(),
                "permissions": list(PERMISSIONS),
                "scopes": ["*"],
            }
        ]
    }
    _write_private(directory / SECRET_NAME, secret + "\n")
    _write_private(auth, yaml.safe_dump(doc, sort_keys=False))
    return auth, secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest-auth", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["hash", "check", "dev"])
    parser.add_argument("dir", nargs="?", default="data")
    args = parser.parse_args(argv)
    if args.command == "hash":
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            print("ingest-auth: no secret on standard input", file=sys.stderr)
            return 2
        print(digest(secret).hex())
        return 0
    if args.command == "check":
        path = os.environ.get("AUTH_FILE", "").strip()
        try:
            principals = load_principals(Path(path) if path else None)
        except AuthFileError as exc:
            print(f"ingest-auth: {exc}", file=sys.stderr)
            return 2
        print(f"ingest-auth: {len(principals)} principals")
        return 0
    auth, secret = make_dev_principal(Path(args.dir))
    make_dev_signing_key(Path(args.dir))
    if secret is None:
        kept = auth.parent / SECRET_NAME
        print(f"ingest-auth: development principal {DEV_ID!r} in {auth} (its secret: {kept})")
    else:
        host = os.environ.get("GATEWAY_HOST", "127.0.0.1")
        base = os.environ.get("PUBLIC_BASE_URL") or f"http://{host}:{os.environ.get('GATEWAY_PORT', '8080')}"
        print(
            f"ingest-auth: made the development principal {DEV_ID!r} in {auth}, with every permission.\n"
            f"Its secret, shown this once (kept in {auth.parent / SECRET_NAME}, mode 0600):\n\n  {secret}\n\n"
            f"Try it:\n\n{examples(secret, base)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
