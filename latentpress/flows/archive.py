"""Archive flow: ingest, compress and evaluate a collection in one run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from prefect import flow

from latentpress.config import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, DEFAULT_VAE
from latentpress.flows.common import use_cluster
from latentpress.flows.compress import compress, parse_specs
from latentpress.flows.evaluate import evaluate
from latentpress.flows.ingest import ingest
from latentpress.infra.archive import ArchiveLayout
from latentpress.infra.collection import Item
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

    The ingest, compress and evaluate steps run in this one flow on one set of
    workers (each is also a flow of its own).

    Reruns are idempotent: stored containers and ledger rows are never redone.
    """
    parse_specs(codecs)  # fail fast on a bad codec spec, before any work
    run_id = uuid.uuid4().hex[:12]
    ledger_url = ledger or ArchiveLayout(archive).ledger
    with use_cluster(dask_address, workers) as running:
        running.runner.client.run(warm_up_in_background)  # while ingest and compress run
        items = ingest(running, source, archive, shard_size)
        statuses = compress(running, archive, codecs, vae, latents, ledger_url, run_id, batch_size)
        rows = evaluate(running, archive, ledger_url, run_id, batch_size)
    return ArchiveReport(run_id=run_id, items=items, compress=statuses, rows=rows)
