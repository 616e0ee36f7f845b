"""Calibrate the latent perceptual distance of one VAE (``latentpress.models.latent_distance``).

Pairs (latent, distorted latent) are made from crops of real photos with the
distortions latent codecs produce: uniform quantization at many steps (latent-q),
Gaussian noise, blur in the latent, and blur then quantization; steps and spreads are
in units of each crop's latent standard deviation, so every VAE gets the same range
of damage. For each pair the VAE decodes both latents, and pixel LPIPS and DISTS
between the two images are the targets. The weights are a non-negative least-squares
fit (scipy's ``nnls``) of each target on the distance's per-channel terms at the
chosen taps (``--taps``; the terms of every tap in ``ALL_TAPS`` are computed, and
``--save-pairs`` keeps them, so ``--from-pairs`` refits another choice in seconds).

Calibration photos: kodak-dev's kodim01 and kodim02, the twelve mate-nature photos
(at full size and at half size, Kodak's scale) and scikit-image's colour photos.
kodim03-06 are never used: they are the benchmark's photos, and the held-out pairs on
which agreement is measured (Spearman's rank correlation per crop across its
distortions, over all pairs, and within eight bins of equal latent MSE, where the
distance must tell apart what MSE cannot; latent MSE's agreement beside it). Run::

    .venv/bin/python scripts/calibrate_latent_distance.py --vae taesd

It writes ``latentpress/models/latent_distance_weights/<vae>.safetensors`` (the
weights and the record: photos, pairs, agreement) and prints the record as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.optimize import nnls
from scipy.stats import pearsonr, spearmanr

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))

from latentpress.infra.model_files import model_id  # noqa: E402
from latentpress.models.latent_distance import TAPS, TARGETS, Calibration, LatentDistance, weights_file  # noqa: E402

ALL_TAPS = (1, 4, 9)
"""Taps whose terms every pair records (64 channels each, in this order)."""
from latentpress.models.metrics import metric  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
HELD_OUT = ("kodim03", "kodim04", "kodim05", "kodim06")
CROP = 256
QUANT_STEPS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
NOISE = (0.05, 0.1, 0.2, 0.4)
BLUR = (0.6, 1.0, 1.6)
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def distortions(z: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Named distorted copies of the latent ``z`` (C, h, w)."""
    scale = float(z.std())
    out = {f"quant{k}": np.round(z / (k * scale)) * (k * scale) for k in QUANT_STEPS}
    out |= {f"noise{k}": z + rng.normal(0, k * scale, z.shape) for k in NOISE}
    out |= {f"blur{s}": gaussian_filter(z, (0, s, s), mode="nearest") for s in BLUR}
    blurred = gaussian_filter(z, (0, 0.8, 0.8), mode="nearest")
    out["blur0.8+quant0.35"] = np.round(blurred / (0.35 * scale)) * (0.35 * scale)
    return {name: value.astype(np.float32) for name, value in out.items()}


