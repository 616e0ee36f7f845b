"""The Parquet ledger: append-only writes, reads, summaries and exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from ledger_rows import ledger_row

from latentpress.infra.ledger import (
    LEDGER_SCHEMA,
    LedgerError,
    append_rows,
    export,
    read_ledger,
    summarize,
)


def _row(image: str, codec: str = "jpeg", quality: float = 5, run_id: str = "run1", **extra: Any) -> dict[str, Any]:
    """A ledger row of a 768x512 image (the Kodak size)."""
    base = {"width": 768, "height": 512, "bytes": 4915, "bpp": 0.1, "params": json.dumps({"quality": quality})}
    return ledger_row(image, codec, quality, run_id=run_id, **(base | extra))


def _snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*.parquet")}


def _assert_rows_equal(df: pd.DataFrame, rows: list[dict[str, Any]]) -> None:
    assert list(df.columns) == LEDGER_SCHEMA.names
    got = df.sort_values(["run_id", "image_id", "codec"], ignore_index=True)
    want = sorted(rows, key=lambda r: (r["run_id"], r["image_id"], r["codec"]))
    assert len(got) == len(want)
    for index, row in enumerate(want):
        for name, value in row.items():
            stored = got.at[index, name]
            if value is None:
                assert pd.isna(stored), (index, name, stored)
            else:
                assert stored == value, (index, name, stored, value)


def test_append_twice_then_read(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    first = [
        _row("a"),
        _row("b", bpp=0.25, shard=None),
        _row("a", codec="avif", quality=20, vae_id="taesd"),
    ]
    urls1 = append_rows(str(ledger), first, "run1")
    assert sorted(p.name for p in ledger.iterdir()) == ["codec=avif", "codec=jpeg"]
    assert len(urls1) == 2 and all(Path(u).name.startswith("part-run1-") for u in urls1)
    before = _snapshot(ledger)

    second = [
        _row(
            "c",
            run_id="run2",
            status="rejected",
            error="decode failed",
            bytes=None,
            bpp=None,
            psnr=None,
        ),
        _row("a", codec="latent-q", quality=0.5, run_id="run2"),
    ]
    urls2 = append_rows(str(ledger), second, "run2")
    assert not set(urls1) & set(urls2)
    after = _snapshot(ledger)
    assert {p: after[p] for p in before} == before
    assert len(after) == 4 and {p.parent.name for p in after} == {
        "codec=avif",
        "codec=jpeg",
        "codec=latent-q",
    }

    df = read_ledger(str(ledger))
    _assert_rows_equal(df, first + second)
    assert df["width"].dtype == "Int32" and df["shard"].isna().sum() == 1
    assert str(df["timestamp"].dt.tz) == "UTC"


def test_codec_is_only_the_partition_key(tmp_path: Path) -> None:
    """Files do not repeat ``codec``, so plain pandas/pyarrow readers of the folder work."""
    ledger = tmp_path / "ledger"
    (url,) = append_rows(str(ledger), [_row("a"), _row("b")], "run1")
    assert "codec" not in pq.read_schema(url).names
    append_rows(str(ledger), [_row("a", codec="avif", run_id="run2")], "run2")
    plain = pd.read_parquet(ledger)
    assert sorted(plain["codec"].astype(str)) == ["avif", "jpeg", "jpeg"]


def test_defaults_and_params_mapping(tmp_path: Path) -> None:
    row = _row("a", params={"speed": 6, "quality": 5})
    for name in ("run_id", "code_version", "timestamp"):
        del row[name]
    append_rows(str(tmp_path), [row], "run7")
    (stored,) = read_ledger(str(tmp_path)).to_dict("records")
    assert stored["run_id"] == "run7" and stored["code_version"]
    assert stored["params"] == '{"quality": 5, "speed": 6}'
    assert abs(stored["timestamp"] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)


def test_files_written_before_a_column_existed_read_it_as_missing(tmp_path: Path) -> None:
    ledger, scratch = tmp_path / "ledger", tmp_path / "scratch"
    append_rows(str(ledger), [_row("new", codec_library="Pillow 1.0, libjpeg-turbo 3.0")], "run1")
    append_rows(str(scratch), [_row("old")], "run1")  # a file of today's schema, then without the column
    (part,) = scratch.glob("codec=*/*.parquet")
    pq.write_table(pq.read_table(part).drop(["codec_library"]), ledger / part.parent.name / "part-old.parquet")
    df = read_ledger(str(ledger)).set_index("image_id")
    assert df.loc["new", "codec_library"] == "Pillow 1.0, libjpeg-turbo 3.0"
    assert pd.isna(df.loc["old", "codec_library"])


def test_empty_ledger(tmp_path: Path) -> None:
    df = read_ledger(str(tmp_path / "nothing-yet"))
    assert df.empty and list(df.columns) == LEDGER_SCHEMA.names
    assert summarize(df).empty


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device": None}, "'device' is missing"),
        ({"bytes": "many"}, "'bytes'"),
        ({"width": 2**40}, "'width'"),
        ({"colour": "red"}, "unknown column.*colour"),
        ({"status": "meh"}, "'status' must be one of"),
        ({"codec": "../evil"}, "'codec'"),
        ({"run_id": "other"}, "'run_id'"),
    ],
)
def test_schema_validation(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        append_rows(str(tmp_path), [_row("a"), _row("b") | change], "run1")
    assert not list(tmp_path.rglob("*.parquet"))


def test_missing_column_and_bad_run_id(tmp_path: Path) -> None:
    row = _row("a")
    del row["config_key"]
    with pytest.raises(LedgerError, match="row 0: column 'config_key' is missing"):
        append_rows(str(tmp_path), [row], "run1")
    with pytest.raises(LedgerError, match="run_id"):
        append_rows(str(tmp_path), [_row("a")], "../run1")


def test_summarize_hand_computed() -> None:
    rows = [
        _row("a", bpp=0.2, psnr=30.0, lpips=0.4, encode_seconds=1.0),
        _row("b", bpp=0.4, psnr=34.0, lpips=0.2, encode_seconds=3.0),
        _row("c", status="rejected", bpp=None, psnr=None, lpips=None),
        _row("a", quality=20, bpp=0.9, psnr=40.0),
        _row("a", codec="avif", quality=30, bpp=0.5, psnr=36.0),
        _row("b", codec="avif", quality=10, bpp=0.05, psnr=27.0),
        _row("c", codec="avif", quality=50, status="rejected", bpp=None),
    ]
    out = summarize(pd.DataFrame(rows))
    assert list(out.columns) == [
        "codec", "preset", "config_key", "quality", "images", "bpp", "amortised_bpp", "lpips", "dists", "psnr",
        "ms_ssim", "encode_seconds", "decode_seconds", "rejected",
    ]  # fmt: skip
    assert list(zip(out["codec"], out["quality"], strict=True)) == [
        ("avif", 10), ("avif", 30), ("avif", 50), ("jpeg", 5), ("jpeg", 20),
    ]  # fmt: skip
    jpeg5 = out.iloc[3]
    assert jpeg5["images"] == 2 and jpeg5["rejected"] == 1
    assert jpeg5["bpp"] == pytest.approx(0.3)
    assert jpeg5["psnr"] == pytest.approx(32.0)
    assert jpeg5["lpips"] == pytest.approx(0.3)
    assert jpeg5["encode_seconds"] == pytest.approx(2.0)
    only_failed = out.iloc[2]
    assert only_failed["images"] == 0 and only_failed["rejected"] == 1 and np.isnan(only_failed["bpp"])
    assert list(out["images"]) == [1, 1, 0, 2, 1] and list(out["rejected"]) == [0, 0, 1, 1, 0]


def test_summary_counts_the_latest_row_of_each_image_and_configuration() -> None:
    from datetime import UTC, datetime, timedelta

    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=1)
    rows = [
        _row("a", status="failed", bpp=None, timestamp=early),  # a ledger from before 0.2: retried since
        _row("a", bpp=0.2, timestamp=late),
        _row("b", status="failed", bpp=None, timestamp=early),  # still refused: counted with the rejected
    ]
    out = summarize(pd.DataFrame(rows))
    assert list(out["images"]) == [1] and list(out["rejected"]) == [1] and out["bpp"].iloc[0] == pytest.approx(0.2)


def test_export_round_trips(tmp_path: Path) -> None:
    append_rows(str(tmp_path / "ledger"), [_row("a"), _row("b", bpp=0.3), _row("a", codec="avif")], "run1")
    summary = summarize(read_ledger(str(tmp_path / "ledger")))
    export(summary, str(tmp_path / "s.csv"), "csv")
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back.columns) == list(summary.columns)
    pd.testing.assert_frame_equal(back, summary, check_dtype=False, check_column_type=False)

    export(summary, str(tmp_path / "s.parquet"), "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), summary)
    export(summary, str(tmp_path / "s.json"), "json")
    records = json.loads((tmp_path / "s.json").read_text())
    assert [r["codec"] for r in records] == list(summary["codec"])
    with pytest.raises(ValueError, match="unknown export format"):
        export(summary, str(tmp_path / "s.xlsx"), "xlsx")  # type: ignore[arg-type]


def test_memory_filesystem() -> None:
    url = "memory://latentpress-test-ledger"
    try:
        append_rows(url, [_row("a"), _row("b", codec="webp")], "run1")
        append_rows(url, [_row("c", run_id="run2")], "run2")
        df = read_ledger(url)
        assert sorted(df["image_id"]) == ["a", "b", "c"] and sorted(set(df["codec"])) == [
            "jpeg",
            "webp",
        ]
    finally:
        fsspec.filesystem("memory").rm("/latentpress-test-ledger", recursive=True)


def test_s3_round_trip(s3_root: str) -> None:
    url = f"{s3_root}/ledger-round-trip"
    assert read_ledger(url).empty
    rows = [_row("a"), _row("b", codec="avif", shard=None)]
    urls = append_rows(url, rows, "run1")
    assert sorted(u.rsplit("/", 2)[1] for u in urls) == ["codec=avif", "codec=jpeg"]
    assert all(u.startswith(f"{url}/codec=") for u in urls)
    _assert_rows_equal(read_ledger(url), rows)
