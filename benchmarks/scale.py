"""Orchestration and bookkeeping cost from a thousand to a hundred thousand photos.

For each collection size N, builds N distinct small real images on the fly (64x64
crops of the Kodak photos at random offsets, so content ids differ; written under
``--work``, never committed), then times ``latentpress archive`` with a cheap
configuration (``jpeg@50``, metrics ``psnr,ms_ssim``) on a local Dask cluster, as
an operator runs it:

- the first run: wall time and each step's (from the command's own report), the
  start-up (the wall time outside the flow's steps: Prefect server, Dask cluster,
  fixity record), the orchestration per image (the steps' time less the codec and
  metric seconds the ledger records, per worker, per image), the peak memory of the
  flow process, of one Dask worker, of the Dask scheduler and of the Prefect server,
  the number of Prefect task runs (counted in a Prefect database of its own), and
  the sizes of the manifest, the collection's parts, the fixity record (with its
  parts) and the ledger;
- a no-op rerun of the same command;
- a rerun after adding 1% new photos, and the bookkeeping it wrote (every object
  it wrote but the image containers: ledger, collection and fixity parts, manifest).

    python benchmarks/scale.py --sizes 1000,10000          # writes benchmarks/results/scale.{md,json}
    python benchmarks/scale.py --sizes 100000 --keep-results   # adds a row (about 15 minutes here)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
from mdtable import table
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
BIN = Path(sys.executable).parent / "latentpress"
CROP = 64
PER_FOLDER = 1000
COMMAND = ["--codec", "jpeg@50", "--metrics", "psnr,ms_ssim"]


def make_crops(folder: Path, count: int, start: int, seed: int) -> None:
    """Write ``count`` crops (numbered from ``start``) at random offsets of the Kodak photos."""
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("*.png"))]
    rng = np.random.default_rng(seed)
    for n in range(start, start + count):
        photo = photos[n % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - CROP), rng.integers(0, photo.shape[1] - CROP)
        sub = folder / f"{n // PER_FOLDER:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[y : y + CROP, x : x + CROP]).save(sub / f"{n:07d}.png", compress_level=1)


class Peaks:
    """Peak resident memory of a process and, by kind, of its descendants, sampled."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.peaks = {"flow": 0, "worker": 0, "scheduler": 0, "server": 0}
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _kind(self, process: psutil.Process) -> str:
        line = " ".join(process.cmdline())
        if "distributed.Scheduler" in line:
            return "scheduler"
        return "server" if "uvicorn" in line or "prefect.server" in line else "worker"

    def _sample(self) -> None:
        while not self.stop.is_set():
            try:
                self.peaks["flow"] = max(self.peaks["flow"], self.root.memory_info().rss)
                for child in self.root.children(recursive=True):
                    kind = self._kind(child)
                    self.peaks[kind] = max(self.peaks[kind], child.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
            self.stop.wait(self.every)

    def done(self) -> dict[str, int]:
        self.stop.set()
        self.thread.join()
        return {f"peak_{k}_mib": round(v / 2**20) for k, v in self.peaks.items()}


def run_archive(photos: Path, archive: Path, prefect_home: Path, workers: int) -> dict:
    """One ``latentpress archive`` run: wall seconds, steps, peaks."""
    env = os.environ | {"PREFECT_HOME": str(prefect_home), "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "400"}
    command = [str(BIN), "archive", str(photos), str(archive), *COMMAND, "--workers", str(workers)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = Peaks(process.pid)
    output, _ = process.communicate()
    wall = time.perf_counter() - start
    memory = peaks.done()
    if process.returncode != 0:
        raise RuntimeError(f"archive failed ({process.returncode}):\n{output[-3000:]}")
    found = re.search(r"new ledger row\(s\) in [0-9.]+ s \((.*)\)", output)
    steps = dict((s.rsplit(" ", 2)[0], float(s.rsplit(" ", 2)[1])) for s in found[1].split(", ")) if found else {}
    return {"wall_s": round(wall, 1), "steps": steps, **memory}


def task_runs(prefect_home: Path) -> int:
    """Task runs recorded in the Prefect database under ``prefect_home``."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return db.execute("SELECT count(*) FROM task_run").fetchone()[0]


def bookkeeping(archive: Path) -> dict:
    """Sizes of the objects every run rewrites or reads whole."""
    ledger = list((archive / "ledger").rglob("*.parquet"))
    collection = list((archive / "collection").glob("*.parquet")) + list(archive.glob("collection.parquet"))

    def size(name: str) -> int:
        path = archive / name
        return path.stat().st_size if path.exists() else 0

    fixity = list((archive / "fixity").glob("*.txt")) + list(archive.glob("manifest-sha256.txt"))
    return {
        "manifest_kb": round(size("manifest.json") / 1024),
        "collection_kb": round(sum(p.stat().st_size for p in collection) / 1024), "collection_parts": len(collection),
        "fixity_kb": round(sum(p.stat().st_size for p in fixity) / 1024), "fixity_parts": len(fixity),
        "ledger_kb": round(sum(p.stat().st_size for p in ledger) / 1024), "ledger_parts": len(ledger),
    }  # fmt: skip


def codec_seconds(archive: Path) -> float:
    """Encode and decode seconds the ledger records (work, not orchestration)."""
    from latentpress.infra.ledger import read_ledger

    ledger = read_ledger(str(archive / "ledger"), columns=["encode_seconds", "decode_seconds"])
    return float(ledger["encode_seconds"].sum() + ledger["decode_seconds"].sum())


def measure(size: int, work: Path, workers: int) -> dict:
    photos, archive, home = work / f"photos-{size}", work / f"archive-{size}", work / f"prefect-{size}"
    start = time.perf_counter()
    make_crops(photos, size, 0, seed=size)
    built = time.perf_counter() - start
    first = run_archive(photos, archive, home, workers)
    runs = task_runs(home)
    work_seconds = codec_seconds(archive)
    objects = bookkeeping(archive)
    noop = run_archive(photos, archive, home, workers)
    added = max(1, size // 100)
    make_crops(photos, added, size, seed=size + 1)
    since = time.time()
    more = run_archive(photos, archive, home, workers)
    written = [p for p in archive.rglob("*") if p.is_file() and p.stat().st_mtime >= since and "images" not in p.parts]
    return {
        "images": size, "build_s": round(built, 1), "first_run_s": first["wall_s"], "work_s": round(work_seconds, 1),
        "task_runs": runs, **{k: v for k, v in first.items() if k.startswith("peak")}, **objects,
        "noop_rerun_s": noop["wall_s"], "rerun_plus_1pct_s": more["wall_s"],
        "plus_1pct_bookkeeping_kb": round(sum(p.stat().st_size for p in written) / 1024),
        "steps_first": first["steps"], "steps_noop": noop["steps"], "steps_plus_1pct": more["steps"],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="collection sizes (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="local Dask workers (default %(default)s)")
    parser.add_argument("--work", help="folder for the collections and archives (default: a temporary one)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument(
        "--keep-results", action="store_true", help="add to scale.json's rows instead of replacing them"
    )
    parser.add_argument("--render", action="store_true", help="only write scale.md again from scale.json")
    args = parser.parse_args()
    results = Path(args.results)
    if args.render:
        saved = json.loads((results / "scale.json").read_text())
        return render(saved["facts"], saved["rows"], results)
    os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
    previous = (
        json.loads((results / "scale.json").read_text())["rows"]
        if args.keep_results and (results / "scale.json").exists()
        else []
    )
    rows = [r for r in previous if str(r["images"]) not in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(measure(size, Path(tmp), args.workers))
            print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: r["images"])
    facts = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "workers": args.workers, "command": " ".join(COMMAND),
             "cpus": os.cpu_count()}  # fmt: skip
    (results / "scale.json").write_text(json.dumps({"facts": facts, "rows": rows}, indent=1) + "\n")
    return render(facts, rows, results)


def derived(row: dict, workers: int) -> dict:
    """Start-up seconds and orchestration per image of a row (see the module's description)."""
    steps = sum(row["steps_first"].values())
    return {"startup_s": round(row["first_run_s"] - steps, 1),
            "orchestration_ms_per_image": round(1000 * (steps - row["work_s"] / workers) / row["images"], 2)}  # fmt: skip


def render(facts: dict, rows: list[dict], results: Path) -> int:
    flat = [{"images": r["images"], "first_run_s": r["first_run_s"], **derived(r, facts["workers"]),
             **{k: v for k, v in r.items() if k not in ("images", "first_run_s") and not k.startswith("steps")}}
            for r in rows]  # fmt: skip
    steps = [
        {"images": r["images"], "run": run, **r[f"steps_{run}"]} for r in rows for run in ("first", "noop", "plus_1pct")
    ]
    text = (f"# Scale\n\n`latentpress archive ... {facts['command']} --workers {facts['workers']}` on N crops of "
            f"{CROP}x{CROP} pixels; {facts['date']}, {facts['cpus']} CPU cores.\n\n{table(flat)}\n\n"
            f"Seconds per step (from the command's own report):\n\n{table(steps)}\n")  # fmt: skip
    (results / "scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
