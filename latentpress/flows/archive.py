"""Archive flow: ingest, compress and evaluate a collection in one run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from prefect import flow
from prefect.futures import PrefectFuture

from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, DEFAULT_VAE
from latentpress.codecs import CodecConfig, get_codec
from latentpress.flows.common import FlowError, Workers, finished, flatten, gather, shard_batches, use_cluster
from latentpress.flows.compress import (
    compression_jobs,
    encode_latents,
    finish_compression,
    is_latent,
    parse_specs,
    submit_compression,
)
from latentpress.flows.evaluate import recorded, submit_evaluation, unevaluated
from latentpress.flows.ingest import ingest
from latentpress.infra.archive import ArchiveLayout, read_manifest
from latentpress.infra.cluster import gpu_tasks
from latentpress.infra.collection import Item
from latentpress.tasks.archive import archive_batch, to_evaluate
from latentpress.tasks.evaluate import warm_up_in_background


@dataclass
class ArchiveReport:
    """What one archive run did."""

    run_id: str
    items: list[Item]
    compress: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    @property
    def failed_items(self) -> list[Item]:
        return [i for i in self.items if i.status != "ok"]


@flow(name="archive")
def archive_flow(
    source: str,
    archive: str,
    codecs: list[str],
    ledger: str | None = None,
    vae: str = DEFAULT_VAE,
    latents: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dask_address: str | None = None,
    workers: int | None = None,
) -> ArchiveReport:
    """Archive every image under ``source`` into ``archive`` with each codec and
    record the results in the ledger (default ``<archive>/ledger``).

    The ingest, compress and evaluate steps (each also a flow of its own) run in
    this one flow on one set of workers, every batch evaluated as soon as it is
    compressed (``Pipeline``).

    Reruns are idempotent: stored containers and ledger rows are never redone.
    """
    configs = parse_specs(codecs)  # fail fast on a bad codec spec, before any work
    run_id = uuid.uuid4().hex[:12]
    ledger_url = ledger or ArchiveLayout(archive).ledger
    with use_cluster(dask_address, workers) as running:
        running.runner.client.run(warm_up_in_background)  # while ingest and compress run
        items = ingest(running, source, archive, shard_size)
        good = [item for item in items if item.status == "ok"]
        run = Pipeline(running, archive, configs, vae, latents or ArchiveLayout(archive).latents, ledger_url, run_id)
        statuses, rows = run(good, running.batch_size(batch_size, len(good)))
    return ArchiveReport(run_id=run_id, items=items, compress=statuses, rows=rows)


@dataclass
class Pipeline:
    """Compression and evaluation of one archive run, without a barrier between them.

    A batch is compressed and evaluated by one ``archive_batch`` task; a shared-model
    codec's shard is evaluated in batches as soon as its model is fitted. Containers
    stored by earlier runs under configurations this run does not name, and missing
    from the ledger, are evaluated too.
    """

    running: Workers
    archive: str
    configs: list[CodecConfig]
    vae: str
    latents_url: str
    ledger_url: str
    run_id: str

    def __call__(self, items: list[Item], size: int) -> tuple[list[dict], list[dict]]:
        """Compression statuses and new ledger rows for ``items`` in batches of ``size``."""
        done = recorded(self.ledger_url)
        earlier = read_manifest(self.archive, missing_ok=True)
        leftovers = [c for c in map(CodecConfig.from_dict, earlier.get("configs", [])) if c not in self.configs]
        statuses = encode_latents(self.running, items, self.configs, self.latents_url, self.vae, size)
        jobs = compression_jobs(self.configs, items, size, self.running.threads)
        futures = [self.compression(config, group, done) for config, group in jobs]
        evaluations = [
            self.evaluation(config, batch, earlier["vae"])
            for config, images in unevaluated(self.archive, leftovers, done).items()
            for batch in shard_batches(images, size)
        ]
        rows: list[dict] = []
        try:
            for position, result in finished(futures, "compress and evaluate"):
                config, group = jobs[position]
                if get_codec(config.name).shared:  # a fitted shard: evaluate it in batches
                    statuses += result
                    todo = to_evaluate(group, result, done.get(config.key, set()))
                    evaluations += [self.evaluation(config, batch, self.vae) for batch in shard_batches(todo, size)]
                else:
                    statuses += result[0]
                    rows += result[1]
        except FlowError:
            gather(evaluations, "evaluate")  # the rows of what was compressed are kept
            raise
        finish_compression(self.archive, self.ledger_url, items, self.configs, statuses, self.run_id, self.vae)
        return statuses, rows + flatten(gather(evaluations, "evaluate"))

    def compression(self, config: CodecConfig, items: list[Item], done: dict[str, set[str]]) -> PrefectFuture:
        """``fit_shard`` for a shared-model codec's shard, ``archive_batch`` for a batch."""
        if get_codec(config.name).shared:
            return submit_compression(self.running, [(config, items)], self.archive, self.latents_url, self.vae)[0]
        in_ledger = {i.image_id for i in items} & done.get(config.key, set())  # only this batch's ids travel
        parameters = {
            "items": items, "archive": self.archive, "latents_url": self.latents_url, "vae_name": self.vae,
            "config": config, "ledger_url": self.ledger_url, "run_id": self.run_id, "recorded": in_ledger,
        }  # fmt: skip
        with gpu_tasks(self.running.gpus and is_latent(config)):
            return self.running.runner.submit(archive_batch, parameters)

    def evaluation(self, config: CodecConfig, items: list[Item], vae: str) -> PrefectFuture:
        return submit_evaluation(self.running, self.archive, config, items, vae, self.ledger_url, self.run_id)

