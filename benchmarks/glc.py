"""GLC against AVIF, latent-q and CLRIC on photos it was not trained on.

    python benchmarks/glc.py [--vae taesd --vae taesd3] [--preset default] [--steps N] [--set FIELD=VALUE]
                             [--photos mixed|mixed+mate-nature|natural]

Training set (``--photos``), each photo scaled to at most 768 pixels on its longer
side, plus four 256x256 crops of each of kodim01 and kodim02: ``mixed`` (the default,
24 photos) the colour photos scikit-image ships (astronaut, coffee, chelsea, rocket,
hubble_deep_field, immunohistochemistry, retina, both motorcycle views) and its
greyscale ones as RGB (camera, moon, brick, grass, gravel, coins, clock);
``mixed+mate-nature`` (36) those and the twelve mate-nature photos of
``../shared/data`` (1.3-4.9 MP); ``natural`` (26) only the photographs of scenes in
colour: scikit-image's astronaut, coffee, chelsea, rocket and motorcycle views and the
mate-nature photos. Evaluation set: kodim03 to kodim06 at full size, never seen in
training. For each VAE a ``glc`` model is trained (``--preset``, ``--steps``) on the
training set's latents, then every evaluation photo is coded at qualities 1 to 4 in
half steps, decoded from the bytes and measured (LPIPS, DISTS, PSNR, MS-SSIM);
``latent-q`` on the same VAE and ``avif`` run on the same photos, and CLRIC's points
come from ``benchmarks/results/clric.json`` (its benchmark, the same photos, TAESD).
Each VAE's training and coding runs in its own process, the cores shared between them.

The perceptual stage is measured apart: ``glc-mse`` rows are the same model before
it (the rate-distortion stage alone), ``glc`` rows after it.

Reported: payload bpp, the amortised bpp if the evaluation set were the whole
collection, metrics, encode and decode seconds per image besides the VAE, training
time, BD-rates (LPIPS, DISTS) against avif, latent-q and clric, and issue #11's
targets. Writes ``glc.json`` and ``glc.md`` to ``--out`` and ``glc-lpips.png`` to
``--plots`` (default ``docs/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))
os.environ.setdefault("LATENTPRESS_DEVICE", "cpu")

from mdtable import table  # noqa: E402

from latentpress.codecs import CodecInput, DecodeContext, get_codec  # noqa: E402
from latentpress.models.metrics import compute_metrics  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402
from latentpress.report.bdrate import bd_rate_or_reason, shared_interval  # noqa: E402

KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
MATE_NATURE = REPO.parent / "shared" / "data" / "mate-nature"
EVALUATION = ("kodim03", "kodim04", "kodim05", "kodim06")
TRAIN_CROPS = ("kodim01", "kodim02")
COLOUR = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
GREY = ("camera", "moon", "brick", "grass", "gravel", "coins", "clock")
SCENES = ("astronaut", "coffee", "chelsea", "rocket")
"""scikit-image's photographs of scenes in colour (besides the motorcycle views)."""
PHOTO_SETS = ("mixed", "mixed+mate-nature", "natural")
QUALITIES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
AVIF = (0, 5, 10, 15, 20, 30, 40, 50)
LATENT_Q = (0.25, 0.35, 0.5, 0.7, 1.0, 1.5)
LPIPS_BANDS = ((0.0, 0.2), (0.2, 0.3), (0.3, 1.0))
"""LPIPS bands the BD-rate is also reported within: where along the curve a saving is."""
TARGETS = {"bd_rate_vs_latent_q": -25.0, "decode_seconds": 1.0, "encode_seconds": 2.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", action="append", help="VAEs (repeatable; default taesd and taesd3)")
    parser.add_argument("--preset", default="default", help="glc preset (default %(default)s)")
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the preset's GlcParams, e.g. latent_perceptual=1 (repeatable)",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--plots", default=str(REPO / "docs"))
    parser.add_argument("--threads", type=int, help="torch threads per VAE (default: the cores shared among the VAEs)")
    parser.add_argument("--photos", choices=PHOTO_SETS, default="mixed", help="training set (default %(default)s)")
    parser.add_argument("--save-models", help="folder to write each trained model to (MODEL-VAE.bin)")
    parser.add_argument("--load-models", help="folder of models saved by --save-models: evaluate them, no training")
    args = parser.parse_args()
    training, evaluation = training_photos(args.photos), evaluation_photos()
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "preset": args.preset,
        "overrides": overrides(args.set),
        "photo_set": args.photos,
        "training_photos": sorted(training),
        "evaluation_photos": list(EVALUATION),
        "rows": [],
        "models": {},
    }
    vaes = args.vae or ["taesd", "taesd3"]
    threads = args.threads or max(1, (os.cpu_count() or 1) // len(vaes))
    with ProcessPoolExecutor(len(vaes), mp_context=get_context("spawn")) as pool:
        parts = {
            name: pool.submit(
                vae_part,
                name,
                args.preset,
                args.steps,
                args.save_models,
                args.load_models,
                threads,
                overrides(args.set),
                args.photos,
            )
            for name in vaes
        }
        report["rows"] += pixel_rows("avif", AVIF, evaluation)
        report["rows"] += clric_rows()
        for vae_name, part in parts.items():
            record, rows = part.result()
            report["models"][vae_name] = record
            report["rows"] += rows
    report["summary"] = summarize(report["rows"])
    report["bd_rates"] = bd_rates(report["rows"])
    report["checks"] = check_targets(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "glc.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "glc.md").write_text(markdown(report))
    plot(report["rows"], Path(args.plots) / "glc-lpips.png")
    print(markdown(report))
    return 0


def overrides(assignments: list[str], codec: str = "glc") -> dict:
    """``FIELD=VALUE`` strings as fields of ``codec``'s parameter dataclass, of their own
    types (numbers, flags and words)."""
    return dataclass_fields(assignments, type(get_codec(codec).params()))


def dataclass_fields(assignments: list[str], params: type) -> dict:
    """``FIELD=VALUE`` strings as fields of the dataclass ``params``, of their own types."""
    types = {f.name: f.type for f in fields(params)}
    parsers = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true"), "str": str}
    out = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if types.get(name) not in parsers:
            raise SystemExit(f"--set {assignment}: {params.__name__} has no number, flag or word field {name!r}")
        out[name] = parsers[types[name]](value)
    return out


def vae_part(vae_name: str, preset: str, steps: int | None, save_models: str | None, load_models: str | None,
             threads: int, changes: dict, photos: str) -> tuple[dict, list[dict]]:  # fmt: skip
    """One VAE's share, run in its own process with ``threads`` torch threads: train the
    models (or load them), then code the evaluation photos with them and with latent-q."""
    import torch

    torch.set_num_threads(threads)
    vae = load_vae(vae_name)
    if load_models:
        model, without, record = loaded_models(Path(load_models), vae_name)
    else:
        model, without, record = train_models(vae, training_photos(photos), preset, steps, changes)
    if save_models:
        Path(save_models).mkdir(parents=True, exist_ok=True)
        (Path(save_models) / f"glc-{vae_name}.bin").write_bytes(model)
        (Path(save_models) / f"glc-mse-{vae_name}.bin").write_bytes(without)
    evaluation = evaluation_photos()
    latents = {name: vae.encode([image])[0] for name, image in evaluation.items()}
    rows = glc_rows(vae, model, preset, evaluation, latents)
    rows += glc_rows(vae, without, preset, evaluation, latents, "glc-mse")
    rows += latent_q_rows(vae, evaluation, latents)
    print(f"{vae_name}: done", flush=True)
    return record, rows


def loaded_models(folder: Path, vae_name: str) -> tuple[bytes, bytes, dict]:
    """The models ``--save-models`` wrote for ``vae_name`` (as ``train_models`` gives
    them; no training time)."""
    from latentpress.codecs.glc import bitstream

    model, without = (folder / f"glc-{vae_name}.bin").read_bytes(), (folder / f"glc-mse-{vae_name}.bin").read_bytes()
    decoder = bitstream.unpack_model(model)[2]
    return model, without, {"bytes": len(model), "train_seconds": float("nan"), "loaded_from": str(folder),
                            "decoder_blends": decoder.blends.tolist() if decoder else None}  # fmt: skip


def evaluation_photos() -> dict[str, np.ndarray]:
    return {name: np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB")) for name in EVALUATION}


def training_photos(photo_set: str = "mixed") -> dict[str, np.ndarray]:
    """The training set ``photo_set`` of ``PHOTO_SETS`` (see the module docstring), as RGB arrays."""
    import skimage.data

    if photo_set not in PHOTO_SETS:
        raise ValueError(f"no training set {photo_set!r}; there are {', '.join(PHOTO_SETS)}")
    photos: dict[str, np.ndarray] = {}
    for name in SCENES if photo_set == "natural" else COLOUR + GREY:
        image = np.asarray(getattr(skimage.data, name)())
        photos[name] = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    left, right, _ = skimage.data.stereo_motorcycle()
    photos["motorcycle_left"], photos["motorcycle_right"] = left, right
    if photo_set != "mixed":
        for path in sorted(MATE_NATURE.glob("*.jpg")):
            photos[f"mate-{path.stem}"] = np.asarray(Image.open(path).convert("RGB"))
    for name, image in list(photos.items()):
        photos[name] = fit(image, 768)
    for name in TRAIN_CROPS:
        image = np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB"))
        for i, (top, left) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
            photos[f"{name}-crop{i}"] = image[top : top + 256, left : left + 256].copy()
    return photos


def fit(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (uint8 RGB) scaled down to at most ``side`` pixels on its longer side."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return np.ascontiguousarray(image.astype(np.uint8))
    scale = side / max(h, w)
    resized = Image.fromarray(image.astype(np.uint8)).resize((round(w * scale), round(h * scale)), Image.LANCZOS)
    return np.asarray(resized)


def train_models(vae, photos: dict[str, np.ndarray], preset: str, steps: int | None, changes: dict
                 ) -> tuple[bytes, bytes, dict]:  # fmt: skip
    """The model after the rate-distortion stage, the model after the perceptual stage
    too (what ``glc`` trains), and their record: the same stages ``Glc.train`` runs,
    taken apart to measure what the perceptual stage buys."""
    from latentpress.codecs.glc import bitstream
    from latentpress.codecs.glc.codec import decoding, measured_sensitivity
    from latentpress.codecs.glc.perceptual import PerceptualStage, finetune
    from latentpress.codecs.glc.train import train
    from latentpress.codecs.tuned_decoder import DecoderStage, tune_on_collection

    params = replace(get_codec("glc").params(preset), **changes)
    start = time.perf_counter()
    latents = [vae.encode([p])[0] for p in photos.values()]
    encoded = time.perf_counter() - start

    checks = []

    def progress(status) -> None:
        print(f"{vae.vae_id} step {status.step}/{status.steps} {status.summary()}", flush=True)
        if status.check is not None:
            checks.append(asdict(status.check))

    start = time.perf_counter()
    sensitivity = None
    if params.weighs_channels(latents[0].shape[0]):
        items = [CodecInput(name, p.shape[1], p.shape[0], latent=z, vae_id=vae.vae_id, image=p)
                 for (name, p), z in zip(photos.items(), latents, strict=True)]  # fmt: skip
        sensitivity = measured_sensitivity(items, latents, vae.vae_id)
        print(f"{vae.vae_id} channel sensitivity {np.round(sensitivity, 2).tolist()}", flush=True)
    arch = params.architecture(latents[0].shape[0])
    model = train(latents, arch, params.training(steps), "cpu", progress, vae_name=vae.vae_id, sensitivity=sensitivity)
    rd_seconds = time.perf_counter() - start
    record = bitstream.ModelRecord(arch, vae.vae_id, len(latents), params.training(steps).steps)
    rate_distortion = bitstream.pack_model(model, record)
    start = time.perf_counter()
    finetune(
        model,
        latents,
        vae.vae_id,
        PerceptualStage(params.perceptual_steps),
        "cpu",
        lambda step, lpips, mse: print(f"{vae.vae_id} perceptual {step} lpips {lpips:.4f} mse {mse:.4f}", flush=True),
    )
    perceptual_seconds = time.perf_counter() - start
    decoder, decoder_seconds = None, 0.0
    if params.decoder_steps:
        start = time.perf_counter()
        decoder = tune_on_collection(
            decoding(model),
            latents,
            list(photos.values()),
            vae.vae_id,
            DecoderStage(params.decoder_steps),
            "cpu",
            lambda step, lpips, mse: print(f"{vae.vae_id} decoder {step} lpips {lpips:.4f} mse {mse:.4f}", flush=True),
        )
        decoder_seconds = time.perf_counter() - start
        print(f"{vae.vae_id} decoder blends {decoder.blends.tolist() if decoder else None}", flush=True)
    perceptual = bitstream.pack_model(model, record, decoder.arrays() if decoder else None)
    return perceptual, rate_distortion, {
        "bytes": len(perceptual), "train_seconds": rd_seconds + perceptual_seconds + decoder_seconds,
        "rd_seconds": rd_seconds, "perceptual_seconds": perceptual_seconds, "decoder_seconds": decoder_seconds,
        "decoder_blends": decoder.blends.tolist() if decoder else None,
        "channel_sensitivity": sensitivity.tolist() if sensitivity is not None else None,
        "vae_encode_seconds": encoded, "images": len(latents),
        "steps": params.training(steps).steps, "perceptual_steps": params.perceptual_steps,
        "held_aside_checks": checks,
    }  # fmt: skip


def measure(
    name: str,
    image: np.ndarray,
    codec: str,
    vae_id: str,
    quality: float,
    size: int,
    decoded: np.ndarray,
    encode_s: float,
    decode_s: float,
) -> dict:
    h, w = image.shape[:2]
    return {"image": name, "codec": codec, "vae": vae_id, "quality": quality, "bytes": size, "bpp": 8 * size / (h * w),
            **compute_metrics(image, decoded), "encode_s": encode_s, "decode_s": decode_s}  # fmt: skip


def pixel_rows(codec_name: str, qualities: tuple, images: dict) -> list[dict]:
    codec, rows = get_codec(codec_name), []
    for name, image in images.items():
        for q in qualities:
            start = time.perf_counter()
            data = codec.encode(CodecInput(name, image.shape[1], image.shape[0], image=image), codec.params(quality=q))
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            decoded = codec.decode(data, DecodeContext(image.shape[1], image.shape[0]))
            rows.append(
                measure(name, image, codec_name, "", q, len(data), decoded, encode_s, time.perf_counter() - start)
            )
    return rows


def latent_q_rows(vae, images: dict, latents: dict) -> list[dict]:
    codec, rows = get_codec("latent-q"), []
    for name, image in images.items():
        h, w = image.shape[:2]
        for step in LATENT_Q:
            data = codec.encode(CodecInput(name, w, h, latent=latents[name]), codec.params(quality=step))
            latent = codec.decode(data, DecodeContext(w, h))
            decoded = vae.decode([latent], [(w, h)])[0]
            rows.append(measure(name, image, "latent-q", vae.vae_id, step, len(data), decoded, 0.0, 0.0))
    return rows


def glc_rows(vae, model: bytes, preset: str, images: dict, latents: dict, label: str = "glc") -> list[dict]:
    codec, rows = get_codec("glc"), []
    for name, image in images.items():
        h, w = image.shape[:2]
        item = CodecInput(name, w, h, latent=latents[name], vae_id=vae.vae_id)
        codec.encode(item, codec.params(preset, 2.0), model)  # load the model once, outside the timings
        for q in QUALITIES:
            start = time.perf_counter()
            data = codec.encode(item, codec.params(preset, q), model)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            context = DecodeContext(w, h, vae.vae_id, model)
            latent = codec.decode(data, context)
            decode_s = time.perf_counter() - start
            decoded = vae.with_decoder(codec.vae_decoder(data, context)).decode([latent], [(w, h)])[0]
            rows.append(measure(name, image, label, vae.vae_id, q, len(data), decoded, encode_s, decode_s))
    return rows


def clric_rows() -> list[dict]:
    """CLRIC's measured points on the evaluation photos, from its own benchmark."""
    path = REPO / "benchmarks" / "results" / "clric.json"
    if not path.exists():
        return []
    rows = json.loads(path.read_text())["rows"]
    return [{**r, "vae": "taesd"} for r in rows if r["codec"] == "clric" and r["image"] in EVALUATION]


def curve(
    rows: list[dict], codec: str, vae: str, image: str | None = None
) -> tuple[list[float], list[float], list[float]]:
    """(bpp, lpips, dists) of a codec's points, averaged over images per quality (or one image)."""
    chosen = [r for r in rows if r["codec"] == codec and r["vae"] == vae and (image is None or r["image"] == image)]
    qualities = sorted({r["quality"] for r in chosen})
    means = [
        [np.mean([r[k] for r in chosen if r["quality"] == q]) for q in qualities] for k in ("bpp", "lpips", "dists")
    ]
    return tuple(map(list, means))  # type: ignore[return-value]


def summarize(rows: list[dict]) -> list[dict]:
    keys = sorted({(r["codec"], r["vae"], r["quality"]) for r in rows})
    out = []
    for codec, vae, quality in keys:
        group = [r for r in rows if (r["codec"], r["vae"], r["quality"]) == (codec, vae, quality)]
        out.append({"codec": codec, "vae": vae, "quality": quality, "images": len(group),
                    **{k: float(np.mean([r[k] for r in group])) for k in
                       ("bpp", "lpips", "dists", "psnr", "ms_ssim", "encode_s", "decode_s")}})  # fmt: skip
    return out


def bd_rates(rows: list[dict]) -> list[dict]:
    out = []
    for vae in sorted({r["vae"] for r in rows if r["codec"] == "glc"}):
        test = curve(rows, "glc", vae)
        for anchor, anchor_vae in (("avif", ""), ("latent-q", vae), ("clric", "taesd"), ("glc-mse", vae)):
            ref = curve(rows, anchor, anchor_vae)
            if not ref[0]:
                continue
            entry = {
                "glc": vae,
                "anchor": f"{anchor} ({vae})" if anchor in ("latent-q", "glc-mse") else anchor,
                "lpips_interval": shared_interval(ref[1], test[1]),
            }
            for index, metric in ((1, "lpips"), (2, "dists")):
                entry[metric], note = bd_rate_or_reason(ref[0], ref[index], test[0], test[index])
                if note:
                    entry[f"{metric}_note"] = note
            entry["lpips_bands"] = [
                bd_rate_or_reason(ref[0], ref[1], test[0], test[1], band)[0] for band in LPIPS_BANDS
            ]
            out.append(entry)
    return out


def lower_lpips_than_avif(rows: list[dict], vae: str) -> dict[str, bool]:
    """Per evaluation photo: GLC's LPIPS below AVIF's (interpolated in log bpp) at every
    GLC point inside AVIF's bpp range."""
    verdict = {}
    for image in EVALUATION:
        gb, gl, _ = curve(rows, "glc", vae, image)
        ab, al, _ = curve(rows, "avif", "", image)
        order = np.argsort(ab)
        inside = [(b, l) for b, l in zip(gb, gl, strict=True) if min(ab) <= b <= max(ab)]
        verdict[image] = bool(inside) and all(l < np.interp(np.log(b), np.log(np.array(ab)[order]), np.array(al)[order])
                                              for b, l in inside)  # fmt: skip
    return verdict


def check_targets(report: dict) -> dict:
    rows, checks = report["rows"], {}
    for vae, record in report["models"].items():
        glc = [r for r in rows if r["codec"] == "glc" and r["vae"] == vae]
        payload = float(np.mean([r["bpp"] for r in glc]))
        pixels = float(np.mean([r["bpp"] and r["bytes"] * 8 / r["bpp"] for r in glc]))
        share = 8 * record["bytes"] / pixels  # bpp of the model over one image
        bd = next(b for b in report["bd_rates"] if b["glc"] == vae and b["anchor"].startswith("latent-q"))
        checks[vae] = {
            "bd_rate_lpips_vs_latent_q": bd["lpips"],
            "bd_rate_met": bd["lpips"] is not None and bd["lpips"] <= TARGETS["bd_rate_vs_latent_q"],
            "lower_lpips_than_avif": lower_lpips_than_avif(rows, vae),
            "decode_seconds_max": max(r["decode_s"] for r in glc),
            "encode_seconds_max": max(r["encode_s"] for r in glc),
            "amortised_bpp_at_set_size": payload + share / len(EVALUATION),
            "mean_payload_bpp": payload,
            "images_for_amortised_within_10_percent": int(np.ceil(share / (0.1 * payload))),
            "model_bytes": record["bytes"],
            "train_seconds": record["train_seconds"],
        }
    return checks


def markdown(report: dict) -> str:
    summary = [
        {"codec": r["codec"], "VAE": r["vae"] or "-", "quality": f"{r['quality']:g}", "bpp": f"{r['bpp']:.4f}",
         "LPIPS": f"{r['lpips']:.4f}", "DISTS": f"{r['dists']:.4f}", "PSNR": f"{r['psnr']:.2f}",
         "MS-SSIM": f"{r['ms_ssim']:.4f}", "enc s": f"{r['encode_s']:.3f}", "dec s": f"{r['decode_s']:.3f}"}
        for r in report["summary"]
    ]  # fmt: skip
    bds = [
        {
            "glc": b["glc"],
            "anchor": b["anchor"],
            "BD-rate LPIPS": _pct(b["lpips"]),
            "BD-rate DISTS": _pct(b["dists"]),
            "LPIPS interval": "{:.3f}-{:.3f}".format(*b["lpips_interval"]),
            **{
                f"LPIPS {low:g}-{high:g}": _pct(v) for (low, high), v in zip(LPIPS_BANDS, b["lpips_bands"], strict=True)
            },
        }
        for b in report["bd_rates"]
    ]
    checks = [
        {"VAE": vae, "BD-rate vs latent-q (LPIPS)": _pct(c["bd_rate_lpips_vs_latent_q"]),
         "<= -25%": "yes" if c["bd_rate_met"] else "NO",
         "LPIPS below AVIF on every photo": ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in c["lower_lpips_than_avif"].items()),
         "max enc s": f"{c['encode_seconds_max']:.3f}", "max dec s": f"{c['decode_seconds_max']:.3f}",
         "model KB": f"{c['model_bytes'] / 1024:.0f}", "train s": f"{c['train_seconds']:.0f}",
         "payload bpp": f"{c['mean_payload_bpp']:.4f}", "amortised bpp (4 images)": f"{c['amortised_bpp_at_set_size']:.3f}",
         "images for amortised within 10%": c["images_for_amortised_within_10_percent"]}
        for vae, c in report["checks"].items()
    ]  # fmt: skip
    return (
        f"# GLC benchmark ({report['date']}, {report['machine']}, preset {report['preset']}"
        f"{''.join(f', {k}={v}' for k, v in report.get('overrides', {}).items())})\n\n"
        f"Trained on {len(report['training_photos'])} photos (set {report.get('photo_set', 'mixed')}: "
        f"{', '.join(report['training_photos'])}); evaluated on {', '.join(report['evaluation_photos'])} at full size. "
        f"Rates are payload bpp (the image's own stream); seconds exclude the VAE.\n\n"
        f"## Targets\n\n{table(checks)}\n\n## BD-rates (negative: fewer bits than the anchor)\n\n"
        f"Over the LPIPS interval both curves cover, and within bands of it (where along the curve the "
        f"saving is).\n\n{table(bds)}\n\n"
        f"## Mean over the evaluation photos\n\n{table(summary)}\n"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for codec, vae, style in (("glc", "taesd", "o-"), ("glc", "taesd3", "s-"), ("glc-mse", "taesd", "o:"),
                              ("glc-mse", "taesd3", "s:"), ("latent-q", "taesd", "o--"),
                              ("latent-q", "taesd3", "s--"), ("clric", "taesd", "^-"), ("avif", "", "x-")):  # fmt: skip
        bpp, lpips, _ = curve(rows, codec, vae)
        if bpp:
            order = np.argsort(bpp)
            ax.plot(np.array(bpp)[order], np.array(lpips)[order], style, label=f"{codec} ({vae})" if vae else codec)
    ax.set_xlabel("bits per pixel (payload)")
    ax.set_ylabel("LPIPS (lower is better)")
    ax.set_xlim(0, 0.5)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Kodak photos not seen in training (mean of 4)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


if __name__ == "__main__":
    raise SystemExit(main())
