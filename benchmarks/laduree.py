"""Laduree: rate and quality against the number of images that share one model.

Trains one model per set of 256x256 crops of real photos (the Kodak development
images at several offsets, taken round-robin over the photos so every set mixes
them; each set extends the previous one), then regenerates every crop from its
index through the codec API and the TAESD decoder, and reports per set size:

- bpp: (model bits + M * ceil(log2 M)) / (M * 256 * 256), the whole set's rate;
- shared bpp: ceil(log2 M) / (256 * 256), an image's rate once the model is shared;
- LPIPS and PSNR of the regenerated crops against the crops, beside the TAESD
  round trip alone (the best any latent codec can do) and ``latent-q`` (step 0.5) on
  the same latents for reference;
- training and decoding seconds.

Writes ``laduree.json``, ``laduree.md`` and ``laduree.png`` under ``--out``. Sized for
a busy CPU (one torch thread); see docs/laduree.md for what differs from the paper.

    python benchmarks/laduree.py [FOLDER] [--sizes 4 8 16 32] [--hidden 48] ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))

import torch  # noqa: E402

from latentpress.codecs import CodecInput, DecodeContext, get_codec  # noqa: E402
from latentpress.codecs.laduree.bitstream import unpack_model  # noqa: E402
from latentpress.config import get_settings  # noqa: E402
from latentpress.models.metrics import compute_metrics  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402

CROP = 256
STRIDE = 128


def load_crops(folder: Path, count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` named CROP x CROP crops, round-robin over the photos, offsets on a grid."""
    photos = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        height, width = pixels.shape[:2]
        offsets = [(y, x) for y in range(0, height - CROP + 1, STRIDE) for x in range(0, width - CROP + 1, STRIDE)]
        order = np.random.default_rng(len(photos)).permutation(len(offsets))
        photos.append(
            [
                (
                    f"{path.stem}@{offsets[k][1]},{offsets[k][0]}",
                    pixels[offsets[k][0] : offsets[k][0] + CROP, offsets[k][1] : offsets[k][1] + CROP].copy(),
                )
                for k in order
            ]
        )
    ring = [crop for round_ in zip(*photos, strict=False) for crop in round_]
    if len(ring) < count:
        raise SystemExit(f"{folder} gives only {len(ring)} crops, {count} asked")
    return ring[:count]


def run_set(crops: list[tuple[str, np.ndarray]], params, vae) -> dict:
    """Fit one model on ``crops``, regenerate each, measure rate, quality and time."""
    codec = get_codec("laduree")
    images = [pixels for _, pixels in crops]
    latents = vae.encode(images)
    items = [CodecInput(f"c{i}", CROP, CROP, latent=z, vae_id=vae.vae_id) for i, z in enumerate(latents)]
    start = time.perf_counter()
    fit = codec.fit(items, params)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = [
        codec.decode(fit.payloads[item.image_id], DecodeContext(CROP, CROP, vae.vae_id, shared_model=fit.model))
        for item in items
    ]
    decode_s = (time.perf_counter() - start) / len(items)
    sizes = [(CROP, CROP)] * len(items)
    regenerated = vae.decode(decoded, sizes)
    roundtrip = vae.decode(latents, sizes)
    metrics = [compute_metrics(a, b) for a, b in zip(images, regenerated, strict=True)]
    ceiling = [compute_metrics(a, b) for a, b in zip(images, roundtrip, strict=True)]
    record = unpack_model(fit.model)
    weights = sum(w.size for w in record.weights.values())
    count, pixels = len(items), len(items) * CROP * CROP
    index_bits = math.ceil(math.log2(count)) if count > 1 else 0
    model_bits = 8 * len(fit.model)
    return {
        "set_size": count,
        "parameters": weights,
        "model_bytes": len(fit.model),
        "bits_per_weight": model_bits / weights,
        "index_bits": index_bits,
        "bpp": (model_bits + count * index_bits) / pixels,
        "shared_bpp": index_bits / (CROP * CROP),
        "lpips": float(np.mean([m["lpips"] for m in metrics])),
        "psnr": float(np.mean([m["psnr"] for m in metrics])),
        "latent_mse": float(np.mean([np.mean((d - z) ** 2) for d, z in zip(decoded, latents, strict=True)])),
        "vae_lpips": float(np.mean([m["lpips"] for m in ceiling])),
        "vae_psnr": float(np.mean([m["psnr"] for m in ceiling])),
        **_latent_q(items, images, vae),
        "train_steps": params.training().steps(math.ceil(count / params.batch_size)),
        "train_s": train_s,
        "decode_s_per_image": decode_s,
    }


