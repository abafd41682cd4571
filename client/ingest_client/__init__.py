"""A client for the ingestion gateway's ``POST /v2/data/in/{dataset}``: batching, gzip, retries
that keep each batch's msgid (so nothing is stored twice), backpressure.

    async with AsyncIngestClient("http://127.0.0.1:8080", api_key="...") as client:
        for event in events:
            await client.send("example", event)
    # every event acknowledged (on Kafka) or failed when the block ends: see client.counters
"""

from ingest_client.aio import AsyncIngestClient, Counters
from ingest_client.errors import BufferFull, ClientClosed, IngestClientError, SendError
from ingest_client.sync import IngestClient

__all__ = [
    "AsyncIngestClient",
    "BufferFull",
    "ClientClosed",
    "Counters",
    "IngestClient",
    "IngestClientError",
    "SendError",
]
