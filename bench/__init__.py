"""The benchmark harness: ``make bench`` measures the system and its ceilings side by side, in one run.

Reuses the test suite's real-infrastructure helpers (``tests.support``): the local broker and the
private PostgreSQL cluster.
"""
