"""Two runs of the GLC benchmark compared directly: the BD-rate of each later run's
models against the first run's, by LPIPS and by DISTS, over the mean curve and photo
by photo, for the model after the perceptual stage (``glc``) and after the
rate-distortion stage alone (``glc-mse``).

    python benchmarks/glc_runs.py BASE.json RUN.json [RUN.json ...] [--vae taesd] [--out FILE.md]

Each JSON is a ``benchmarks/glc.py`` report of the same evaluation photos (say, one
preset with and without an option); a run's name is its ``--set`` overrides.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from glc import EVALUATION, curve  # noqa: E402
from mdtable import table  # noqa: E402

from latentpress.report.bdrate import bd_rate_or_reason  # noqa: E402


def name(report: dict) -> str:
    """A run as its preset and overrides, e.g. ``fast, adversarial=0.1``."""
    overrides = ", ".join(f"{k}={v}" for k, v in report.get("overrides", {}).items())
    return f"{report['preset']}{', ' + overrides if overrides else ''}"


def rows(base: dict, run: dict, vae: str) -> list[dict]:
    """One table row per model and photo (the mean curve first): BD-rates of ``run``
    against ``base`` in percent, by LPIPS and by DISTS."""
    out = []
    for model in ("glc", "glc-mse"):
        for image in (None, *EVALUATION):
            anchor, test = curve(base["rows"], model, vae, image), curve(run["rows"], model, vae, image)
            values = [bd_rate_or_reason(anchor[0], anchor[i], test[0], test[i])[0] for i in (1, 2)]
            lpips, dists = ("-" if v is None else f"{v:+.1f}%" for v in values)
            out.append({"run": name(run), "model": model, "photo": image or "mean",
                        "BD-rate LPIPS": lpips, "BD-rate DISTS": dists})  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the run compared against (glc.json)")
    parser.add_argument("runs", nargs="+", help="the runs compared with it")
    parser.add_argument("--vae", default="taesd")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    base = json.loads(Path(args.base).read_text())
    body = [row for path in args.runs for row in rows(base, json.loads(Path(path).read_text()), args.vae)]
    text = (
        f"# GLC runs against {name(base)} ({args.vae}; BD-rate, negative: fewer bits at equal quality)\n\n"
        + table(body)
        + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
