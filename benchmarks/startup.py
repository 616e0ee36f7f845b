"""First results in seconds: what a new user waits for on a small job.

Times whole ``latentpress`` commands, as a user runs them, on three 192x192 crops of
the Kodak photos (made here, never committed):

- ``archive`` with ``avif@30`` into a new archive (in this process: a job this small
  starts no Prefect server and no Dask cluster);
- the same command again: a no-op rerun;
- ``latentpress codecs``, ``latentpress --help`` and a mistake (a misspelt source
  folder, answered with exit status 2);
- for comparison, the first ``archive`` on a local Dask cluster (``--workers 2``).

Each command runs ``--repeat`` times after one untimed warm-up run (a warm install:
Python's and the OS's caches filled); medians are reported with the range. Targets
(issue #10): archive under 15 s, no-op rerun under 10 s, ``codecs`` under 2 s.

    python benchmarks/startup.py                 # writes benchmarks/results/startup.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mdtable import table
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
BIN = Path(sys.executable).parent / "latentpress"
TARGETS = {"archive": 15.0, "rerun": 10.0, "codecs": 2.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each command (default %(default)s)")
    parser.add_argument("--dask-repeat", type=int, default=2, help="timed runs on a Dask cluster (default %(default)s)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"), help="folder for startup.json/.md")
    args = parser.parse_args()
    os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
    with tempfile.TemporaryDirectory(prefix="lp-startup-") as folder:
        work = Path(folder)
        photos = make_crops(work / "photos")
        runs = {
            "archive": timed(lambda i: ["archive", photos, str(work / f"a{i}"), "--codec", "avif@30"], args.repeat),
            "rerun": timed(lambda i: ["archive", photos, str(work / "a0"), "--codec", "avif@30"], args.repeat),
            "codecs": timed(lambda i: ["codecs"], args.repeat),
            "help": timed(lambda i: ["--help"], args.repeat),
            "a mistake (misspelt source)": timed(
                lambda i: ["archive", photos + "-typo", str(work / "x"), "--codec", "avif@30"], args.repeat, status=2),
            "archive on Dask (2 workers)": timed(
                lambda i: ["archive", photos, str(work / f"d{i}"), "--codec", "avif@30", "--workers", "2"], args.dask_repeat),
        }  # fmt: skip
    results = summarize(runs)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "startup.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def make_crops(folder: Path) -> str:
    """Three 192x192 crops of different Kodak photos."""
    folder.mkdir(parents=True)
    for index, path in enumerate(sorted(KODAK.glob("*.png"))[:3]):
        photo = np.asarray(Image.open(path).convert("RGB"))
        Image.fromarray(photo[100:292, 200:392]).save(folder / f"crop{index}.png")
    return str(folder)


def timed(command, repeat: int, status: int = 0) -> list[float]:
    """Wall seconds of ``repeat`` runs of ``latentpress *command(i)`` after one warm-up
    run, each expected to exit with ``status``."""
    seconds = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        done = subprocess.run([str(BIN), *command(i)], capture_output=True, text=True, timeout=600)
        if done.returncode != status:
            raise SystemExit(f"latentpress {' '.join(command(i))} failed:\n{done.stderr}")
        if i:
            seconds.append(time.perf_counter() - start)
    return seconds


def summarize(runs: dict[str, list[float]]) -> dict:
    figures = {
        name: {"median": statistics.median(s), "min": min(s), "max": max(s), "runs": s} for name, s in runs.items()
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0], "python": sys.version.split()[0]},
        "seconds": figures,
        "targets": {
            name: {"value": figures[name]["median"], "target": f"< {limit:g} s", "met": figures[name]["median"] < limit}
            for name, limit in TARGETS.items()
        },
    }


def markdown(results: dict) -> str:
    rows = [
        {"command": name, "median s": f"{f['median']:.2f}", "min s": f"{f['min']:.2f}", "max s": f"{f['max']:.2f}",
         "runs": len(f["runs"])}
        for name, f in results["seconds"].items()
    ]  # fmt: skip
    targets = [
        {"measure": name, "median s": f"{t['value']:.2f}", "target": t["target"], "met": "yes" if t["met"] else "NO"}
        for name, t in results["targets"].items()
    ]
    machine = results["machine"]
    return (
        f"# Start-up times ({results['when']})\n\n"
        f"Three 192x192 crops of Kodak photos, `latentpress archive SRC ARCH --codec avif@30` and friends, "
        f"whole commands timed from outside after one warm-up run; {machine['cpus']} CPUs, load "
        f"{machine['load']:.1f} at the end.\n\n{table(rows)}\n\n{table(targets)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
