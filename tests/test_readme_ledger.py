"""The README's worked ledger queries (pandas and DuckDB) run as printed and agree."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from ledger_rows import ledger_row

from latentpress.infra.ledger import append_rows

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_blocks() -> list[str]:
    """The Python code blocks of the README's "Reading the ledger" section."""
    section = README.read_text().split("## Reading the ledger", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _row(image: str, codec: str, quality: float, size: int, lpips: float, **extra) -> dict:
    return ledger_row(image, codec, quality, source=f"/photos/{image}.png", bytes=size, bpp=size * 8 / 8000,
                      lpips=lpips, dists=lpips / 3, **extra)  # fmt: skip


def test_readme_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        _row("x", "avif", 20, 100, 0.30), _row("y", "avif", 20, 200, 0.25),
        _row("x", "avif", 40, 300, 0.15), _row("y", "avif", 40, 400, 0.10),
        _row("x", "latent-q", 0.5, 150, 0.20, vae_id="taesd"), _row("y", "latent-q", 0.5, 500, 0.22, vae_id="taesd"),
        _row("x", "latent-q", 1, 50, 0.0, status="rejected", error="boom"),
        _row("x", "avif", 0.2, 250, 0.19, config_key="avif.default.lpips0.2"),
    ]  # fmt: skip
    append_rows(str(tmp_path / "example-out" / "archive" / "ledger"), rows, "run1")
    monkeypatch.chdir(tmp_path)
    pandas_code, duckdb_code = readme_blocks()
    with_pandas: dict = {}
    exec(pandas_code, with_pandas)  # noqa: S102 - the README's own example
    with_duckdb: dict = {}
    exec(duckdb_code, with_duckdb)  # noqa: S102

    rates = with_pandas["rates"].reset_index()
    assert list(rates["config_key"]) == ["avif.default.lpips0.2", "avif.default.q20", "avif.default.q40",
                                         "latent-q.default.q0.5"]  # fmt: skip
    assert list(rates["bpp"]) == [0.25, 0.15, 0.35, 0.325] and list(rates["lpips"]) == [0.19, 0.275, 0.125, 0.21]
    pd.testing.assert_frame_equal(with_duckdb["rates"].df(), rates, check_dtype=False)

    cheapest = with_pandas["cheapest"].reset_index(drop=True)
    assert cheapest.to_dict("records") == [
        {"image": "x.png", "config_key": "latent-q.default.q0.5", "bpp": 0.15},
        {"image": "y.png", "config_key": "avif.default.q40", "bpp": 0.4},
    ]
    pd.testing.assert_frame_equal(with_duckdb["cheapest"].df(), cheapest, check_dtype=False)
