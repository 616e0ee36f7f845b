"""clric end to end through Prefect and Dask: archive at a lambda and at a target size, restore."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import DecodeContext, get_codec
from latentpress.codecs.clric import rate
from latentpress.flows.prefect_flows import archive_flow, restore_flow
from latentpress.infra.layout import read_manifest, unpack_image
from latentpress.infra.ledger import read_ledger
from latentpress.pipeline.decode import decode_container
from latentpress.run import Cluster, RestoreRun, Run

pytestmark = pytest.mark.e2e

KEYS = ["clric.fast.bpp1", "clric.fast.q1"]


def test_archive_restore_clric_at_lambda_and_target_bpp(
    mixed_collection: Path, tmp_path: Path, cluster: Cluster
) -> None:
    archive = tmp_path / "archive"
    report = archive_flow(
        Run(
            str(archive),
            source=str(mixed_collection),
            codecs=["clric:fast@1,bpp1"],
            batch_size=3,
            cluster=cluster,
        )
    )
    assert sum(i.status == "rejected" for i in report.items) == 3 and report.ok

    ledger = read_ledger(str(archive / "ledger"))
    assert len(ledger) == 6 and set(ledger["status"]) == {"ok"}, ledger[["config_key", "status", "error"]].to_string()
    assert sorted(set(ledger["config_key"])) == KEYS
    assert (ledger["encode_seconds"] > 0).all() and (ledger["decode_seconds"] > 0).all()
    assert set(ledger["vae_id"]) == {"taesd"} and (ledger["lpips"] < 0.6).all()
    at_lambda = ledger[ledger["config_key"] == "clric.fast.q1"]
    assert (at_lambda["quality"] == 1.0).all()
    assert all(json.loads(p)["quality"] == 1.0 for p in at_lambda["params"])
    sized = ledger[ledger["config_key"] == "clric.fast.bpp1"]
    assert (sized["quality"] == 1.0).all()  # the target; the lambda found is in params
    assert ((sized["bpp"] - 1.0).abs() <= 0.1).all()
    found = [json.loads(p)["quality"] for p in sized["params"]]  # the lambdas found
    assert all(rate.LAMBDA_RANGE[0] <= lam <= rate.LAMBDA_RANGE[1] for lam in found) and len(set(found)) == 3
    entries = {c["key"]: c for c in read_manifest(str(archive))["configs"]}
    assert entries["clric.fast.bpp1"]["target_bpp"] is True and "target_bpp" not in entries["clric.fast.q1"]

    out = tmp_path / "restored"
    restored = restore_flow(RestoreRun(str(archive), str(out), layout="ids", cluster=cluster)).stages["restore"]
    assert {o.status for o in restored} == {"ok"} and len(restored) == 6
    codec = get_codec("clric")
    for row in ledger.itertuples():
        data = (archive / "images" / row.config_key / f"{row.image_id}.lpc").read_bytes()
        container, config = unpack_image(data)
        assert config["target_bpp"] is True if row.config_key == KEYS[0] else "target_bpp" not in config
        context = DecodeContext(container.width, container.height, "taesd")
        first = codec.decode(container.sections["payload"], context)
        np.testing.assert_array_equal(first, codec.decode(container.sections["payload"], context))
        expected, _ = decode_container(data, "taesd", str(archive))
        restored = np.asarray(Image.open(out / row.config_key / f"{row.image_id}.png"))
        np.testing.assert_array_equal(restored, expected)
        assert restored.shape == (row.height, row.width, 3)
