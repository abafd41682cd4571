"""Fetch the local broker's jars from Maven Central as the lock names them, each checked against
its SHA-256; no Maven needed. Standard library only: it runs before the project's venv exists.

    python3 scripts/fetch_jars.py LOCK DEST       download into DEST (made anew)
    python3 scripts/fetch_jars.py --lock LIBS     print a lock for the jars in LIBS, with their
                                                  coordinates read from ~/.m2 (after a Maven fetch)

The lock (scripts/kafka-jars.lock) has one ``group:artifact:version sha256`` a line.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPOSITORY = os.environ.get("MAVEN_REPOSITORY_URL", "https://repo1.maven.org/maven2").rstrip("/")
TRIES = 4


def _parse(lock: Path) -> list[tuple[str, str, str, str]]:
    entries = []
    for number, line in enumerate(lock.read_text("utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            coordinates, sha256 = line.split()
            group, artifact, version = coordinates.split(":")
        except ValueError:
            raise SystemExit(
                f"fetch_jars: {lock}:{number}: expected 'group:artifact:version sha256'"
            ) from None
        entries.append((group, artifact, version, sha256.lower()))
    return entries


def _fetch(entry: tuple[str, str, str, str], dest: Path) -> int:
    group, artifact, version, sha256 = entry
    name = f"{artifact}-{version}.jar"
    url = f"{REPOSITORY}/{group.replace('.', '/')}/{artifact}/{version}/{name}"
    for attempt in range(1, TRIES + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a fixed https URL)
                data = response.read()
            break
        except OSError as exc:
            if attempt == TRIES:
                raise SystemExit(f"fetch_jars: {url}: {exc}") from None
            time.sleep(attempt)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"fetch_jars: {url}: SHA-256 {digest}, the lock says {sha256}: refused")
    (dest / name).write_bytes(data)
    return len(data)


def fetch(lock: Path, dest: Path) -> None:
    entries = _parse(lock)
    # Into a sibling first, then renamed: an interrupted fetch never leaves a partial DEST.
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest.parent))
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            total = sum(pool.map(lambda e: _fetch(e, staging), entries))
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(
        f"fetch_jars: {len(entries)} jars, {total / 1e6:.1f} MB, each checked against the lock",
        file=sys.stderr,
    )


def lock_lines(libs: Path) -> list[str]:
    repository = Path.home() / ".m2" / "repository"
    lines = []
    for jar in sorted(libs.glob("*.jar")):
        hits = list(repository.rglob(jar.name))
        if len(hits) != 1:
            raise SystemExit(f"fetch_jars: {jar.name}: {len(hits)} copies in {repository}, expected one")
        found = hits[0]
        *group, artifact, version, _ = found.relative_to(repository).parts
        lines.append(f"{'.'.join(group)}:{artifact}:{version} {hashlib.sha256(jar.read_bytes()).hexdigest()}")
    return lines


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--lock":
        print("\n".join(lock_lines(Path(argv[1]))))
    elif len(argv) == 2:
        fetch(Path(argv[0]), Path(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
