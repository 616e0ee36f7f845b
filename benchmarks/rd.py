"""Rate/quality benchmark: every registered codec over a folder, then the report.

    python benchmarks/rd.py ../shared/data/kodak-dev example-out/rd       # quick sweep
    python benchmarks/rd.py ../shared/data/kodak-dev example-out/rd --sweep full
    python benchmarks/rd.py photos/ s3://bucket/rd --codec avif --codec jpeg

Archives SOURCE into ``OUT/archive`` with each codec at the quality points of the
sweep (``full``: each codec's default points, see ``latentpress codecs``; ``quick``:
four of them, spread over the range), writes the ledger (``OUT/archive/ledger``) and
the HTML report (``OUT/report/index.html``), and puts the figures, the BD-rate table
and the LPIPS plot in ``--results`` (default ``benchmarks/results``: ``rd.md``,
``rd.json``, ``rd-lpips.png``). Rerunning with the same OUT only adds what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mdtable import table

REPO = Path(__file__).resolve().parents[1]
SWEEP_POINTS = {"quick": 4}
"""Sweeps that take a subset of each codec's default points, by count."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder or URL of images")
    parser.add_argument("out", help="folder or URL for the archive and the report")
    parser.add_argument(
        "--sweep", choices=["quick", "full"], default="quick", help="quality points (default %(default)s)"
    )
    parser.add_argument("--preset", default="default", help="codec preset, where a codec has it (default %(default)s)")
    parser.add_argument(
        "--codec", action="append", help="only these codecs (repeatable; default: every registered codec)"
    )
    parser.add_argument("--anchor", default="avif", help="BD-rate anchor curve (default %(default)s)")
    parser.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    parser.add_argument(
        "--results", default=str(REPO / "benchmarks" / "results"), help="folder for rd.md/.json/-lpips.png"
    )
    args = parser.parse_args()

    from latentpress.flows.prefect_flows import archive_flow
    from latentpress.infra import storage
    from latentpress.infra.cluster import apply_quiet_defaults, prefect_api
    from latentpress.report import write_report
    from latentpress.run import Cluster, Run

    apply_quiet_defaults()
    specs = sweep_specs(args.sweep, args.preset, args.codec)
    archive = storage.join(args.out, "archive")
    print("codecs: " + " ".join(specs), flush=True)
    with prefect_api():
        archive_flow(Run(archive, source=args.source, codecs=specs, cluster=Cluster(workers=args.workers)))
    ledger = storage.join(archive, "ledger")
    page = write_report(ledger, storage.join(args.out, "report"), anchor=args.anchor)
    print(f"report: {page}")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    figures = rd_figures(ledger, args.anchor)
    figures |= {"when": datetime.now(UTC).isoformat(timespec="seconds"), "source": args.source, "sweep": args.sweep,
                "codecs": specs}  # fmt: skip
    (results / "rd.json").write_text(json.dumps(figures, indent=1) + "\n")
    (results / "rd.md").write_text(markdown(figures, args.anchor))
    (results / "rd-lpips.png").write_bytes(storage.read_bytes(storage.join(args.out, "report", "rd-lpips.png")))
    print(markdown(figures, args.anchor))
    return 0


def sweep_specs(sweep: str, preset: str, only: list[str] | None) -> list[str]:
    """``--codec`` specs of every chosen codec at the sweep's quality points."""
    from latentpress.codecs import CODECS

    unknown = sorted(set(only or []) - set(CODECS))
    if unknown:
        raise SystemExit(f"unknown codec(s) {', '.join(unknown)} (known: {', '.join(sorted(CODECS))})")
    specs = []
    for name in sorted(only or CODECS):
        codec = CODECS[name]
        points = sweep_points(codec.default_qualities, SWEEP_POINTS.get(sweep))
        chosen = preset if preset in codec.presets else "default"
        specs.append(f"{name}:{chosen}@{','.join(f'{q:g}' for q in points)}")
    return specs


def sweep_points(points: tuple[float, ...], count: int | None) -> list[float]:
    """``count`` of ``points`` spread evenly from first to last (all when None or fewer)."""
    if count is None or len(points) <= count:
        return list(points)
    return [points[int(i)] for i in np.round(np.linspace(0, len(points) - 1, count))]


def rd_figures(ledger_url: str, anchor: str) -> dict:
    """Points, BD-rates and speeds of the ledger, as the report computes them."""
    from latentpress.infra.ledger import read_ledger
    from latentpress.report.curves import bd_table, latest_ok_rows, rd_points, shared_images, speeds

    rows = latest_ok_rows(read_ledger(ledger_url))
    images = shared_images(rows)
    points = rd_points(rows, images)
    bd = bd_table(points, anchor) if (points["curve"] == anchor).any() else None
    return {
        "images": len(images),
        "points": _records(points.drop(columns=["codec", "preset", "config_key"])),
        "bd_rate": _records(bd) if bd is not None else [],
        "speed": _records(speeds(rows)),
    }


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", double_precision=6))


def markdown(figures: dict, anchor: str) -> str:
    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    points = [{k: fmt(v) for k, v in p.items()} for p in figures["points"]]
    bd = [
        {
            "curve": r["curve"],
            "BD-rate LPIPS": _percent(r["lpips"]),
            "BD-rate DISTS": _percent(r["dists"]),
            "note": r["note"],
        }
        for r in figures["bd_rate"]
    ]
    speed = [
        {"curve": s["curve"], "encode s/image": fmt(s["encode_seconds"]), "decode s/image": fmt(s["decode_seconds"]),
         "device": s["device"]}
        for s in figures["speed"]
    ]  # fmt: skip
    return (
        f"# Rate and quality ({figures['when']})\n\n"
        f"`{figures['source']}`, {figures['images']} image(s), sweep `{figures['sweep']}`: "
        + " ".join(f"`{c}`" for c in figures["codecs"])
        + f"\n\n## BD-rate against {anchor}\n\nNegative: fewer bits than {anchor} for the same quality.\n\n"
        + f"{table(bd)}\n\n## Points (means over the shared images)\n\n{table(points)}\n\n"
        + f"## Speed\n\n{table(speed)}\n"
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


if __name__ == "__main__":
    sys.exit(main())
