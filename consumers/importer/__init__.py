"""The import worker (``ingest-importer``): runs the import jobs the gateway queues on ``JOBS_TOPIC``."""
