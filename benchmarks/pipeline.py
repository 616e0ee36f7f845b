"""Pipeline throughput: the same collection archived three ways.

- ``loop``: the archive flow on the in-process executor (``--local``): the pipeline
  functions called one after another in one process, without Prefect or Dask;
- ``loop-2``: two such loops at once, each on half of the collection: what two
  cores give with no coordination at all (the machine's own ceiling for ``dask-2``);
- ``dask-1`` and ``dask-2``: the ``archive`` flow on a local Dask cluster of one and
  of two single-threaded workers, reporting to a temporary Prefect server, as
  ``latentpress archive`` does.

Each run is a fresh process (no warm caches carried over); every process does its
torch work on one thread, as Dask workers do. Reported per run: images per minute
(wall time of ingest + compress + evaluate; starting the server and the cluster is
reported apart), the work time (measured inside every task body: reading, decoding,
encoding, writing, metrics), the orchestration share ``1 - work / (wall * workers)``
(Prefect and Dask bookkeeping, flow-level reads and writes, and with two workers also
time a worker waits for work), and each worker's peak resident memory (``ru_maxrss``).

    python benchmarks/pipeline.py                      # 64 images of 256x256, jpeg@50
    python benchmarks/pipeline.py --images 8 --results /tmp/bench   # a smoke run
    python benchmarks/pipeline.py --root s3://bucket/bench          # archives on S3

Writes ``pipeline.json`` and ``pipeline.md`` to ``--results`` (default
``benchmarks/results``). Targets: two workers >= 1.8x one worker, orchestration
< 5% with one worker, worker peak memory < 3 GiB.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mdtable import table
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
TARGETS = {"speedup": 1.8, "overhead": 0.05, "peak_gib": 3.0}
RUNS = ("loop", "loop-2", "dask-1", "dask-2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="collection size (default %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="side of the square crops (default %(default)s)")
    parser.add_argument("--codec", default="jpeg@50", help="codec spec, one cheap configuration (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per task (default %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of all runs; medians are reported (default %(default)s)"
    )
    parser.add_argument("--root", help="where the archives go, any fsspec URL (default: a temporary folder)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"), help="folder for pipeline.json/.md")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one run in this process
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--archive", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(one_run(args)))
        return 0
    return compare(args)


def compare(args: argparse.Namespace) -> int:
    """Make the collection, run the three ways in child processes, write the results."""
    from latentpress.infra.cluster import apply_quiet_defaults

    apply_quiet_defaults()
    with tempfile.TemporaryDirectory(prefix="lp-pipeline-") as folder:
        runs = run_all(Path(folder), args)
    results = summarize(runs, args)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "pipeline.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def run_all(work: Path, args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every run ``args.repeat`` times, the ways interleaved, each in child processes of its own."""
    source = work / "photos"
    make_collection(source, args.images, args.size)
    root = args.root or str(work / "archives")
    halves = [work / "half-a", work / "half-b"]
    for index, half in enumerate(halves):
        half.mkdir()
        for photo in sorted(source.glob("*.png"))[index::2]:
            (half / photo.name).symlink_to(photo)
    runs: dict[str, list[dict]] = {name: [] for name in RUNS}
    for _ in range(args.repeat):
        for name in RUNS:
            parts = [_child(name, folder, root, work, args) for folder in (halves if name == "loop-2" else [source])]
            parts = [_finish(name, child) for child in parts]
            runs[name].append(parts[0] if len(parts) == 1 else combine(name, parts))
            print(f"{name}: {runs[name][-1]['images_per_minute']:.1f} images/min", flush=True)
    return runs


def _child(name: str, source: Path, root: str, work: Path, args: argparse.Namespace) -> subprocess.Popen:
    tag = f"{name}-{source.name}-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable, __file__, "--run", "loop" if name == "loop-2" else name, "--source", str(source),
        "--archive", f"{root.rstrip('/')}/{tag}", "--log", str(work / f"{tag}.jsonl"),
        "--codec", args.codec, "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(name: str, child: subprocess.Popen) -> dict:
    out, err = child.communicate()
    if child.returncode != 0:
        sys.stderr.write(err)
        raise SystemExit(f"run {name} failed")
    return json.loads(out.strip().splitlines()[-1])


def combine(name: str, parts: list[dict]) -> dict:
    """One result for loops run side by side: the last to finish sets the wall time."""
    wall = max(p["wall_seconds"] for p in parts)
    images = sum(p["images"] for p in parts)
    work = sum(p["work_seconds"] for p in parts)
    return {
        "run": name,
        "workers": len(parts),
        "images": images,
        "wall_seconds": wall,
        "startup_seconds": 0.0,
        "work_seconds": work,
        "images_per_minute": 60 * images / wall,
        "orchestration_share": 1 - work / (wall * len(parts)),
        "peak_rss_gib": [g for p in parts for g in p["peak_rss_gib"]],
        "archive_digest": None,
        "tasks": [t for p in parts for t in p["tasks"]],
    }