def _latent_q(items: list[CodecInput], images: list[np.ndarray], vae) -> dict:
    """``latent-q`` at step 0.5 on the same latents, for reference."""
    codec = get_codec("latent-q")
    params = codec.params(quality=0.5)
    streams = [codec.encode(item, params) for item in items]
    decoded = [codec.decode(s, DecodeContext(CROP, CROP, vae.vae_id)) for s in streams]
    out = vae.decode(decoded, [(CROP, CROP)] * len(items))
    lpips = [compute_metrics(a, b)["lpips"] for a, b in zip(images, out, strict=True)]
    bits = 8 * sum(len(s) for s in streams)
    return {"latent_q_bpp": bits / (len(items) * CROP * CROP), "latent_q_lpips": float(np.mean(lpips))}


def write_results(rows: list[dict], setup: dict, out: Path) -> None:
    """JSON, a Markdown table and a PNG plot of bpp against set size."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "laduree.json").write_text(json.dumps({"setup": setup, "results": rows}, indent=2))
    header = (
        "| images M | model KiB | bits/weight | bpp (set) | bpp (shared, per image) | "
        "LPIPS | PSNR | TAESD-only LPIPS | latent-q bpp / LPIPS | train steps / s | "
        "decode s/image |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['set_size']} | {r['model_bytes'] / 1024:.1f} | {r['bits_per_weight']:.2f} | "
            f"{r['bpp']:.3f} | {r['shared_bpp']:.6f} | {r['lpips']:.3f} | {r['psnr']:.2f} | "
            f"{r['vae_lpips']:.3f} | {r['latent_q_bpp']:.3f} / {r['latent_q_lpips']:.3f} | "
            f"{r['train_steps']} / {r['train_s']:.0f} | {r['decode_s_per_image']:.2f} |"
        )
    settings = ", ".join(f"{k} {v}" for k, v in setup.items())
    (out / "laduree.md").write_text(f"Setup: {settings}.\n\n" + "\n".join(lines) + "\n")
    _plot(rows, out / "laduree.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sizes = [r["set_size"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [r["bpp"] for r in rows], "o-", label="laduree, whole set (model + indices)")
    ax.plot(sizes, [r["shared_bpp"] for r in rows], "s--", label="laduree, per image once shared")
    ax.plot(sizes, [r["latent_q_bpp"] for r in rows], "^:", label="latent-q step 0.5 (reference)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="images sharing one model (M)",
        ylabel="bits per pixel",
        title="Laduree rate against set size (256x256 Kodak crops)",
    )
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for r in rows:
        ax.annotate(
            f"LPIPS {r['lpips']:.2f}", (r["set_size"], r["bpp"]), fontsize=7, textcoords="offset points", xytext=(4, 6)
        )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "kodak-dev")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--min-steps", type=int, default=3000, help="training steps per set, at least")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("latentpress.codecs.laduree").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    codec = get_codec("laduree")
    params = dataclasses.replace(
        codec.presets["default"],
        quality=args.hidden,
        depth=args.depth,
        heads=args.heads,
        patch=args.patch,
        epochs=args.epochs,
        min_steps=args.min_steps,
        batch_size=args.batch,
        learning_rate=args.lr,
    )
    codec.validate(params)
    vae = load_vae("taesd")
    crops = load_crops(args.folder, max(args.sizes))
    rows = []
    for size in sorted(args.sizes):
        rows.append(run_set(crops[:size], params, vae))
        r = rows[-1]
        print(
            f"M={size}: bpp {r['bpp']:.3f} (shared {r['shared_bpp']:.6f}), "
            f"LPIPS {r['lpips']:.3f} "
            f"(TAESD only {r['vae_lpips']:.3f}), train {r['train_s']:.0f}s, "
            f"decode {r['decode_s_per_image']:.2f}s/image",
            flush=True,
        )
    setup = {
        "hidden": args.hidden,
        "depth": args.depth,
        "heads": args.heads,
        "patch": args.patch,
        "epochs": args.epochs,
        "min steps": args.min_steps,
        "batch": args.batch,
        "lr": args.lr,
        "weights": f"(1+{params.exponent_bits}+{params.mantissa_bits})-bit floats",
        "sampling steps": params.sample_steps,
        "device": get_settings().device,
        "threads": args.threads,
        "machine": platform.machine(),
    }
    write_results(rows, setup, args.out)


if __name__ == "__main__":
    main()
