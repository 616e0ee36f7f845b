"""What a training step's perceptual term costs: the latent distance against LPIPS
through the whole VAE decoder, and how well the distance agrees with the pixel metrics.

    python benchmarks/latent_distance.py [--vae taesd,taesd3] [--steps 5]

Times a forward and backward pass of each on a batch of 8 latent crops of 16x16
(128-pixel images, what glc's perceptual stage trains on) and of 32x32 (256 pixels),
one thread, the reference side computed once per batch (as training does), and
reads each VAE's agreement from its calibration record. Writes
``latent-distance.json`` and ``latent-distance.md`` under ``--out`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
os.environ.setdefault("LATENTPRESS_DEVICE", "cpu")

import torch  # noqa: E402
from mdtable import table  # noqa: E402

from latentpress.models.latent_distance import load_latent_distance  # noqa: E402
from latentpress.models.metrics import lpips_network  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402


def seconds_per_step(step, steps: int) -> float:
    """Median seconds of ``step()`` over ``steps`` runs, after one warm-up."""
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(vae_name: str, side: int, steps: int) -> dict:
    vae = load_vae(vae_name).vae
    distance = load_latent_distance(vae_name)
    lpips = lpips_network("cpu")
    torch.manual_seed(0)
    latent = torch.randn(8, vae.config.latent_channels, side, side)
    with torch.no_grad():
        reference_features = distance.features(latent)
        reference_image = vae.decode(latent).sample.clamp(-1, 1)

    def latent_step() -> None:
        x = (latent + 0.1 * torch.randn_like(latent)).requires_grad_(True)
        distance(x, reference_features, "both").mean().backward()

    def pixel_step() -> None:
        x = (latent + 0.1 * torch.randn_like(latent)).requires_grad_(True)
        lpips(vae.decode(x).sample.clamp(-1, 1), reference_image).mean().backward()

    latent_s, pixel_s = seconds_per_step(latent_step, steps), seconds_per_step(pixel_step, steps)
    return {"vae": vae_name, "pixels": side * 8, "latent_distance_s": round(latent_s, 4),
            "lpips_through_decoder_s": round(pixel_s, 3), "times_cheaper": round(pixel_s / latent_s, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", default="taesd,taesd3")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, agreement = [], []
    for vae in args.vae.split(","):
        rows += [measure(vae, side, args.steps) for side in (16, 32)]
        record = load_latent_distance(vae).calibration.record
        for target in ("lpips", "dists"):
            held, mse = record[target]["held_out"], record[target]["held_out_latent_mse"]
            agreement.append({"vae": vae, "metric": target, "pairs": record["held_out_pairs"]}
                             | {k: round(v, 3) for k, v in held.items()}
                             | {f"latent MSE {k}": round(v, 3) for k, v in mse.items()})  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latent-distance.json").write_text(json.dumps({"cost": rows, "agreement": agreement}, indent=2))
    text = ("# Latent distance: cost per training step and agreement\n\n"
            "Forward and backward, a batch of 8 crops, one thread (median of "
            f"{args.steps}):\n\n{table(rows)}\n\nAgreement with the pixel metrics on held-out pairs "
            f"(kodim03-06, never calibrated on):\n\n{table(agreement)}\n")  # fmt: skip
    (out / "latent-distance.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
