"""Collection models of a run: found in the archive, imported from elsewhere, or
trained (one GPU-tagged job per codec and preset) before any image is encoded; and
the ``train`` command, which trains one model on a collection without an archive."""

from __future__ import annotations

from latentpress.codecs import CodecConfig, codec_info, parse_specs
from latentpress.config import DEFAULT_VAE
from latentpress.flows.common import Job, finished, ids, job_errors, start
from latentpress.flows.executors import Executor, InProcess
from latentpress.flows.results import RunResult
from latentpress.infra.collection import Item
from latentpress.infra.layout import model_id_of
from latentpress.infra.model_files import model_id
from latentpress.pipeline import collection_models as stage
from latentpress.pipeline.outcomes import Outcome, describe

ModelKey = tuple[str, str]
"""(codec, preset): one collection model serves every quality point of both."""


def key(config: CodecConfig) -> ModelKey:
    return config.name, config.preset


def model_ids(models: dict[ModelKey, str]) -> dict[str, str]:
    """``codec.preset`` -> model id, as the manifest records them."""
    return {f"{codec}.{preset}": model_id_of(url) for (codec, preset), url in models.items()}


def collection_models(
    executor: Executor,
    configs: list[CodecConfig],
    usable: dict[CodecConfig, list[Item]],
    archive: str,
    latents_url: str,
    vae: str,
    result: RunResult,
    model: str | None = None,
    sample: int | None = None,
    steps: int | None = None,
) -> dict[ModelKey, str]:
    """The URL of the collection model of each codec and preset of ``configs`` that
    needs one: the archive's own, else ``model`` copied into the archive, else one
    trained on a sample of ``usable`` images (``sample`` of them, default the preset's;
    ``steps``: instead of the preset's). A model that cannot be had turns every image
    of its configurations into an ``error`` outcome (stage ``compress``)."""
    wanted = {key(c): c for c in configs if codec_info(c.name).collection_model}
    if model and len(wanted) != 1:
        raise ValueError(f"--model names one model, but {len(wanted)} codec(s) of this run use collection models")
    urls: dict[ModelKey, str] = {}
    jobs = []
    for group, config in wanted.items():
        found = (
            stage.import_model(model, archive, config, vae)
            if model
            else stage.archived_model(archive, config, model_id(vae))
        )
        if found is not None:
            urls[group] = found.url
            continue
        if not any(usable[c] for c in configs if key(c) == group):
            continue  # nothing left to code: no model needed
        chosen = stage.sample(usable[config], sample or config.params().sample)
        params = {"items": chosen, "latents_url": latents_url, "vae_name": vae, "config": config, "out": archive,
                  "steps": steps}  # fmt: skip
        jobs.append(Job(stage.train_model, params, ids(chosen), f"{config.name}.{config.preset}", gpu=True))
    for job, trained in finished(executor, start(executor, jobs), "train collection models"):
        config = job.params["config"]
        if isinstance(trained, BaseException):
            for other in (c for c in configs if key(c) == key(config)):
                reason = f"no {config.name}:{config.preset} model: {describe(trained)}"
                result.add("compress", [Outcome(i.image_id, other.key, "error", reason) for i in usable[other]])
            result.add("train", job_errors(job, trained))
        else:
            urls[key(config)] = trained.url
            result.add("train", [Outcome(i, job.config_key, "ok") for i in job.image_ids])
    return urls


def train(
    source: str,
    model_url: str,
    codec: str,
    vae: str = DEFAULT_VAE,
    sample: int | None = None,
    steps: int | None = None,
    executor: Executor | None = None,
) -> stage.TrainedModel:
    """Train one collection model of the codec spec ``codec`` on a deterministic sample
    of the images under ``source`` and store it at ``model_url`` (a ``.lpm`` URL)."""
    from latentpress.pipeline.ingest import list_images

    executor = executor or InProcess()
    config = parse_specs([codec])[0]
    if not codec_info(config.name).collection_model:
        raise ValueError(f"codec {config.name!r} does not train collection models")
    files = stage.sample_files(sorted(list_images(source)), sample or config.params().sample)
    params = {"files": files, "root": source, "vae_name": vae, "config": config, "out": model_url, "steps": steps}
    job = Job(stage.train_from_files, params, [], f"{config.name}.{config.preset}", gpu=True, size=len(files))
    for _, trained in finished(executor, start(executor, [job]), f"train {config.name}:{config.preset}"):
        if isinstance(trained, BaseException):
            raise trained
        return trained
    raise RuntimeError("the training job gave no result")
