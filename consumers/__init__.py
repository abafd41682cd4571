"""The Kafka consumer programs: a shared runner, then one package per service."""
