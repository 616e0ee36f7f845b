"""Prefect tasks: thin, idempotent wrappers over codecs, models and infra."""
