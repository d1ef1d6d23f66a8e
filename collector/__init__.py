"""Khiên collector: enrollment, idempotent ingest, storage and the evaluation pipeline."""
