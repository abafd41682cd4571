"""The HTTP program: accepts events over HTTP, validates them, and publishes them to Kafka."""
