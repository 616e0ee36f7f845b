"""clric: stream size against lambda, photo by photo, each lambda fitted on its own.

    python benchmarks/clric_lambda.py [--preset fast] [--side 256] [--out DIR]

For a central crop (``--side`` pixels) of each of the six Kodak development photos,
the TAESD latent is coded by ``clric`` at each of the 17 lambdas its per-photo search
tries (0.01 to 10), one ``encode`` each, as the codec codes any configuration.
Reported: the bytes at every lambda and each place where a larger lambda gave more
bytes than the next smaller one (issue #31: the fit's rate is not guaranteed to fall
as lambda grows; ``docs/clric.md`` says why). Writes ``clric-lambda.json`` and
``clric-lambda.md`` to ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
    import torch

    from latentpress.codecs import CodecInput, codec_info, get_codec
    from latentpress.models.vae import load_vae

    torch.set_num_threads(1)
    vae, codec = load_vae("taesd"), get_codec("clric")
    lambdas = codec_info("clric").search.values("lower")[::-1]  # the smallest lambda (most bits) first
    sizes = {}
    for n in range(1, 7):
        with Image.open(KODAK / f"kodim{n:02d}.png") as img:
            photo = np.asarray(img.convert("RGB"))
        top, left = (photo.shape[0] - args.side) // 2, (photo.shape[1] - args.side) // 2
        crop = photo[top : top + args.side, left : left + args.side].copy()
        item = CodecInput("0" * 16, args.side, args.side, latent=vae.encode([crop])[0], vae_id=vae.vae_id)
        start = time.perf_counter()
        sizes[f"kodim{n:02d}"] = [len(codec.encode(item, codec.params(args.preset, lam))) for lam in lambdas]
        print(f"kodim{n:02d}", round(time.perf_counter() - start, 1), sizes[f"kodim{n:02d}"], flush=True)
    write(args.out, {"date": datetime.now(UTC).isoformat(timespec="seconds"), "preset": args.preset,
                     "side": args.side, "lambdas": lambdas, "bytes": sizes})  # fmt: skip
    return 0


def write(out: Path, record: dict) -> None:
    """``clric-lambda.json`` and ``.md`` of one run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "clric-lambda.json").write_text(json.dumps(record, indent=1) + "\n")
    lambdas = record["lambdas"]
    lines = [f"# clric: bytes against lambda ({record['preset']}, {record['side']}x{record['side']} crops, "
             f"{record['date']})", "", "| photo | " + " | ".join(f"{lam:.3g}" for lam in lambdas) + " |",
             "|---|" + "---|" * len(lambdas)]  # fmt: skip
    rises = []
    for photo, sizes in record["bytes"].items():
        lines.append(f"| {photo} | " + " | ".join(map(str, sizes)) + " |")
        rises += [f"{photo}: lambda {lambdas[i]:.3g} -> {lambdas[i + 1]:.3g}, {sizes[i]} -> {sizes[i + 1]} bytes"
                  for i in range(len(sizes) - 1) if sizes[i + 1] > sizes[i]]  # fmt: skip
    pairs = len(record["bytes"]) * (len(lambdas) - 1)
    lines += ["", f"A larger lambda gave more bytes at {len(rises)} of {pairs} neighbouring pairs:", ""]
    lines += [f"- {rise}" for rise in rises] or ["- none"]
    (out / "clric-lambda.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