def photos(data: Path) -> dict[str, list[np.ndarray]]:
    """Photo name -> its crops (uint8, CROP square): calibration photos and held-out ones."""
    rng = np.random.default_rng(0)
    found: dict[str, np.ndarray] = {}
    for path in sorted((data / "kodak-dev").glob("*.png")):
        found[path.stem] = np.asarray(Image.open(path).convert("RGB"))
    for path in sorted((data / "mate-nature").glob("*.jpg")):
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            found[path.stem] = np.asarray(rgb)
            found[f"{path.stem}-half"] = np.asarray(rgb.resize((rgb.width // 2, rgb.height // 2), Image.LANCZOS))
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 3 and image.shape[2] == 3:
            found[f"skimage-{name}"] = image
    crops = {}
    for name, image in found.items():
        count = 3 if name.startswith(HELD_OUT) else 2
        h, w = image.shape[:2]
        crops[name] = [image[t : t + CROP, l : l + CROP]
                       for t, l in zip(rng.integers(0, h - CROP + 1, count), rng.integers(0, w - CROP + 1, count), strict=True)]  # fmt: skip
    return crops


def pairs(vae_name: str, distance: LatentDistance, crops: dict[str, list[np.ndarray]]) -> list[dict]:
    """One row per (crop, distortion): its photo, the distance's terms, latent MSE and the pixel metrics."""
    vae = load_vae(vae_name)
    rng = np.random.default_rng(1)
    rows = []
    for name, images in crops.items():
        for index, image in enumerate(images):
            z = vae.encode([image])[0]
            distorted = distortions(z, rng)
            decoded = vae.decode([z, *distorted.values()], [(CROP, CROP)] * (1 + len(distorted)))
            with torch.no_grad():
                reference = distance.features(torch.from_numpy(z)[None])
                terms = distance.channel_terms(torch.from_numpy(np.stack(list(distorted.values()))),
                                               [r.expand(len(distorted), -1, -1, -1) for r in reference])  # fmt: skip
            for (kind, value), picture, term in zip(distorted.items(), decoded[1:], terms, strict=True):
                rows.append({"photo": name, "crop": f"{name}#{index}", "kind": kind, "terms": term.numpy(),
                             "latent_mse": float(((value - z) ** 2).mean()),
                             **{t: metric(t, decoded[0], picture) for t in TARGETS}})  # fmt: skip
        print(f"{name}: {len(rows)} pairs so far", flush=True)
    return rows


def agreement(rows: list[dict], predicted: np.ndarray, target: str, bins: int = 8) -> dict[str, float]:
    """Spearman per crop (mean), over all rows and within ``bins`` bins of equal latent
    MSE (mean), and Pearson over all rows."""
    truth = np.array([r[target] for r in rows])
    mse = np.array([r["latent_mse"] for r in rows])
    per_crop = []
    for crop in dict.fromkeys(r["crop"] for r in rows):
        idx = [i for i, r in enumerate(rows) if r["crop"] == crop]
        per_crop.append(spearmanr(predicted[idx], truth[idx]).statistic)
    edges = np.quantile(mse, np.linspace(0, 1, bins + 1))
    within = [spearmanr(predicted[m], truth[m]).statistic
              for m in ((mse >= a) & (mse <= b) for a, b in pairwise(edges)) if m.sum() > 5]  # fmt: skip
    return {"spearman_per_crop": float(np.mean(per_crop)), "spearman_all": float(spearmanr(predicted, truth).statistic),
            "spearman_within_mse_bins": float(np.mean(within)), "pearson_all": float(pearsonr(predicted, truth).statistic)}  # fmt: skip


def read_pairs(path: str) -> list[dict]:
    """Pairs written by ``--save-pairs``."""
    data = np.load(path)
    return [{key: data[key][i] for key in data.files} for i in range(len(data["kind"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", default="taesd")
    parser.add_argument("--data", default=str(SHARED), help="folder with kodak-dev/ and mate-nature/")
    parser.add_argument("--out", help="weights file (default: the package's for this VAE)")
    parser.add_argument("--save-pairs", help="also write every pair's terms and metrics to this .npz file")
    parser.add_argument(
        "--from-pairs", help="fit the pairs of this .npz file (from --save-pairs) instead of making them"
    )
    parser.add_argument("--taps", default=",".join(map(str, TAPS)), help="decoder taps to fit (default %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LATENTPRESS_THREADS", "1")))
    started = time.perf_counter()
    vae_id = model_id(args.vae)
    taps = tuple(int(t) for t in args.taps.split(","))
    if not set(taps) <= set(ALL_TAPS):
        raise SystemExit(f"--taps must be among {ALL_TAPS}")
    if args.from_pairs:
        rows = read_pairs(args.from_pairs)
    else:
        vae = load_vae(args.vae)
        unit = Calibration(vae_id, ALL_TAPS, {t: torch.ones(64 * len(ALL_TAPS)) for t in TARGETS}, {})
        rows = pairs(args.vae, LatentDistance(vae.vae.decoder, unit), photos(Path(args.data)))
    if args.save_pairs:
        np.savez(args.save_pairs, **{key: np.array([r[key] for r in rows]) for key in rows[0]})
    columns = np.concatenate([np.arange(64 * ALL_TAPS.index(t), 64 * ALL_TAPS.index(t) + 64) for t in taps])
    for row in rows:
        row["terms"] = row["terms"][columns]
    fit = [r for r in rows if not r["photo"].startswith(HELD_OUT)]
    held = [r for r in rows if r["photo"].startswith(HELD_OUT)]
    weights, record = {}, {"vae": vae_id, "taps": list(taps), "crop": CROP,
                           "calibration_photos": sorted({r["photo"] for r in fit}), "calibration_pairs": len(fit),
                           "held_out_photos": sorted({r["photo"] for r in held}), "held_out_pairs": len(held),
                           "distortions": sorted({r["kind"] for r in rows})}  # fmt: skip
    for target in TARGETS:
        x = np.stack([r["terms"] for r in fit]).astype(np.float64)
        solution, _ = nnls(x, np.array([r[target] for r in fit]), maxiter=50 * x.shape[1])
        weights[target] = torch.from_numpy(solution).float()
        x_held = np.stack([r["terms"] for r in held]).astype(np.float64)
        record[target] = {
            "fit": agreement(fit, x @ solution, target),
            "held_out": agreement(held, x_held @ solution, target),
            "held_out_latent_mse": agreement(held, np.array([r["latent_mse"] for r in held]), target),
            "nonzero_weights": int((solution > 0).sum()),
        }
    record["seconds"] = round(time.perf_counter() - started) if not args.from_pairs else None
    out = Path(args.out) if args.out else weights_file(vae_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(Calibration(vae_id, taps, weights, record).to_bytes())
    print(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
