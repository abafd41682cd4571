"""The store: the ``records`` table (a public contract for downstream readers) and its migrations.

``open_store(url)`` gives a ``Store`` for ``sqlite:///<path>`` or ``postgresql://...``. Every
service that uses the store applies the same versioned migrations at start (idempotent).
"""

from __future__ import annotations

from ingest_core.store.base import Row, RowsRefused, Store, StoreUnavailable, check_store_url, open_store

__all__ = ["Row", "RowsRefused", "Store", "StoreUnavailable", "check_store_url", "open_store"]
