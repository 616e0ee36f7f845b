"""Prefect flows: ingest, compress, evaluate, restore and archive."""
