"""All four metrics of a photo under five configurations: measured one configuration
at a time (how evaluation measured until 0.3.x), and against one reference.

    python benchmarks/metrics.py [--photos kodim03,kodim04,kodim05,kodim06] [--threads 1] [--out DIR]
    python benchmarks/metrics.py --per-configuration-only --label "3e7fef8" --out DIR   # an older checkout

Each photo (full size, from ``../shared/data/kodak-dev``) is coded by five reference
configurations (jpeg@30, webp@50, avif@40, jxl@45, jpeg@70); their decoded images
are measured (PSNR, MS-SSIM, LPIPS, DISTS) first one by one with
``models.metrics.compute_metrics`` (the original's side of LPIPS and DISTS computed
again for each), then all together with one ``models.metrics.Reference``. Reported:
seconds per photo each way, their ratio (issue #31's target: at most 0.6 of the time
before) and the largest difference between the two ways' values. With
``--per-configuration-only`` only the first way runs (for a checkout without
``Reference``); ``--label`` names the run in the results, and later runs are also
compared with the latest such run (time ratio, largest difference of any value).
Writes ``metrics.json`` and ``metrics.md`` to ``--out`` (default
``benchmarks/results``), adding to what is there.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
CONFIGS = (("JPEG", 30), ("WEBP", 50), ("AVIF", 40), ("JXL", 45), ("JPEG", 70))
TARGET_RATIO = 0.6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default="kodim03,kodim04,kodim05,kodim06")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--per-configuration-only", action="store_true")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
    import pillow_jxl  # noqa: F401 - registers JPEG XL with Pillow
    import torch

    from latentpress.models import metrics

    torch.set_num_threads(args.threads)
    metrics.warm_up()
    runs = []
    for name in args.photos.split(","):
        with Image.open(KODAK / f"{name}.png") as img:
            original = np.asarray(img.convert("RGB"))
        decoded = [_coded(original, fmt, quality) for fmt, quality in CONFIGS]
        start = time.perf_counter()
        alone = [metrics.compute_metrics(original, image) for image in decoded]
        run = {"photo": name, "per configuration s": round(time.perf_counter() - start, 2)}
        if not args.per_configuration_only:
            start = time.perf_counter()
            together = metrics.Reference(original).measure(decoded)
            run["one reference s"] = round(time.perf_counter() - start, 2)
            run["ratio"] = round(run["one reference s"] / run["per configuration s"], 3)
            run["largest difference"] = float(max(abs(a[k] - b[k]) for a, b in zip(alone, together, strict=True)
                                                  for k in a if np.isfinite(a[k])))  # fmt: skip
        run["values"] = alone
        runs.append(run)
        print({k: v for k, v in run.items() if k != "values"}, flush=True)
    record = {"label": args.label, "date": datetime.now(UTC).isoformat(timespec="seconds"), "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "configs": [f"{f.lower()}@{q}" for f, q in CONFIGS],
              "runs": runs}  # fmt: skip
    _write(args.out, record)
    return 0


def _coded(image: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as img:
        return np.asarray(img.convert("RGB"))


def _baseline(records: list[dict]) -> dict | None:
    """The latest of ``records`` that measured one configuration at a time only (an older checkout)."""
    return next((r for r in reversed(records) if all("one reference s" not in run for run in r["runs"])), None)


def _write(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps(records, indent=1) + "\n")
    lines = ["# Metrics of a photo under five configurations", "",
             "Seconds for PSNR, MS-SSIM, LPIPS and DISTS of five decoded images of one photo (full size, one "
             f"thread); target: one reference at most {TARGET_RATIO} of the time per configuration.", ""]  # fmt: skip
    for position, rec in enumerate(records):
        before = _baseline(records[:position])
        lines += [f"## {rec['label'] or 'run'} ({rec['date']}, {rec['machine']}, {rec['threads']} thread(s))", "",
                  "| photo | per configuration s | one reference s | ratio | largest difference | "
                  f"against {before['label'] if before else '-'}: ratio | largest difference |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for run in rec["runs"]:
            old = next((r for r in before["runs"] if r["photo"] == run["photo"]), None) if before else None
            against = ["-", "-"]
            if old and "one reference s" in run:
                gap = max(abs(a[k] - b[k]) for a, b in zip(old["values"], run["values"], strict=True) for k in a
                          if np.isfinite(a[k]))  # fmt: skip
                against = [round(run["one reference s"] / old["per configuration s"], 3), f"{gap:.1e}"]
            cells = [run["photo"], run["per configuration s"], run.get("one reference s", "-"), run.get("ratio", "-"),
                     f"{run['largest difference']:.1e}" if "largest difference" in run else "-", *against]  # fmt: skip
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        lines.append("")
    (out / "metrics.md").write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
