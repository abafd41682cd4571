"""Shared core of the gateway and the consumers: registry, record format, validation, Kafka helpers.

Imported by both programs; imports neither of them.
"""
