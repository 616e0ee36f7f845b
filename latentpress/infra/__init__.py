"""Infrastructure: storage, latent store, archive format, ledger, cluster, models."""
