"""CLRIC against AVIF, latent-q and TAESD alone on the Kodak development photos.

    python benchmarks/clric.py [FOLDER] [--preset default] [--lambdas 0.03,0.3,1,2] ...

Encodes every PNG of FOLDER (default ``../shared/data/kodak-dev``) with ``clric`` at
each lambda (images of one latent shape are fitted together, in ``--jobs`` parallel
processes), ``avif`` and ``latent-q`` at their quality points, decodes every stream
(latent codecs through the TAESD decoder) and measures bpp, LPIPS, DISTS, PSNR,
MS-SSIM, encoding and decoding seconds, and decoding MAC per pixel; TAESD's own
round trip is the reference row. Checks the targets of issue #3 and writes
``clric.json`` and ``clric.md`` under ``--out`` (default ``benchmarks/results``).

Encoding seconds of clric are per image: a fitting process's wall (and CPU) time
divided by the images it fitted together. The machine's load average is recorded
with every timing, since other work on the same cores slows everything down.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
os.environ.setdefault("LATENTPRESS_DEVICE", "cpu")

import torch  # noqa: E402
from glc import overrides  # noqa: E402
from mdtable import table  # noqa: E402

from latentpress.codecs import CodecInput, DecodeContext, get_codec  # noqa: E402
from latentpress.models.metrics import compute_metrics  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402

VAE = "taesd"
TARGETS = {"encode_seconds": 60.0, "decode_seconds": 3.0, "bpp_range": (0.05, 0.3), "vae_lpips_gap": 0.03}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(REPO.parent / "shared" / "data" / "kodak-dev"))
    parser.add_argument("--preset", default="default", help="clric preset (default %(default)s)")
    parser.add_argument("--lambdas", default="0.03,0.3,1,2", help="clric lambdas (default %(default)s)")
    parser.add_argument("--avif", default="0,5,10,20,30,40", help="AVIF qualities (default %(default)s)")
    parser.add_argument("--latent-q", default="0.25,0.5,1", help="latent-q steps (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel clric fitting processes (default %(default)s)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the preset's ClricParams, e.g. perceptual_weighting=1 (repeatable)")  # fmt: skip
    args = parser.parse_args()
    changes = overrides(args.set, "clric")

    images = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(args.folder).glob("*.png"))}
    vae = load_vae(VAE)
    latents = {name: vae.encode([img])[0] for name, img in images.items()}
    rows = [measure(name, images[name], "taesd", None, 0, latents[name], 0.0, 0.0) for name in images]
    for q in _floats(args.latent_q):
        rows += pixel_or_latent_rows("latent-q", "default", q, images, latents)
    for q in _floats(args.avif):
        rows += pixel_or_latent_rows("avif", "default", q, images, latents)
    rows += clric_rows(args.preset, _floats(args.lambdas), images, latents, (args.jobs, changes))

    summary = summarize(rows)
    checks = check_targets(rows, args.preset)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "folder": args.folder,
        "preset": args.preset,
        "overrides": changes,
        "macs_per_pixel": macs_per_pixel(next(iter(latents.values())), args.preset),
        "summary": summary,
        "checks": checks,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "clric.json").write_text(json.dumps(report, indent=1))
    (out / "clric.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def pixel_or_latent_rows(codec_name: str, preset: str, quality: float, images: dict, latents: dict) -> list[dict]:
    """One codec point on every image, timed per image."""
    codec = get_codec(codec_name)
    params = codec.params(preset, quality)
    rows = []
    for name, img in images.items():
        height, width = img.shape[:2]
        item = CodecInput(name, width, height, image=img, latent=latents[name], vae_id=VAE)
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), time.process_time()
        payload = codec.encode(item, params)
        rows.append(
            measure(
                name,
                img,
                codec_name,
                quality,
                len(payload),
                _decode(codec, payload, width, height),
                time.perf_counter() - start,
                time.process_time() - cpu,
                load,
            )
        )
    return rows


def clric_rows(preset: str, lambdas: list[float], images: dict, latents: dict, how: tuple[int, dict]) -> list[dict]:
    """clric at each lambda: fitting jobs (one per lambda and latent shape, portrait
    shapes transposed to landscape as ``encode_many`` does), ``how[0]`` in parallel,
    the preset's fields changed by ``how[1]``."""
    jobs_at_once, changes = how
    groups: dict[tuple[int, ...], list[str]] = {}
    for name, latent in latents.items():
        groups.setdefault((latent.shape[0], *sorted(latent.shape[1:])), []).append(name)
    work = [(lam, names) for lam in lambdas for names in groups.values()]
    jobs = [(preset, lam, [latents[n] for n in names], [images[n].shape[:2] for n in names], changes)
            for lam, names in work]  # fmt: skip
    with ProcessPoolExecutor(
        jobs_at_once, mp_context=multiprocessing.get_context("spawn")
    ) as pool:  # fork can hang torch
        results = list(pool.map(_fit_job, jobs))  # every fit ends before anything else is timed
    codec = get_codec("clric")
    rows = []
    for (lam, names), (payloads, wall, cpu, load) in zip(work, results, strict=True):
        print(
            f"clric lambda {lam:g}: {len(names)} image(s) in {wall:.0f} s ({cpu:.0f} s CPU), load {load:.1f}",
            flush=True,
        )
        for name, payload in zip(names, payloads, strict=True):
            height, width = images[name].shape[:2]
            rows.append(
                measure(
                    name,
                    images[name],
                    "clric",
                    lam,
                    len(payload),
                    _decode(codec, payload, width, height),
                    wall / len(names),
                    cpu / len(names),
                    load,
                )
            )
    return rows


