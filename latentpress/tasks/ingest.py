"""Ingest tasks: read, validate and identify images."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from latentpress.infra.collection import Item, inspect_image


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 4, 16])
def inspect_batch(files: dict[str, str], root: str) -> list[Item]:
    """Inspect a batch of files (URL -> version); bad images come back as failed items.

    Only storage errors raise (and are retried); bad input never does.
    """
    return [inspect_image(url, root, version) for url, version in files.items()]
