"""Ledger rows as the pipeline makes them: one per image, configuration and run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from latentpress import __version__
from latentpress.codecs import CodecConfig, get_codec
from latentpress.config import get_settings
from latentpress.infra.collection import Item
from latentpress.pipeline.outcomes import Outcome


def base_row(item: Item, config: CodecConfig, run_id: str) -> dict:
    """A ledger row for ``item`` under ``config`` with no measurement yet."""
    return {
        "image_id": item.image_id,
        "source": item.source,
        "width": item.width,
        "height": item.height,
        "codec": config.name,
        "preset": config.preset,
        "quality": config.quality,
        "config_key": config.key,
        "params": json.dumps(config.to_dict(), sort_keys=True),
        "params_fingerprint": config.fingerprint(),
        "codec_library": get_codec(config.name).library(),
        "vae_id": None,
        "bytes": None,
        "bpp": None,
        "psnr": None,
        "ms_ssim": None,
        "lpips": None,
        "dists": None,
        "encode_seconds": None,
        "decode_seconds": None,
        "device": get_settings().device,
        "status": "ok",
        "error": None,
        "shard": item.shard,
        "run_id": run_id,
        "code_version": __version__,
        "timestamp": datetime.now(UTC),
    }


def rejected_rows(items: list[Item], configs: list[CodecConfig], outcomes: list[Outcome], run_id: str) -> list[dict]:
    """Ledger rows of the images a codec refused in this run (``rejected``, not cached)."""
    by_id = {item.image_id: item for item in items}
    by_key = {config.key: config for config in configs}
    return [
        {**base_row(by_id[o.image_id], by_key[o.config_key], run_id), "status": "rejected", "error": o.reason}
        for o in outcomes
        if o.status == "rejected" and not o.cached and o.config_key in by_key and o.image_id in by_id
    ]
