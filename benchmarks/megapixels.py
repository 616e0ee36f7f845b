"""Large photos: peak memory and seconds per megapixel of every stage, from 1 to 48 MP.

    python benchmarks/megapixels.py [--sizes 1,6,12,24,48] [--codec avif@30 --codec latent-q
        --codec clric:fast@0.3] [--stages read,vae-encode,encode,decode,metrics] [--models DIR] [--threads 1]
    python benchmarks/megapixels.py --merge A/megapixels.json B/megapixels.json

The photos are mosaics of real photos at their native scale: the six Kodak
development photos (768x512) laid out in a grid, each copy flipped or mirrored in
turn so that neighbours differ, cropped to 3:2 at the requested size. They are made
in a scratch folder and never kept. Each stage of each photo runs in a fresh process
(its peak resident memory, which it reports, is the worker's peak for that stage):

- ``read``: the PNG decoded as ingest decodes it;
- ``vae-encode``: the TAESD latent (tiled over 1,200 pixels);
- ``encode`` and ``decode`` per codec: the codec's own work on its input (pixels or
  the latent); decode includes the VAE decoder for latent codecs;
- ``metrics`` per codec: PSNR, MS-SSIM, LPIPS and DISTS of the decoded photo.

Collection-model codecs (``glc``, ``relic``) need a trained model: ``--models DIR``
with ``glc-taesd.bin`` or ``relic-taesd.bin`` (as ``benchmarks/glc.py --save-models``
writes). Reported per stage: peak MiB, seconds, seconds per megapixel; per codec bpp
and LPIPS; issue #14's targets (under 4 GiB at 24 MP; seconds per megapixel at 24 MP
within 25% of the value at 1 MP). Writes ``megapixels.json`` and ``megapixels.md`` after
every stage, so a run stopped midway keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from mdtable import table  # noqa: E402

KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
SIZES = (1, 6, 12, 24, 48)
STAGES = ("read", "vae-encode", "encode", "decode", "metrics")
CODECS = ("avif@30", "latent-q@0.5", "clric:fast@0.3")
MEMORY_TARGET_MIB = 4096
LINEAR_TOLERANCE = 0.25
MIN_TIMED_SECONDS = 1.0
"""Stages shorter than this at 1 MP are not held to the linear-time target (their times
are mostly start-up and rounding)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="megapixels (default %(default)s)")
    parser.add_argument("--codec", action="append", help=f"codec spec with one point (default {', '.join(CODECS)})")
    parser.add_argument("--models", help="folder with collection models (glc-taesd.bin, relic-taesd.bin)")
    parser.add_argument("--vae", default="taesd")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per stage (default %(default)s)")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="stages to run, in this order; one needs those before it (default %(default)s)",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="combine the reports of runs made side by side")
    parser.add_argument("--probe", nargs=4, metavar=("STAGE", "CODEC", "FOLDER", "VAE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        import resource

        result = probe(*args.probe, models=args.models)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps(result | {"peak_mib": peak}))
        return 0
    if args.merge:
        return write(merged([json.loads(Path(f).read_text()) for f in args.merge]), Path(args.out))
    sizes = [float(s) for s in args.sizes.split(",")]
    codecs = args.codec or list(CODECS)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="latentpress-mp-") as scratch:
        for megapixels in sizes:
            folder = Path(scratch) / f"{megapixels:g}mp"
            folder.mkdir()
            width, height = mosaic(folder / "photo.png", megapixels)
            chosen = args.stages.split(",")
            stages = [(stage, "-") for stage in STAGES[:2] if stage in chosen]
            stages += [(stage, codec) for codec in codecs for stage in STAGES[2:] if stage in chosen]
            for stage, codec in stages:
                row = run_stage(stage, codec, folder, args.vae, args.threads, args.models)
                row.update(megapixels=width * height / 1e6, width=width, height=height)
                rows.append(row)
                print(
                    f"{megapixels:g} MP {stage} {codec}: {row.get('seconds', float('nan')):.1f} s, "
                    f"{row.get('peak_mib', float('nan')):.0f} MiB {row.get('error', '')}",
                    flush=True,
                )
                write(report(rows, args.threads, args.vae), Path(args.out), quiet=True)  # a stopped run keeps its rows
    return write(report(rows, args.threads, args.vae), Path(args.out))


