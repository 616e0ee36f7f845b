"""Collection models of a run: found in the archive, imported from elsewhere, or
trained (one GPU-tagged job per codec and preset) before any image is encoded; and
the ``train`` command, which trains one model on a collection without an archive."""

from __future__ import annotations

from latentpress.codecs import CodecConfig, codec_info, parse_specs
from latentpress.flows.common import Job, Plan, finished, ids, job_errors, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult
from latentpress.infra.collection import Item
from latentpress.infra.layout import model_id_of
from latentpress.infra.model_files import model_id
from latentpress.pipeline import collection_models as stage
from latentpress.pipeline.outcomes import Outcome, describe
from latentpress.run import Run, TrainRun

ModelKey = tuple[str, str]
"""(codec, preset): one collection model serves every quality point of both."""


def key(config: CodecConfig) -> ModelKey:
    return config.name, config.preset


def model_ids(models: dict[ModelKey, str]) -> dict[str, str]:
    """``codec.preset`` -> model id, as the manifest records them."""
    return {f"{codec}.{preset}": model_id_of(url) for (codec, preset), url in models.items()}


def collection_models(
    plan: Plan, usable: dict[CodecConfig, list[Item]], run: Run, result: RunResult
) -> dict[ModelKey, str]:
    """The URL of the collection model of each codec and preset of the plan's
    configurations that needs one: the archive's own, else ``run.model`` copied into
    the archive, else one trained on a sample of ``usable`` images (``run.train_sample``
    of them, default the preset's; ``run.train_steps``: instead of the preset's). A
    model that cannot be had turns every image of its configurations into an
    ``error`` outcome (stage ``compress``)."""
    context = plan.context
    wanted = {key(c): c for c in plan.configs if codec_info(c.name).collection_model}
    if run.model and len(wanted) != 1:
        raise ValueError(f"--model names one model, but {len(wanted)} codec(s) of this run use collection models")
    urls: dict[ModelKey, str] = {}
    jobs = []
    for group, config in wanted.items():
        found = (
            stage.import_model(run.model, context.archive, config, context.vae)
            if run.model
            else stage.archived_model(context.archive, config, model_id(context.vae))
        )
        if found is not None:
            urls[group] = found.url
            continue
        if not any(usable[c] for c in plan.configs if key(c) == group):
            continue  # nothing left to code: no model needed
        chosen = stage.sample(usable[config], run.train_sample or config.params().sample)
        params = {"items": chosen, "latents_url": context.latents, "vae_name": context.vae, "config": config,
                  "out": context.archive, "steps": run.train_steps}  # fmt: skip
        jobs.append(Job(stage.train_model, params, ids(chosen), f"{config.name}.{config.preset}", gpu=True))
    for job, trained in finished(plan.executor, start(plan.executor, jobs), "train collection models"):
        config = job.params["config"]
        if isinstance(trained, BaseException):
            for other in (c for c in plan.configs if key(c) == key(config)):
                reason = f"no {config.name}:{config.preset} model: {describe(trained)}"
                result.add("compress", [Outcome(i.image_id, other.key, "error", reason) for i in usable[other]])
            result.add("train", job_errors(job, trained))
        else:
            urls[key(config)] = trained.url
            result.add("train", [Outcome(i, job.config_key, "ok") for i in job.image_ids])
    return urls


def train(run: TrainRun, executor: Executor | None = None) -> stage.TrainedModel:
    """Train one collection model of the codec spec ``run.codec`` on a deterministic
    sample of the images under ``run.source`` and store it at ``run.model_url`` (a
    ``.lpm`` URL)."""
    from latentpress.pipeline.ingest import list_images

    executor = executor or InProcess()
    config = parse_specs([run.codec])[0]
    if not codec_info(config.name).collection_model:
        raise ValueError(f"codec {config.name!r} does not train collection models")
    files = stage.sample_files(sorted(list_images(run.source)), run.sample or config.params().sample)
    params = {"files": files, "root": run.source, "vae_name": run.vae, "config": config, "out": run.model_url,
              "steps": run.steps}  # fmt: skip
    job = Job(stage.train_from_files, params, [], f"{config.name}.{config.preset}", gpu=True, size=len(files))
    for _, trained in finished(executor, start(executor, [job]), f"train {config.name}:{config.preset}"):
        if isinstance(trained, BaseException):
            raise trained
        return trained
    raise RuntimeError("the training job gave no result")
