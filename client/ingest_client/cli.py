"""``ingest-send DATASET [FILE|-]``: send the events of a JSON Lines file (or a JSON array) to the
gateway with the client, showing a progress bar (events/s, and the ETA when the count is known),
then a summary: sent, retried, failed with the reasons. Exit status 0 when every event was
acknowledged, 1 when any failed, 2 for bad arguments or an unreadable file."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ingest_client.aio import AsyncIngestClient
from ingest_client.errors import SendError

DEFAULT_URL = "http://127.0.0.1:8080"


def _events(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """``(line number, event)`` of JSON Lines, or ``(index, event)`` of a JSON array; an event that
    is not JSON comes as a ValueError in its place."""
    head = stream.peek(64)[:64].lstrip() if hasattr(stream, "peek") else b""
    if head.startswith(b"["):
        yield from enumerate(orjson.loads(stream.read()))
        return
    for number, line in enumerate(stream, 1):
        if line.strip():
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, ValueError(f"line {number}: not JSON ({exc.msg})")


def _count(path: Path) -> int | None:
    """Events in a JSON Lines file (its non-blank lines), for the ETA; None for an array."""
    with path.open("rb") as f:
        if f.read(64).lstrip().startswith(b"["):
            return None
        f.seek(0)
        return sum(1 for line in f if line.strip())


async def send(args: argparse.Namespace, stream: IO[bytes], total: int | None) -> int:
    from tqdm import tqdm

    reasons: Counter[str] = Counter()
    bar = tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, disable=args.quiet, smoothing=0.1)

    def done(future: asyncio.Future[None]) -> None:
        bar.update(1)
        error = future.exception()
        if error is not None:
            reasons[str(error)[:200]] += 1

    client = AsyncIngestClient(
        args.url, args.api_key, max_batch_events=args.batch, on_invalid="split" if args.split else "fail"
    )
    async with client:
        for _where, event in _events(stream):
            if isinstance(event, ValueError):
                reasons[str(event)] += 1
                client.counters.failed += 1
                bar.update(1)
                continue
            future = await client.send(args.dataset, event)
            future.add_done_callback(done)
    bar.close()
    counters = client.counters
    print(f"sent: {counters.sent}", file=sys.stderr)
    print(f"retried: {counters.retried} requests", file=sys.stderr)
    print(f"failed: {counters.failed}", file=sys.stderr)
    for reason, count in reasons.most_common(10):
        print(f"  {count} x {reason}", file=sys.stderr)
    return 1 if counters.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest-send", description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument(
        "file", nargs="?", default="-", help="JSON Lines or a JSON array; - for stdin (default)"
    )
    parser.add_argument("--url", default=os.environ.get("INGEST_URL", DEFAULT_URL), help="INGEST_URL")
    parser.add_argument("--api-key", default=os.environ.get("INGEST_API_KEY"), help="INGEST_API_KEY")
    parser.add_argument("--batch", type=int, default=500, help="events per request (default 500)")
    parser.add_argument("--split", action="store_true", help="send the good events of a refused batch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.file == "-":
            return asyncio.run(send(args, sys.stdin.buffer, None))
        path = Path(args.file)
        total = _count(path)
        with path.open("rb") as stream:
            return asyncio.run(send(args, stream, total))
    except OSError as exc:
        print(f"ingest-send: {exc}", file=sys.stderr)
        return 2
    except (orjson.JSONDecodeError, SendError) as exc:
        print(f"ingest-send: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
