"""The run object: typed, frozen, keyword past its first fields, validated whole when
a deployment's parameters build it."""

from __future__ import annotations

import dataclasses

import pytest
from prefect.exceptions import ParameterTypeError

from latentpress.flows.prefect_flows import archive_flow, restore_flow
from latentpress.infra.layout import ArchiveLayout
from latentpress.run import Cluster, RestoreRun, Run, TrainRun


def test_fields_past_the_first_are_given_by_keyword() -> None:
    with pytest.raises(TypeError):
        Run("archive/", "photos/")  # type: ignore[misc]  # which was the source? nobody has to guess
    with pytest.raises(TypeError):
        RestoreRun("archive/", "out/", ["jpeg.default.q50"])  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainRun("photos/", "model.lpm", "glc:fast", "taesd")  # type: ignore[misc]


def test_a_run_is_frozen_and_its_lists_become_tuples() -> None:
    run = Run("archive/", source="photos/", codecs=["avif@30"], metrics=["lpips"])
    assert run.codecs == ("avif@30",) and run.metrics == ("lpips",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.archive = "elsewhere/"  # type: ignore[misc]
    assert hash(run) == hash(Run("archive/", source="photos/", codecs=("avif@30",), metrics=("lpips",)))


def test_the_pipeline_context_defaults_to_the_archives_own_ledger_and_latents(tmp_path) -> None:
    layout = ArchiveLayout(str(tmp_path))
    context = Run(str(tmp_path), vae="taesdxl", metrics=["psnr"]).context("run-1")
    assert (context.ledger, context.latents, context.vae) == (layout.ledger, layout.latents, "taesdxl")
    assert (context.run_id, context.metrics) == ("run-1", ("psnr",))
    elsewhere = Run(str(tmp_path), ledger="s3://b/ledger", latents="s3://b/latents").context("r", vae="taesd3")
    assert (elsewhere.ledger, elsewhere.latents, elsewhere.vae) == ("s3://b/ledger", "s3://b/latents", "taesd3")


def test_deployment_parameters_build_the_run_object() -> None:
    params = archive_flow.validate_parameters({"run": {"archive": "s3://a/arch", "source": "s3://a/photos",
                                                       "codecs": ["avif@30"], "cluster": {"workers": 2}}})  # fmt: skip
    assert params["run"] == Run("s3://a/arch", source="s3://a/photos", codecs=("avif@30",), cluster=Cluster(workers=2))
    restore = restore_flow.validate_parameters({"run": {"archive": "a", "out": "o", "configs": ["jpeg.default.q50"]}})
    assert restore["run"].configs == ("jpeg.default.q50",)


@pytest.mark.parametrize(
    ("run", "field"),
    [
        ({"archive": "a", "batchsize": 8}, "batchsize"),  # a misspelled option is refused, not ignored
        ({"archive": "a", "cluster": {"worker": 2}}, "worker"),
        ({"archive": "a", "batch_size": "many"}, "batch_size"),
        ({"source": "photos/"}, "archive"),  # missing
    ],
)
def test_a_wrong_deployment_parameter_is_refused_by_name(run: dict, field: str) -> None:
    with pytest.raises(ParameterTypeError, match=field):
        archive_flow.validate_parameters({"run": run})
