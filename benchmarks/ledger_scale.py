"""The ledger at scale: a synthetic ledger of N rows in the real schema, queried as
users query it, before and after ``ledger compact``.

The ledger holds ``--images`` images under ten configurations of three codecs (rows
of every image under every configuration, as a finished archive has), written as a
run writes them: one Parquet part per batch of ``--batch`` images and codec. Timed,
each in a fresh process (peak memory from the OS): ``ledger summary``, ``report``
without crops, the README's pandas and DuckDB queries; then ``ledger compact`` and
the same again. Nothing is committed but the figures.

    python benchmarks/ledger_scale.py --images 1000000     # 10 M rows, writes ledger_scale.{md,json}
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mdtable import table

from latentpress.infra import storage
from latentpress.infra.ledger import FILE_SCHEMA

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "latentpress"
CONFIGS = (
    [("jpeg", q) for q in (20, 40, 60)]
    + [("avif", q) for q in (10, 20, 30, 40)]
    + [("latent-q", q) for q in (0.25, 0.5, 1.0)]
)


def write_ledger(url: str, images: int, batch: int, seed: int = 0) -> int:
    """Write the synthetic ledger; returns the number of parts."""
    rng = np.random.default_rng(seed)
    parts = 0
    now = datetime(2026, 11, 30, tzinfo=UTC)
    for start in range(0, images, batch):
        count = min(batch, images - start)
        ids = [f"{i:016x}" for i in range(start, start + count)]
        for codec in ("jpeg", "avif", "latent-q"):
            qualities = [q for c, q in CONFIGS if c == codec]
            n = count * len(qualities)
            quality = np.repeat(np.array(qualities, float), count)
            size = rng.integers(2_000, 60_000, n)
            columns = {
                "image_id": np.tile(ids, len(qualities)),
                "source": [f"s3://photos/collection/{i[:2]}/{i}.jpg" for i in np.tile(ids, len(qualities))],
                "width": np.full(n, 768, np.int32), "height": np.full(n, 512, np.int32),
                "preset": np.full(n, "default"), "quality": quality,
                "config_key": [f"{codec}.default.q{q:g}" for q in quality],
                "params": np.full(n, json.dumps({"quality": 0})), "codec_library": np.full(n, "Pillow 13.0.0"),
                "vae_id": np.full(n, "taesd" if codec == "latent-q" else None),
                "bytes": size, "shared_model_id": np.full(n, None), "shared_model_bytes": np.full(n, None),
                "shared_images": np.full(n, None), "bpp": size * 8 / (768 * 512),
                "psnr": rng.normal(30, 3, n), "ms_ssim": rng.uniform(0.85, 0.99, n), "lpips": rng.uniform(0.05, 0.4, n),
                "dists": rng.uniform(0.05, 0.3, n), "metrics": np.full(n, None), "encode_seconds": rng.uniform(0.01, 1, n),
                "decode_seconds": rng.uniform(0.01, 1, n), "device": np.full(n, "cpu"), "status": np.full(n, "ok"),
                "error": np.full(n, None), "shard": np.full(n, start // 1000, np.int32),
                "run_id": np.full(n, f"run{start // batch}"), "code_version": np.full(n, "0.2.0"),
                "timestamp": np.full(n, now),
            }  # fmt: skip
            table_ = pa.Table.from_pydict({f.name: pa.array(columns[f.name], type=f.type) for f in FILE_SCHEMA},
                                          schema=FILE_SCHEMA)  # fmt: skip
            out = io.BytesIO()
            pq.write_table(table_, out)
            storage.write_bytes_atomic(f"{url}/codec={codec}/part-run{start // batch}-{uuid.uuid4().hex}.parquet",
                                       out.getvalue())  # fmt: skip
            parts += 1
    return parts


QUERIES = {
    "ledger summary": [str(BIN), "ledger", "summary", "{ledger}", "--format", "csv"],
    "report (no crops)": [str(BIN), "report", "{ledger}", "{out}", "--crops", "0"],
}


def readme_query(which: int, ledger: str) -> str:
    """The README's ``which``-th worked query (0: pandas, 1: DuckDB) on ``ledger``."""
    section = (REPO / "README.md").read_text().split("## Reading the ledger", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[which]
    return code.replace("example-out/archive/ledger", ledger)


_WRAPPER = """import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def timed(command: list[str]) -> dict:
    """Seconds and peak memory (MiB) of ``command``, run alone in a new process."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, check=True)
    seconds, peak_kib, code = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(command[:4])} failed with status {code}: {done.stderr[-2000:]}")
    return {"seconds": round(float(seconds), 1), "peak_mib": round(int(peak_kib) / 1024)}


def measure(ledger: str, work: Path, label: str) -> list[dict]:
    rows = []
    for name, command in QUERIES.items():
        out = work / f"report-{label}"
        rows.append({"ledger": label, "query": name, **timed([c.format(ledger=ledger, out=out) for c in command])})
    for which, name in ((0, "README pandas query"), (1, "README DuckDB query")):
        rows.append({"ledger": label, "query": name, **timed([sys.executable, "-c", readme_query(which, ledger)])})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000, help="images (10 rows each; default %(default)s)")
    parser.add_argument("--batch", type=int, default=1_000, help="images per part (default %(default)s)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--work", help="folder for the ledger (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        ledger = str(work / "ledger")
        start = time.perf_counter()
        parts = write_ledger(ledger, args.images, args.batch)
        written = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(ledger).rglob("*.parquet"))
        rows = measure(ledger, work, f"{parts} parts")
        compacted = timed([str(BIN), "ledger", "compact", ledger])
        after = len(list(Path(ledger).rglob("*.parquet")))
        rows.append({"ledger": f"{parts} parts", "query": "ledger compact", **compacted})
        rows += measure(ledger, work, f"{after} parts")
        size_after = sum(p.stat().st_size for p in Path(ledger).rglob("*.parquet"))
    facts = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "images": args.images,
        "rows": args.images * len(CONFIGS), "parts": parts, "parts_after": after,
        "bytes": size, "bytes_after": size_after, "write_seconds": round(written, 1),
    }  # fmt: skip
    results = Path(args.results)
    (results / "ledger_scale.json").write_text(json.dumps({"facts": facts, "rows": rows}, indent=1) + "\n")
    text = (f"# Ledger at scale\n\n{facts['rows']:,} rows ({args.images:,} images x {len(CONFIGS)} configurations) "
            f"in {parts:,} parts of {args.batch:,} images, {size / 2**20:.0f} MiB of Parquet "
            f"({size_after / 2**20:.0f} MiB in {after} parts after `ledger compact`); {facts['date']}, "
            f"one process per query on this machine (2 cores).\n\n{table(rows)}\n")  # fmt: skip
    (results / "ledger_scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
