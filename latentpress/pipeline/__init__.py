"""The work of each stage, as plain functions over storage URLs with typed outcomes.

Read in the order the data flows:

- :mod:`.ingest`: list a collection, identify and validate each file, shard;
- :mod:`.encode`: images to VAE latents in the Zarr latent store;
- :mod:`.compress`: one container per image and codec configuration (or a shared
  model per shard); :mod:`.manifest` closes a compression run;
- :mod:`.evaluate`: decode the stored bytes, measure, append ledger rows
  (:mod:`.rows`); :mod:`.archive` compresses and evaluates a batch in one call;
- :mod:`.decode`: container bytes back to pixels; :mod:`.restore` writes them out.

Each image ends every stage as ``ok``, ``rejected`` or ``error``
(:mod:`.outcomes`). Nothing here knows Prefect or Dask: ``latentpress.flows``
runs these functions over batches, in this process or on a cluster.
"""