def make_collection(folder: Path, count: int, size: int) -> None:
    """``count`` distinct ``size``-square PNG crops of the Kodak photos, at spread offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("*.png"))]
    if not photos:
        raise SystemExit(f"no Kodak photos under {KODAK}")
    for index in range(count):
        photo = photos[index % len(photos)]
        step = index // len(photos)
        top = (step * 97) % (photo.shape[0] - size + 1)
        left = (step * 151) % (photo.shape[1] - size + 1)
        Image.fromarray(photo[top : top + size, left : left + size]).save(folder / f"crop{index:04d}.png")


# --- one run, in a child process ------------------------------------------------------


def timed(fn, log: str, name: str):
    """``fn`` that appends its duration to the JSON-lines file ``log`` (runs on workers too)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        start, began = time.perf_counter(), time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            record = {"task": name, "pid": os.getpid(), "start": began, "seconds": time.perf_counter() - start}
            with open(log, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    return run


FLOW_IO = {
    "latentpress.pipeline.ingest": ("list_images", "previous_items", "save_collection"),
    "latentpress.flows.archive": ("recorded", "read_manifest", "unevaluated", "finish_compression"),
}
"""The reads and writes the flows do themselves (listing, collection, manifest, ledger)."""

STEPS = {
    "latentpress.pipeline.archive_batch": ("archive_batch",),  # first: it keeps the unwrapped steps it calls
    "latentpress.pipeline.ingest": ("inspect_files",),
    "latentpress.pipeline.encode": ("encode_latents",),
    "latentpress.pipeline.compress": ("compress_batch", "fit_shard"),
    "latentpress.pipeline.evaluate": ("evaluate_batch",),
}
"""The pipeline functions the archive flow submits (each a task on Dask)."""


def instrument(log: str, in_process: bool) -> None:
    """Time every step the flow submits and the flows' own I/O (``FLOW_IO``).

    In process, the pipeline functions themselves are wrapped before the flows import
    them; on Dask, the function inside each Prefect task (cloudpickle sends the
    wrapper to the workers). Steps that call other steps (``archive_batch``) are timed
    once, as a whole."""
    import importlib

    if in_process:
        for module_name, names in STEPS.items():
            module = importlib.import_module(module_name)
            for name in names:
                setattr(module, name, timed(getattr(module, name), log, name))
    else:
        from latentpress.tasks import TASKS

        for task in TASKS.values():
            task.fn = timed(task.fn, log, task.name)
    for module_name, names in FLOW_IO.items():
        module = importlib.import_module(module_name)
        for name in names:
            setattr(module, name, timed(getattr(module, name), log, f"flow:{name}"))


def one_run(args: argparse.Namespace) -> dict:
    """Archive the collection one way (``args.run``); the measurements of that run."""
    import torch

    torch.set_num_threads(1)
    instrument(args.log, in_process=args.run == "loop")
    if args.run == "loop":
        from latentpress.flows.archive import archive
        from latentpress.flows.executors import InProcess
        from latentpress.run import Run

        workers, startup = 1, 0.0
        began, start = time.time(), time.perf_counter()
        archive(Run(args.archive, source=args.source, codecs=[args.codec], batch_size=args.batch_size), InProcess())
        wall = time.perf_counter() - start
        peaks = [peak_rss()]
    else:
        from distributed import Client

        from latentpress.flows.prefect_flows import archive_flow
        from latentpress.infra.cluster import dask_scheduler, prefect_api
        from latentpress.run import Cluster, Run

        workers = int(args.run.split("-")[1])
        begin = time.perf_counter()
        with prefect_api(), dask_scheduler(None, workers) as address, Client(address) as client:
            client.wait_for_workers(workers)
            startup = time.perf_counter() - begin
            began, start = time.time(), time.perf_counter()
            archive_flow(
                Run(
                    args.archive,
                    source=args.source,
                    codecs=[args.codec],
                    batch_size=args.batch_size,
                    cluster=Cluster(dask_address=address),
                )
            )
            wall = time.perf_counter() - start
            peaks = list(client.run(peak_rss).values())
    tasks = [json.loads(line) for line in Path(args.log).read_text().splitlines()]
    images = len(list(Path(args.source).glob("*.png")))
    work = sum(t["seconds"] for t in tasks)
    return {
        "run": args.run,
        "workers": workers,
        "images": images,
        "wall_seconds": wall,
        "startup_seconds": startup,
        "work_seconds": work,
        "images_per_minute": 60 * images / wall,
        "orchestration_share": 1 - work / (wall * workers),
        "peak_rss_gib": [p / 2**30 for p in peaks],
        "archive_digest": archive_digest(args.archive),
        "tasks": [
            {"task": t["task"], "pid": t["pid"], "at": round(t["start"] - began, 3), "seconds": round(t["seconds"], 3)}
            for t in sorted(tasks, key=lambda t: t["start"])
        ],
    }


def peak_rss() -> int:
    """Peak resident memory of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def archive_digest(archive: str) -> str:
    """SHA-256 over the stored containers and the ledger's row count: equal means same work."""
    from latentpress.infra import storage
    from latentpress.infra.ledger import read_ledger

    digest = hashlib.sha256()
    for url in storage.list_files(storage.join(archive, "images")):
        if url.endswith(".lpc"):
            digest.update(url.rsplit("/", 2)[-2].encode() + url.rsplit("/", 1)[-1].encode())
            digest.update(storage.read_bytes(url))
    digest.update(str(len(read_ledger(storage.join(archive, "ledger")))).encode())
    return digest.hexdigest()[:16]


# --- results --------------------------------------------------------------------------


def median_run(runs: list[dict]) -> dict:
    """The run of median images per minute (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["images_per_minute"])
    return ordered[(len(ordered) - 1) // 2]


def summarize(all_runs: dict[str, list[dict]], args: argparse.Namespace) -> dict:
    runs = {name: median_run(repeats) for name, repeats in all_runs.items()}
    one, two = runs["dask-1"], runs["dask-2"]
    speedup = two["images_per_minute"] / one["images_per_minute"]
    ceiling = runs["loop-2"]["images_per_minute"] / runs["loop"]["images_per_minute"]
    peak = max(max(r["peak_rss_gib"]) for r in (one, two))
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "collection": {"images": args.images, "size": args.size, "codec": args.codec, "batch_size": args.batch_size},
        "repeat": args.repeat,
        "runs": runs,
        "images_per_minute": {name: [r["images_per_minute"] for r in repeats] for name, repeats in all_runs.items()},
        "same_work": len({r["archive_digest"] for repeats in all_runs.values() for r in repeats if r["archive_digest"]})
        == 1,
        "two_loops_speedup": ceiling,
        "targets": {
            "two_workers_speedup": {
                "value": speedup,
                "target": f">= {TARGETS['speedup']}",
                "met": speedup >= TARGETS["speedup"],
            },
            "orchestration_share_one_worker": {
                "value": one["orchestration_share"],
                "target": f"< {TARGETS['overhead']:.0%}",
                "met": one["orchestration_share"] < TARGETS["overhead"],
            },
            "worker_peak_gib": {"value": peak, "target": f"< {TARGETS['peak_gib']}", "met": peak < TARGETS["peak_gib"]},
        },
    }


def markdown(results: dict) -> str:
    c = results["collection"]
    rows = [
        {
            "run": name,
            "workers": r["workers"],
            "images/min": f"{r['images_per_minute']:.1f}",
            "all runs": ", ".join(f"{v:.0f}" for v in results["images_per_minute"][name]),
            "wall s": f"{r['wall_seconds']:.1f}",
            "work s": f"{r['work_seconds']:.1f}",
            "orchestration": f"{r['orchestration_share']:.1%}",
            "server + cluster start s": f"{r['startup_seconds']:.1f}",
            "peak RSS GiB": ", ".join(f"{p:.2f}" for p in r["peak_rss_gib"]),
        }
        for name, r in results["runs"].items()
    ]
    targets = [
        {"measure": name, "value": f"{t['value']:.3g}", "target": t["target"], "met": "yes" if t["met"] else "NO"}
        for name, t in results["targets"].items()
    ]
    return (
        f"# Pipeline throughput ({results['when']})\n\n"
        f"{c['images']} crops of {c['size']}x{c['size']} from the Kodak photos, `{c['codec']}`, "
        f"{c['batch_size']} images per task, {results['machine']['cpus']} CPUs; each way run "
        f"{results['repeat']} times, interleaved, and the run of median images/min shown. "
        f"Same containers and ledger rows in every run: {'yes' if results['same_work'] else 'NO'}. "
        f"Two plain loops side by side (each on half, timed from their own start to the later end): "
        f"{results['two_loops_speedup']:.2f}x one loop, the ceiling for two workers on this machine.\n\n"
        f"{table(rows)}\n\n{table(targets)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
