"""Helpers shared by the tests: real brokers and databases, and small clients for them."""
