"""Hand-made ledger rows for tests of the ledger's readers (summaries, reports)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

WHEN = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def ledger_row(image: str, codec: str = "jpeg", quality: float = 50, **extra: Any) -> dict[str, Any]:
    """One ok ledger row of a 100x80 image; ``extra`` overrides any column."""
    row = {
        "image_id": image,
        "source": f"photos/{image}.png",
        "width": 100,
        "height": 80,
        "codec": codec,
        "preset": "default",
        "quality": float(quality),
        "config_key": f"{codec}.default.q{quality:g}",
        "params": "{}",
        "vae_id": None,
        "bytes": 1000,
        "bpp": 1.0,
        "psnr": 30.0,
        "ms_ssim": 0.9,
        "lpips": 0.3,
        "dists": 0.2,
        "encode_seconds": 0.01,
        "decode_seconds": 0.02,
        "device": "cpu",
        "status": "ok",
        "error": None,
        "shard": 0,
        "run_id": "run1",
        "code_version": "0.1.0",
        "timestamp": WHEN,
    }
    return row | extra