def _fit_job(job: tuple) -> tuple[list[bytes], float, float, float]:
    """Fit one lambda on images of one latent shape; (payloads, wall s, CPU s, mean load)."""
    preset, lam, latents, sizes, changes = job
    codec = get_codec("clric")
    items = [
        CodecInput(str(i), w, h, latent=z, vae_id=VAE) for i, (z, (h, w)) in enumerate(zip(latents, sizes, strict=True))
    ]
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    payloads = codec.encode_many(items, dataclasses.replace(codec.params(preset, lam), **changes))
    return payloads, time.perf_counter() - start, time.process_time() - cpu, (load + os.getloadavg()[0]) / 2


def _decode(codec, payload: bytes, width: int, height: int) -> tuple[np.ndarray, float, float]:
    """Decoded pixels (latent codecs through the VAE), wall and CPU seconds, VAE included."""
    start, cpu = time.perf_counter(), time.process_time()
    decoded = codec.decode(payload, DecodeContext(width, height, VAE))
    if codec.domain == "latent":
        decoded = load_vae(VAE).decode([decoded], [(width, height)])[0]
    return decoded, time.perf_counter() - start, time.process_time() - cpu


def measure(
    name: str,
    image: np.ndarray,
    codec: str,
    quality: float | None,
    size: int,
    decoded,
    encode_s: float,
    encode_cpu_s: float,
    load: float | None = None,
) -> dict:
    """A result row; ``decoded`` is ``(pixels, wall s, CPU s)`` or, for TAESD alone, the latent."""
    height, width = image.shape[:2]
    if codec == "taesd":
        start = time.perf_counter()
        pixels = load_vae(VAE).decode([decoded], [(width, height)])[0]
        decoded = (pixels, time.perf_counter() - start, None)
    pixels, decode_s, decode_cpu_s = decoded
    metrics = compute_metrics(image, pixels)
    row = {
        "image": name,
        "codec": codec,
        "quality": quality,
        "bytes": size,
        "bpp": 8 * size / (width * height) if size else None,
        **{k: round(v, 5) for k, v in metrics.items()},
        "encode_s": round(encode_s, 3),
        "encode_cpu_s": round(encode_cpu_s, 3),
        "decode_s": round(decode_s, 3),
        "decode_cpu_s": None if decode_cpu_s is None else round(decode_cpu_s, 3),
        "load": None if load is None else round(load, 2),
    }
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Means over images per codec and quality point."""
    keys = sorted({(r["codec"], r["quality"] if r["quality"] is not None else -1) for r in rows})
    out = []
    for codec, quality in keys:
        group = [
            r for r in rows if r["codec"] == codec and (r["quality"] if r["quality"] is not None else -1) == quality
        ]
        mean = {
            k: float(np.mean([r[k] for r in group])) if group[0][k] is not None else None
            for k in ("bpp", "lpips", "dists", "psnr", "ms_ssim", "encode_s", "encode_cpu_s", "decode_s", "load")
        }
        out.append({"codec": codec, "quality": None if quality == -1 else quality, "images": len(group), **mean})
    return sorted(out, key=lambda r: (r["codec"], r["bpp"] or 0))


def check_targets(rows: list[dict], preset: str) -> dict:
    """The issue's targets, per image where they are per image."""
    clric = [r for r in rows if r["codec"] == "clric"]
    lo, hi = TARGETS["bpp_range"]
    per_image = {}
    for name in sorted({r["image"] for r in rows}):
        avif = sorted((r["bpp"], r["lpips"]) for r in rows if r["codec"] == "avif" and r["image"] == name)
        mine = sorted((r["bpp"], r["lpips"]) for r in clric if r["image"] == name)
        vae = next(r["lpips"] for r in rows if r["codec"] == "taesd" and r["image"] == name)
        compared = []
        for bpp, lpips in mine:
            if lo <= bpp <= hi and avif[0][0] <= bpp <= avif[-1][0]:
                anchor = float(np.interp(np.log(bpp), np.log([a[0] for a in avif]), [a[1] for a in avif]))
                compared.append(
                    {
                        "bpp": round(bpp, 4),
                        "clric_lpips": round(lpips, 4),
                        "avif_lpips": round(anchor, 4),
                        "better": lpips < anchor,
                    }
                )
        top = mine[-1]
        per_image[name] = {
            "vs_avif": compared,
            "beats_avif": bool(compared) and all(c["better"] for c in compared),
            "highest_rate_bpp": round(top[0], 4),
            "highest_rate_lpips": round(top[1], 4),
            "vae_lpips": round(vae, 4),
            "within_vae": top[1] - vae <= TARGETS["vae_lpips_gap"],
        }
    encode = max(r["encode_s"] for r in clric)
    decode = max(r["decode_s"] for r in clric)
    return {
        "preset": preset,
        "encode_s_max": round(encode, 1),
        "encode_cpu_s_max": round(max(r["encode_cpu_s"] for r in clric), 1),
        "encode_target_met": encode <= TARGETS["encode_seconds"],
        "decode_s_max": round(decode, 3),
        "decode_target_met": decode < TARGETS["decode_seconds"],
        "per_image": per_image,
    }


