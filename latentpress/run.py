"""The run object: what a run was asked to do, built once (by the CLI, from a Prefect
deployment's parameters, or by a library caller) and passed whole to the flow that
does it. Past the one to three fields every run names, fields are given by keyword.

A run is frozen and plain data: Prefect validates it from a deployment's parameters
(``prefect.yaml`` nests them under ``run``) and records it with the flow run.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, DEFAULT_VAE
from latentpress.pipeline.context import RunContext


@dataclass(frozen=True)
class Cluster:
    """Where a Prefect flow's tasks run: the Dask cluster at ``dask_address``, or a
    local cluster of ``workers`` single-threaded processes started for the run
    (default: one per core). In-process runs ignore it."""

    dask_address: str | None = None
    workers: int | None = None


@dataclass(frozen=True)
class Run:
    """An ``archive``, ``ingest``, ``compress`` or ``evaluate`` run: the collection at
    ``source`` into ``archive``, with the codec specs ``codecs``, latents of the VAE
    ``vae``; ledger and latent store default to the archive's own.

    ``shard_size``: images per shard when ingesting; ``batch_size``: images per task
    (at most). Collection-model codecs use the archive's model, or ``model`` (copied
    in), or one trained first on ``train_sample`` images for ``train_steps`` steps
    (defaults: the preset's). ``metrics``: those measured (None: all four).
    ``run_id``: the id of its ledger rows (default: a new one).
    """

    archive: str
    _: KW_ONLY
    source: str = ""
    codecs: tuple[str, ...] = ()
    vae: str = DEFAULT_VAE
    ledger: str | None = None
    latents: str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    model: str | None = None
    train_sample: int | None = None
    train_steps: int | None = None
    metrics: tuple[str, ...] | None = None
    run_id: str | None = None
    cluster: Cluster = Cluster()

    def __post_init__(self) -> None:
        object.__setattr__(self, "codecs", tuple(self.codecs))
        if self.metrics is not None:
            object.__setattr__(self, "metrics", tuple(self.metrics))

    def context(self, run_id: str, vae: str | None = None) -> RunContext:
        """What the pipeline steps of this run share, under ``run_id`` (``vae``: instead
        of the run's, e.g. the archive's own when evaluating)."""
        return RunContext(self.archive, vae or self.vae, self.latents or "", self.ledger or "", run_id, self.metrics)


@dataclass(frozen=True)
class RestoreRun:
    """A ``restore`` run: the images of ``archive`` decoded to files of format ``fmt``
    under ``out``, from the configurations ``configs`` (keys; default: the quality-floor
    selection's, else every one), in the folder ``layout`` ``original`` or ``ids``;
    latent codecs through ``vae`` (default: the archive's)."""

    archive: str
    out: str
    _: KW_ONLY
    configs: tuple[str, ...] | None = None
    vae: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    layout: str = "original"
    fmt: str = "png"
    cluster: Cluster = Cluster()

    def __post_init__(self) -> None:
        if self.configs is not None:
            object.__setattr__(self, "configs", tuple(self.configs))


@dataclass(frozen=True)
class TrainRun:
    """A ``train`` run: a collection model of the codec spec ``codec`` trained on
    ``sample`` images under ``source`` (default: the preset's sample size) for ``steps``
    steps (default: the preset's), with latents of ``vae``, stored at ``model_url``."""

    source: str
    model_url: str
    codec: str
    _: KW_ONLY
    vae: str = DEFAULT_VAE
    sample: int | None = None
    steps: int | None = None
    cluster: Cluster = Cluster()