def report(rows: list[dict], threads: int, vae: str) -> dict:
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": threads,
            "vae": vae, "runs": 1, "rows": rows, "checks": checks(rows)}  # fmt: skip


def write(report: dict, out: Path, quiet: bool = False) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "megapixels.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "megapixels.md").write_text(markdown(report))
    if not quiet:
        print(markdown(report))
    return 0


def merged(reports: list[dict]) -> dict:
    """One report of runs made side by side (one size each, say), rows by size."""
    if len({(r["machine"], r["threads"], r["vae"]) for r in reports}) != 1:
        raise SystemExit("the reports differ in machine, threads or VAE")
    rows = sorted((row for r in reports for row in r["rows"]), key=lambda row: row["megapixels"])
    return reports[0] | {"date": max(r["date"] for r in reports), "runs": sum(r.get("runs", 1) for r in reports),
                         "rows": rows, "checks": checks(rows)}  # fmt: skip


def mosaic(path: Path, megapixels: float) -> tuple[int, int]:
    """A 3:2 photo of about ``megapixels`` tiled from the Kodak photos at native scale."""
    width = 8 * round(math.sqrt(megapixels * 1e6 * 1.5) / 8)
    height = 8 * round(width / 1.5 / 8)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("*.png"))]
    photos = [np.rot90(p) if p.shape[0] > p.shape[1] else p for p in photos]  # portrait ones on their side
    tile_h, tile_w = photos[0].shape[:2]
    canvas = np.empty((math.ceil(height / tile_h) * tile_h, math.ceil(width / tile_w) * tile_w, 3), np.uint8)
    for n, (top, left) in enumerate(
        (t, l) for t in range(0, canvas.shape[0], tile_h) for l in range(0, canvas.shape[1], tile_w)
    ):
        photo = photos[n % len(photos)][:tile_h, :tile_w]
        turn = (n // len(photos)) % 4
        photo = photo[::-1] if turn & 1 else photo
        canvas[top : top + tile_h, left : left + tile_w] = photo[:, ::-1] if turn & 2 else photo
    Image.fromarray(canvas[:height, :width]).save(path, compress_level=1)
    return width, height


def run_stage(stage: str, codec: str, folder: Path, vae: str, threads: int, models: str | None) -> dict:
    """One stage in a fresh process: its JSON result and its peak resident memory."""
    command = [sys.executable, __file__, "--probe", stage, codec, str(folder), vae]
    command += ["--models", models] if models else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "LATENTPRESS_TORCH_THREADS": str(threads)}
    process = subprocess.run(command, capture_output=True, env=env, text=True, check=False)
    row = {"stage": stage, "codec": codec}
    if process.returncode:
        row["error"] = (process.stderr.strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        return row
    return row | json.loads(process.stdout.strip().splitlines()[-1])


def probe(stage: str, spec: str, folder: str, vae_name: str, models: str | None) -> dict:
    """Run one stage on the photo in ``folder`` (inputs and outputs are files there)."""
    import torch

    from latentpress.codecs import CodecInput, DecodeContext, get_codec
    from latentpress.codecs.base import CollectionModelCodec
    from latentpress.codecs.spec import parse_codec_spec
    from latentpress.infra.images import decode_image
    from latentpress.models.vae import load_vae

    torch.set_num_threads(int(os.environ.get("LATENTPRESS_TORCH_THREADS", "1")))
    base = Path(folder)
    image = decode_image((base / "photo.png").read_bytes(), "photo.png") if stage != "read" else None
    start = time.perf_counter()
    if stage == "read":
        decode_image((base / "photo.png").read_bytes(), "photo.png")
        return {"seconds": time.perf_counter() - start}
    height, width = image.shape[:2]
    if stage == "vae-encode":
        vae = load_vae(vae_name)
        start = time.perf_counter()
        latent = vae.encode([image])[0]
        seconds = time.perf_counter() - start
        np.save(base / "latent.npy", latent)
        return {"seconds": seconds}
    (config,) = parse_codec_spec(spec)
    codec, params, name = get_codec(config.name), config.params(), spec.replace(":", "-").replace("@", "-")
    model = (
        (Path(models) / f"{config.name}-{vae_name}.bin").read_bytes()
        if isinstance(codec, CollectionModelCodec)
        else None
    )
    latent_domain = codec.domain == "latent"
    if stage == "encode":
        item = CodecInput("photo", width, height, latent=np.load(base / "latent.npy") if latent_domain else None,
                          image=None if latent_domain else image, vae_id=vae_name if latent_domain else None)  # fmt: skip
        start = time.perf_counter()
        data = codec.encode(item, params, model) if model is not None else codec.encode(item, params)
        seconds = time.perf_counter() - start
        (base / f"{name}.bin").write_bytes(data)
        return {"seconds": seconds, "bpp": 8 * len(data) / (width * height)}
    if stage == "decode":
        data = (base / f"{name}.bin").read_bytes()
        vae = load_vae(vae_name) if latent_domain else None
        start = time.perf_counter()
        decoded = codec.decode(data, DecodeContext(width, height, vae_name if latent_domain else None, model))
        if vae is not None:
            decoded = vae.decode([decoded], [(width, height)])[0]
        seconds = time.perf_counter() - start
        np.save(base / f"{name}.npy", decoded)
        return {"seconds": seconds}
    if stage == "metrics":
        from latentpress.models.metrics import compute_metrics, warm_up

        decoded = np.load(base / f"{name}.npy")
        warm_up()
        start = time.perf_counter()
        metrics = compute_metrics(image, decoded)
        return {"seconds": time.perf_counter() - start, **metrics}
    raise ValueError(f"unknown stage {stage!r}")


def checks(rows: list[dict]) -> list[dict]:
    """Per stage and codec: peak memory at 24 MP, and seconds per megapixel at 24 MP over
    1 MP (at most ``1 + LINEAR_TOLERANCE``; stages under ``MIN_TIMED_SECONDS`` at 1 MP
    are not timed)."""
    out = []
    for key in dict.fromkeys((r["stage"], r["codec"]) for r in rows):
        chosen = {round(r["megapixels"]): r for r in rows if (r["stage"], r["codec"]) == key and "seconds" in r}
        entry = {"stage": key[0], "codec": key[1]}
        if 24 in chosen:
            entry["peak_mib_24"] = chosen[24]["peak_mib"]
            entry["memory_met"] = chosen[24]["peak_mib"] < MEMORY_TARGET_MIB
        if 24 in chosen and 1 in chosen and chosen[1]["seconds"] >= MIN_TIMED_SECONDS:
            per_1, per_24 = (chosen[m]["seconds"] / chosen[m]["megapixels"] for m in (1, 24))
            entry["seconds_per_mp_ratio"] = per_24 / per_1
            entry["linear_met"] = per_24 / per_1 <= 1 + LINEAR_TOLERANCE
        out.append(entry)
    return out


def markdown(report: dict) -> str:
    rows = [{"MP": f"{r['megapixels']:.1f}", "stage": r["stage"], "codec": r["codec"],
             "peak MiB": f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-", "s": f"{r['seconds']:.1f}" if "seconds" in r else "-",
             "s/MP": f"{r['seconds'] / r['megapixels']:.2f}" if "seconds" in r else "-",
             "bpp": f"{r['bpp']:.4f}" if "bpp" in r else "", "LPIPS": f"{r['lpips']:.4f}" if "lpips" in r else "",
             "error": r.get("error", "")} for r in report["rows"]]  # fmt: skip
    checked = [{"stage": c["stage"], "codec": c["codec"],
                "peak MiB at 24 MP": f"{c['peak_mib_24']:.0f}" if "peak_mib_24" in c else "-",
                "< 4 GiB": ("yes" if c["memory_met"] else "NO") if "memory_met" in c else "-",
                "s/MP at 24 MP / at 1 MP": f"{c['seconds_per_mp_ratio']:.2f}" if c.get("seconds_per_mp_ratio") else "-",
                "within 25%": ("yes" if c["linear_met"] else "NO") if "linear_met" in c else "-"}
               for c in report["checks"]]  # fmt: skip
    side_by_side = f", {report['runs']} runs side by side" if report.get("runs", 1) > 1 else ""
    return (
        f"# Large photos ({report['date']}, {report['machine']}, {report['threads']} thread(s) per stage, "
        f"VAE {report['vae']}{side_by_side})\n\n## Targets\n\n{table(checked)}\n\n## Every stage\n\n{table(rows)}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
