"""prefect.yaml: every deployment names a real flow, valid parameters and schedules."""

from __future__ import annotations

import importlib
import inspect

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule

from conftest import REPO

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_points_at_a_flow_with_its_parameters(deployment: dict) -> None:
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    signature = inspect.signature(flow.fn)
    signature.bind(**deployment.get("parameters", {}))  # raises on unknown or missing parameters
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))


def test_nightly_archive_is_scheduled() -> None:
    nightly = next(d for d in DEPLOYMENTS if d["name"] == "nightly-archive")
    assert nightly["entrypoint"].endswith(":archive_flow") and nightly["schedules"]