def macs_per_pixel(latent: np.ndarray, preset: str) -> dict:
    """Decoding MAC per image pixel: the clric function, and TAESD's decoder."""
    params = get_codec("clric").params(preset)
    channels, height, width = latent.shape
    from latentpress.codecs.clric.model import IMAGE_PIXELS_PER_LATENT, Architecture

    arch = Architecture(channels, height, width, params.grid_counts(channels), synthesis_width=params.synthesis_width)
    return {
        "clric": round(arch.macs_per_latent() / IMAGE_PIXELS_PER_LATENT, 2),
        "taesd_decoder": round(_conv_macs(latent) / (IMAGE_PIXELS_PER_LATENT * height * width), 1),
    }


def _conv_macs(latent: np.ndarray) -> int:
    """MACs of every convolution of the VAE decoder on ``latent``, counted with hooks."""
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    decoder = load_vae(VAE).vae.decoder
    hooks = [m.register_forward_hook(count) for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        decoder(torch.from_numpy(latent)[None])
    for hook in hooks:
        hook.remove()
    return total


def markdown(report: dict) -> str:
    """The results as Markdown: summary table, targets, per-image comparison with AVIF."""
    summary = [
        {
            "codec": r["codec"],
            "quality": "-" if r["quality"] is None else f"{r['quality']:g}",
            "bpp": "-" if r["bpp"] is None else f"{r['bpp']:.4f}",
            "LPIPS": f"{r['lpips']:.4f}",
            "DISTS": f"{r['dists']:.4f}",
            "PSNR": f"{r['psnr']:.2f}",
            "enc s": f"{r['encode_s']:.2f}",
            "enc CPU s": f"{r['encode_cpu_s']:.2f}",
            "dec s": f"{r['decode_s']:.3f}",
            "load": "-" if r["load"] is None else f"{r['load']:.1f}",
        }
        for r in report["summary"]
    ]
    checks = report["checks"]
    per_image = [
        {
            "image": name,
            "clric vs AVIF at equal bpp (LPIPS)": "; ".join(
                f"{c['bpp']:.3f}: {c['clric_lpips']:.3f} vs {c['avif_lpips']:.3f}" for c in v["vs_avif"]
            )
            or "-",
            "beats AVIF": v["beats_avif"],
            "highest rate": f"{v['highest_rate_bpp']:.3f} bpp, LPIPS {v['highest_rate_lpips']:.3f}",
            "TAESD LPIPS": f"{v['vae_lpips']:.3f}",
            "within 0.03": v["within_vae"],
        }
        for name, v in checks["per_image"].items()
    ]
    macs = report["macs_per_pixel"]
    return (
        "\n\n".join(
            [
                f"# CLRIC benchmark ({report['date']})",
                f"{report['machine']}; images: {report['folder']}; clric preset `{report['preset']}`"
                f"{''.join(f', {k}={v}' for k, v in report.get('overrides', {}).items())}. Means over the images; "
                "clric quality is lambda, avif quality 0..100, latent-q the step; taesd is the VAE round trip alone. "
                "Seconds are wall time per image (clric: a fitting process's time over the images it fitted together); "
                "load is the 1-minute load average when the timing ran (2 cores).",
                table(summary),
                f"Decoding cost: clric function {macs['clric']} MAC per image pixel (paper: about 25.5); "
                f"TAESD decoder {macs['taesd_decoder']} MAC per image pixel.",
                f"Targets: encoding at most 60 s per image: {checks['encode_target_met']} (max {checks['encode_s_max']} s wall, "
                f"{checks['encode_cpu_s_max']} s CPU); decoding with TAESD under 3 s: {checks['decode_target_met']} "
                f"(max {checks['decode_s_max']} s).",
                table(per_image),
            ]
        )
        + "\n"
    )


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
