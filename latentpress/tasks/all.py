"""Every task module, imported at once: a Dask worker ``preload`` so that workers pay
their import cost (torch, diffusers, Prefect's task engine) when they start."""

from latentpress.tasks import archive, compress, decode, encode, evaluate, ingest, restore  # noqa: F401
