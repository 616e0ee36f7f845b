"""Restore: archived images back to image files, as the collection was (its folder
tree and names) or one folder per configuration."""

from __future__ import annotations

from latentpress.codecs import codec_info
from latentpress.flows.common import Job, balanced_batch, chunks, finished, job_errors, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult, new_run_id
from latentpress.infra.collection import archived_items, collection_parts
from latentpress.infra.layout import ArchiveLayout, read_manifest
from latentpress.infra.ledger import refusals
from latentpress.pipeline.outcomes import Outcome
from latentpress.pipeline.restore import keys_by_image, restore_batch, restore_plan, restore_targets, write_index
from latentpress.run import RestoreRun


def restore(run: RestoreRun, executor: Executor | None = None) -> RunResult:
    """Decode every image of ``run.archive`` under the chosen configurations to files of
    format ``run.fmt`` and write ``<out>/restored.csv``. Without ``run.configs``, each
    image comes from the configuration the archive's quality-floor selection chose for
    it, if it has one (``pipeline.selection``), else from every configuration.

    ``layout="original"`` recreates the collection's folder tree and file names (see
    ``pipeline.restore_names``) from one configuration per image: the selection's, the
    only one of the archive or the one chosen; ``"ids"`` writes
    ``<out>/<config-key>/<image-id>.<ext>`` for any number. An image with no container
    under a configuration is ``rejected`` when the ledger records that the codec
    refused it, else an ``error``.
    """
    executor = executor or InProcess()
    archive, out, layout, fmt = run.archive, run.out, run.layout, run.fmt
    manifest = read_manifest(archive)
    items = archived_items(archive)
    if not items and not collection_parts(archive):  # a second listing only when there is nothing to restore
        raise ValueError(f"archive {archive} has no collection (ARCHIVE/collection/): without it nothing says which "
                         "images the archive holds or their names")  # fmt: skip
    ids = [item.image_id for item in items]
    plan = restore_plan(archive, manifest, run.configs, ids)
    if layout == "original" and any(len(keys) > 1 for keys in keys_by_image(plan).values()):
        raise ValueError(f"the original layout restores one configuration per image; choose one of archive {archive}'s "
                         f"({', '.join(plan)}), or restore them all in the ids layout")  # fmt: skip
    names = {item.image_id: item.name for item in items}
    sizes = {item.image_id: (item.width, item.height) for item in items}
    domains = {}
    for config in manifest["configs"]:
        try:
            domains[config["key"]] = codec_info(config["codec"]).domain
        except KeyError as exc:
            raise ValueError(f"archive {archive}: manifest configuration {config['key']}: {exc.args[0]}") from None
    result = RunResult(new_run_id())
    size = balanced_batch(run.batch_size, sum(len(wanted) for wanted in plan.values()), executor.threads)
    planned = keys_by_image(plan)
    everywhere = restore_targets(out, layout, "", {i: names[i] for i in planned}, fmt) if layout == "original" else {}
    unselected = [i for i in ids if i not in planned]
    result.add("restore", [Outcome(i, "", "error", "no configuration holds it (every codec refused or failed it)")
                           for i in unselected])  # fmt: skip
    jobs = []
    for key, wanted in plan.items():
        stored = ArchiveLayout(archive).stored_images(key)
        result.add("restore", not_stored(archive, key, [i for i in wanted if i not in stored]))
        targets = everywhere or restore_targets(out, layout, key, {i: names[i] for i in wanted}, fmt)
        params = {"archive": archive, "config_key": key, "vae_name": run.vae or manifest["vae"], "fmt": fmt}
        jobs += [Job(restore_batch, {"targets": {i: targets[i] for i in batch},
                                     "sizes": {i: sizes[i] for i in batch if i in sizes}, **params},
                     batch, key, gpu=domains[key] == "latent")
                 for batch in chunks([i for i in wanted if i in stored], size)]  # fmt: skip
    for job, outcomes in finished(executor, start(executor, jobs), "restore"):
        result.add("restore", job_errors(job, outcomes) if isinstance(outcomes, BaseException) else outcomes)
    write_index(out, names, result.stages.get("restore", []))
    return result


def not_stored(archive: str, key: str, image_ids: list[str]) -> list[Outcome]:
    """Outcomes of the images with no container under ``key``: ``rejected`` with the
    codec's reason where the ledger has it, else ``error``."""
    if not image_ids:
        return []
    reasons = refusals(ArchiveLayout(archive).ledger, key)
    return [
        Outcome(i, key, "rejected", f"not archived: {reasons[i]}")
        if i in reasons
        else Outcome(i, key, "error", f"no container stored under {key}")
        for i in image_ids
    ]
