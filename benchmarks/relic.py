"""Relic against naive latent quantization, with and without denoising, on photos it
was not trained on: the paper's Fig. 2, its supplement's t sweep, and what denoising buys.

    python benchmarks/relic.py [--vae taesd --vae taesd3] [--preset default] [--steps N]
        [--set time_search=pixels] [--save-models DIR | --load-models DIR [--finish]] [--photos mixed|natural]

Training and evaluation photos are the GLC benchmark's (``benchmarks/glc.py``): with
``--photos mixed`` (the default) the photos scikit-image ships plus crops of kodim01
and kodim02 for training, and the twelve mate-nature photos for a preset's time fit
(held out from the rest of training); with ``natural`` the GLC benchmark's set of
that name (26 photographs of scenes in colour, mate-nature's included), whose
mate-nature photos a time fit holds out first (at most a third of the set). kodim03 to
kodim06 at full size for evaluation. For each VAE, in its own process:

1. ``relic`` at qualities 1 to 4 in half steps; ``latent-q`` at its usual steps; and
   ``latent-q+denoise``: the same latent-q bytes, decoded by relic's denoiser from
   the time whose noise matches the quantization step (a uniform step ``s`` in
   channel units has standard deviation ``s / sqrt(12)``), the number of steps
   picked by hand (``DECODE_STEPS``). Each point: bpp against LPIPS, DISTS, PSNR.
2. The t sweep: two photos at three qualities, the same code decoded from hand-set
   times; where the predicted t falls among them.
3. ``relic-t0``: the same payloads with t forced to 0 (no denoising), drawn with the
   stock VAE decoder; and, for a model with a tuned VAE decoder (``--set
   decoder_steps=N``), ``relic-stock-decoder``: the codec's payloads drawn with the
   stock decoder, what the tuning buys. ``relic`` and the t sweep draw as the codec
   does.

Reported: payload bpp, metrics, encode and decode seconds besides the VAE, training
time, BD-rates (LPIPS, DISTS) against latent-q and latent-q+denoise, and issue #12's
targets. Writes ``relic.json`` and ``relic.md`` to ``--out`` and ``relic-lpips.png``
and ``relic-sweep.png`` to ``--plots`` (default ``docs/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from glc import (  # noqa: E402
    REPO,
    _pct,
    curve,
    evaluation_photos,
    latent_q_rows,
    measure,
    overrides,
    summarize,
    training_photos,
)
from mdtable import table  # noqa: E402

from latentpress.codecs import CodecInput, DecodeContext, get_codec  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402
from latentpress.report.bdrate import bd_rate_or_reason  # noqa: E402

QUALITIES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
LATENT_Q = (0.25, 0.35, 0.5, 0.7, 1.0, 1.5)
SWEEP_PHOTOS = ("kodim03", "kodim05")
SWEEP_QUALITIES = (1.0, 2.5, 4.0)
SWEEP_TIMES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
TARGETS = {"bd_rate_vs_latent_q": -30.0, "decode_seconds": 2.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", action="append", help="VAEs (repeatable; default taesd and taesd3)")
    parser.add_argument("--preset", default="default", help="relic preset (default %(default)s)")
    parser.add_argument("--steps", type=int, help="training steps, both stages (default: the preset's)")
    parser.add_argument("--threads", type=int, help="torch threads per VAE (default: the cores shared among the VAEs)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--plots", default=str(REPO / "docs"))
    parser.add_argument("--save-models", help="folder to write each trained model to (relic-VAE.bin)")
    parser.add_argument("--load-models", help="folder of models saved by --save-models: evaluate them, no training")
    parser.add_argument(
        "--finish",
        action="store_true",
        help="with --load-models: first run the preset's stages after the codec stage (the time fit, the decoder "
        "tuning) on each loaded model, in place of any tuned decoder it carries",
    )
    parser.add_argument(
        "--photos",
        choices=("mixed", "natural"),
        default="mixed",
        help="training set (default %(default)s; see the module docstring)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the preset's RelicParams, e.g. latent_perceptual=1 (repeatable)",
    )
    args = parser.parse_args()
    changes = overrides(args.set, "relic")
    vaes = args.vae or ["taesd", "taesd3"]
    threads = args.threads or max(1, (os.cpu_count() or 1) // len(vaes))
    report: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores", "preset": args.preset,
                    "overrides": changes, "photo_set": args.photos,
                    "evaluation_photos": list(evaluation_photos()), "rows": [], "sweep": [], "models": {}}  # fmt: skip
    photos, held_out = time_fit_photos(replace(get_codec("relic").params(args.preset), **changes), args.photos)
    if args.load_models and not args.finish:
        held_out = []
    report["training_photos"], report["time_fit_photos"] = sorted(set(photos) - set(held_out)), held_out
    with ProcessPoolExecutor(len(vaes), mp_context=get_context("spawn")) as pool:
        parts = {name: pool.submit(vae_part, name, args, threads, changes) for name in vaes}
        for vae_name, part in parts.items():
            record, rows, sweep = part.result()
            report["models"][vae_name] = record
            report["rows"] += rows
            report["sweep"] += sweep
    report["summary"] = summarize(report["rows"])
    report["bd_rates"] = bd_rates(report["rows"])
    report["checks"] = check_targets(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "relic.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "relic.md").write_text(markdown(report))
    plot(report["rows"], Path(args.plots) / "relic-lpips.png")
    plot_sweep(report["sweep"], Path(args.plots) / "relic-sweep.png")
    print(markdown(report))
    return 0


def vae_part(
    vae_name: str, args: argparse.Namespace, threads: int, changes: dict
) -> tuple[dict, list[dict], list[dict]]:
    """One VAE's share, in its own process: train (or load), then the three experiments."""
    import torch

    torch.set_num_threads(threads)
    vae = load_vae(vae_name)
    params = replace(get_codec("relic").params(args.preset), **changes)
    if args.load_models:
        path = Path(args.load_models) / f"relic-{vae_name}.bin"
        model = path.read_bytes()
        record = {"bytes": len(model), "train_seconds": None, "loaded_from": str(path)}
        if args.finish:
            start = time.perf_counter()
            model, record["finish"] = finish_model(vae, model, params, args.photos)
            record["finish_seconds"] = time.perf_counter() - start
    else:
        model, record = train_model(vae, params, args.steps, args.photos)
    if args.save_models:
        Path(args.save_models).mkdir(parents=True, exist_ok=True)
        (Path(args.save_models) / f"relic-{vae_name}.bin").write_bytes(model)
    evaluation = evaluation_photos()
    latents = {name: vae.encode([image])[0] for name, image in evaluation.items()}
    rows = relic_rows(vae, model, params, evaluation, latents)
    rows += latent_q_rows(vae, evaluation, latents)
    rows += denoised_latent_q_rows(vae, model, evaluation, latents)
    sweep = sweep_rows(vae, model, params, evaluation, latents)
    print(f"{vae_name}: done", flush=True)
    return record, rows, sweep


def train_model(vae, params, steps: int | None, photo_set: str) -> tuple[bytes, dict]:
    codec = get_codec("relic")
    photos, _ = time_fit_photos(params, photo_set)
    start = time.perf_counter()
    items = [CodecInput(name, p.shape[1], p.shape[0], latent=vae.encode([p])[0], vae_id=vae.vae_id, image=p)
             for name, p in photos.items()]  # fmt: skip
    encoded = time.perf_counter() - start

    def progress(status) -> None:
        print(f"{vae.vae_id} step {status.step}/{status.steps} {status.summary()}", flush=True)

    start = time.perf_counter()
    model = codec.train(items, params, steps, progress)
    training = params.training(steps)
    return model, {"bytes": len(model), "train_seconds": time.perf_counter() - start, "vae_encode_seconds": encoded,
                   "images": len(items), "denoiser_steps": training.denoiser_steps,
                   "coder_steps": training.coder_steps}  # fmt: skip


def finish_model(vae, model: bytes, params, photo_set: str) -> tuple[bytes, str | None]:
    """``model`` (saved by ``--save-models``) after the stages its preset's training
    ends with (``codec.finish``), on the photos that training holds out and tunes on;
    and what its time fit reports."""
    from latentpress.codecs.relic import bitstream
    from latentpress.codecs.relic.codec import finish

    photos, names = time_fit_photos(params, photo_set)
    if not params.decoder_steps:  # only the time fit: the held-out photos alone
        photos = {name: photos[name] for name in names}
    latents = {name: vae.encode([p])[0] for name, p in photos.items()}
    relic, record, _ = bitstream.unpack_model(model)

    def progress(status) -> None:
        print(f"{vae.vae_id} {status.stage} {status.step}/{status.steps} {status.summary()}", flush=True)

    decoder, summary = finish(relic, params.training(), params.decoder_steps, [(photos[n], latents[n]) for n in names],
                              list(latents.values()), list(photos.values()), vae.vae_id, progress)  # fmt: skip
    print(f"{vae.vae_id} time fit: {summary}", flush=True)
    return bitstream.pack_model(relic, record, decoder.arrays() if decoder else None), summary


def time_fit_photos(params, photo_set: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The training photos of ``photo_set`` for ``params`` (mate-nature's first where it
    fits the time) and the names of those its training holds out for the time fit."""
    from latentpress.codecs.relic.codec import held_out_photos

    if photo_set == "mixed" and params.time_fit_photos > 0:
        photo_set = "mixed+mate-nature"
    photos = held_out_first(training_photos(photo_set))
    items = [CodecInput(name, p.shape[1], p.shape[0], image=p) for name, p in photos.items()]
    return photos, [items[n].image_id for n in held_out_photos(items, params.time_fit_photos)]


def held_out_first(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``photos`` with mate-nature's first: the photos a time fit holds out (the first
    given), so that the denoiser and the codec learn from the GLC benchmark's set."""
    return dict(sorted(photos.items(), key=lambda item: not item[0].startswith("mate-")))


def relic_rows(vae, model: bytes, params, images: dict, latents: dict) -> list[dict]:
    """``relic`` (through the codec, so with ``params``' time search, drawn with the
    model's tuned VAE decoder if it has one), ``relic-stock-decoder`` (the same
    payloads drawn with the stock decoder; models with a tuned one only) and
    ``relic-t0`` (the same code, not denoised, stock decoder) at every quality."""
    from latentpress.codecs.relic.codec import load_model

    loaded, rows, codec = load_model(model), [], get_codec("relic")
    for name, image in images.items():
        h, w = image.shape[:2]
        for q in QUALITIES:
            start = time.perf_counter()
            data = relic_payload(vae, model, params, name, image, latents[name], q)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            context = DecodeContext(w, h, vae.vae_id, model)
            latent = codec.decode(data, context)
            decode_s = time.perf_counter() - start
            t = loaded.decoded(data)[0].time
            weights = codec.vae_decoder(data, context)
            drawn = vae.with_decoder(weights).decode([latent], [(w, h)])[0]
            rows.append({**measure(name, image, "relic", vae.vae_id, q, len(data), drawn, encode_s, decode_s),
                         "t": t, "decoder_blend": weights.blend if weights else 0.0})  # fmt: skip
            if weights is not None:
                rows.append({**measure(name, image, "relic-stock-decoder", vae.vae_id, q, len(data),
                                       vae.decode([latent], [(w, h)])[0], encode_s, decode_s), "t": t})  # fmt: skip
            plain = loaded.encode(latents[name], q, t=0.0)
            latent = loaded.decode(plain)
            rows.append({**measure(name, image, "relic-t0", vae.vae_id, q, len(plain),
                                   vae.decode([latent], [(w, h)])[0], encode_s, 0.0), "t": 0.0})  # fmt: skip
    return rows


def relic_payload(vae, model: bytes, params, name: str, image: np.ndarray, latent: np.ndarray,
                  quality: float) -> bytes:  # fmt: skip
    """The relic codec's payload of ``image``'s ``latent`` at ``quality``."""
    h, w = image.shape[:2]
    item = CodecInput(name, w, h, image, latent, vae.vae_id)
    return get_codec("relic").encode(item, replace(params, quality=quality), model)


def matching_time(step: float, std: np.ndarray) -> float:
    """The time whose noise level matches uniform quantization with ``step`` (VAE
    units) of channels of standard deviation ``std``: noise_std(t) = rms of step /
    sqrt(12) / std."""
    import torch

    from latentpress.codecs.relic import schedule

    target = float(np.sqrt(np.mean((step / math.sqrt(12) / std) ** 2)))
    grid = torch.linspace(0, schedule.T_MAX, 2000)
    return float(grid[int(torch.argmin((schedule.noise_std(grid) - target).abs()))])


def denoised_latent_q_rows(vae, model: bytes, images: dict, latents: dict) -> list[dict]:
    import torch

    from latentpress.codecs.relic.codec import load_model

    loaded, codec, rows = load_model(model), get_codec("latent-q"), []
    std = loaded.model.latent_std.numpy().astype(np.float64)
    for name, image in images.items():
        h, w = image.shape[:2]
        for step in LATENT_Q:
            data = codec.encode(CodecInput(name, w, h, latent=latents[name]), codec.params(quality=step))
            quantized = codec.decode(data, DecodeContext(w, h))
            t = matching_time(step, std)
            start = time.perf_counter()
            y_hat = loaded.model.normalise(torch.from_numpy(quantized))[None]
            latent = loaded.to_latent(loaded.denoise(y_hat, t))
            decode_s = time.perf_counter() - start
            rows.append({**measure(name, image, "latent-q+denoise", vae.vae_id, step, len(data),
                                   vae.decode([latent], [(w, h)])[0], 0.0, decode_s), "t": t})  # fmt: skip
    return rows


def sweep_rows(vae, model: bytes, params, images: dict, latents: dict) -> list[dict]:
    """LPIPS of the same code decoded from hand-set times, and from the codec's own
    (predicted, or searched with ``params.time_search``)."""
    from latentpress.codecs.relic.codec import load_model
    from latentpress.models.metrics import compute_metrics

    loaded, rows = load_model(model), []
    for name in SWEEP_PHOTOS:
        image, h, w = images[name], *images[name].shape[:2]
        for q in SWEEP_QUALITIES:
            predicted = loaded.decoded(relic_payload(vae, model, params, name, image, latents[name], q))[0].time
            drawer = vae.with_decoder(loaded.decoder_weights(q))  # as the codec draws it
            for t, is_predicted in [*((t, False) for t in SWEEP_TIMES), (predicted, True)]:
                latent = loaded.decode(loaded.encode(latents[name], q, t=t))
                metrics = compute_metrics(image, drawer.decode([latent], [(w, h)])[0])
                rows.append({"vae": vae.vae_id, "image": name, "quality": q, "t": t, "predicted": is_predicted,
                             "lpips": metrics["lpips"], "dists": metrics["dists"]})  # fmt: skip
    return rows


def bd_rates(rows: list[dict]) -> list[dict]:
    out = []
    for vae in sorted({r["vae"] for r in rows if r["codec"] == "relic"}):
        test = curve(rows, "relic", vae)
        anchors = ["latent-q", "latent-q+denoise", "relic-t0"]
        if any(r["codec"] == "relic-stock-decoder" and r["vae"] == vae for r in rows):
            anchors.append("relic-stock-decoder")
        for anchor in anchors:
            ref = curve(rows, anchor, vae)
            entry = {"relic": vae, "anchor": f"{anchor} ({vae})"}
            for index, metric in ((1, "lpips"), (2, "dists")):
                entry[metric], note = bd_rate_or_reason(ref[0], ref[index], test[0], test[index])
                if note:
                    entry[f"{metric}_note"] = note
            out.append(entry)
    return out


def sweep_verdicts(sweep: list[dict], vae: str) -> list[dict]:
    """Per (photo, quality): the codec's t, the two best hand-set times by LPIPS, and
    whether the codec's t decodes at least as well as the second best of them, by
    LPIPS and by LPIPS plus DISTS (what ``time_search="pixels"`` minimises)."""
    out = []
    for name in SWEEP_PHOTOS:
        for q in SWEEP_QUALITIES:
            group = [r for r in sweep if (r["vae"], r["image"], r["quality"]) == (vae, name, q)]
            if not group:
                continue
            mine = next(r for r in group if r["predicted"])
            hand = sorted((r for r in group if not r["predicted"]), key=lambda r: r["lpips"])
            both = sorted(r["lpips"] + r["dists"] for r in group if not r["predicted"])
            out.append({"image": name, "quality": q, "predicted_t": mine["t"], "predicted_lpips": mine["lpips"],
                        "best_t": [hand[0]["t"], hand[1]["t"]], "best_lpips": [hand[0]["lpips"], hand[1]["lpips"]],
                        "within_two_best": mine["lpips"] <= hand[1]["lpips"] + 1e-6,
                        "within_two_best_lpips_dists": mine["lpips"] + mine["dists"] <= both[1] + 1e-6})  # fmt: skip
    return out


def check_targets(report: dict) -> dict:
    rows, checks = report["rows"], {}
    for vae, record in report["models"].items():
        relic = [r for r in rows if r["codec"] == "relic" and r["vae"] == vae]
        bd = next(b for b in report["bd_rates"] if b["relic"] == vae and b["anchor"] == f"latent-q ({vae})")
        verdicts = sweep_verdicts(report["sweep"], vae)
        payload = float(np.mean([r["bpp"] for r in relic]))
        pixels = float(np.mean([r["bytes"] * 8 / r["bpp"] for r in relic]))
        share = 8 * record["bytes"] / pixels
        checks[vae] = {
            "bd_rate_lpips_vs_latent_q": bd["lpips"],
            "bd_rate_met": bd["lpips"] is not None and bd["lpips"] <= TARGETS["bd_rate_vs_latent_q"],
            "sweep": verdicts,
            "t_within_two_best": sum(v["within_two_best"] for v in verdicts),
            "t_within_two_best_lpips_dists": sum(v["within_two_best_lpips_dists"] for v in verdicts),
            "sweep_pairs": len(verdicts),
            "decode_seconds_max": max(r["decode_s"] for r in relic),
            "encode_seconds_max": max(r["encode_s"] for r in relic),
            "mean_payload_bpp": payload,
            "images_for_amortised_within_10_percent": int(np.ceil(share / (0.1 * payload))),
            "model_bytes": record["bytes"],
            "train_seconds": record["train_seconds"],
        }
    return checks


def markdown(report: dict) -> str:
    summary = [
        {"codec": r["codec"], "VAE": r["vae"], "quality": f"{r['quality']:g}", "bpp": f"{r['bpp']:.4f}",
         "LPIPS": f"{r['lpips']:.4f}", "DISTS": f"{r['dists']:.4f}", "PSNR": f"{r['psnr']:.2f}",
         "MS-SSIM": f"{r['ms_ssim']:.4f}", "enc s": f"{r['encode_s']:.3f}", "dec s": f"{r['decode_s']:.3f}"}
        for r in report["summary"]
    ]  # fmt: skip
    bds = [{"relic": b["relic"], "anchor": b["anchor"], "BD-rate LPIPS": _pct(b["lpips"]),
            "BD-rate DISTS": _pct(b["dists"])} for b in report["bd_rates"]]  # fmt: skip
    checks = [
        {"VAE": vae, "BD-rate vs latent-q (LPIPS)": _pct(c["bd_rate_lpips_vs_latent_q"]),
         "<= -30%": "yes" if c["bd_rate_met"] else "NO",
         "codec's t within the two best": f"{c['t_within_two_best']} of {c['sweep_pairs']}",
         "by LPIPS+DISTS": f"{c['t_within_two_best_lpips_dists']} of {c['sweep_pairs']}",
         "max enc s": f"{c['encode_seconds_max']:.3f}", "max dec s": f"{c['decode_seconds_max']:.3f}",
         "model KB": f"{c['model_bytes'] / 1024:.0f}", "train s": "loaded" if c["train_seconds"] is None else f"{c['train_seconds']:.0f}",
         "payload bpp": f"{c['mean_payload_bpp']:.4f}",
         "images for amortised within 10%": c["images_for_amortised_within_10_percent"]}
        for vae, c in report["checks"].items()
    ]  # fmt: skip
    sweep = [
        {"VAE": vae, "photo": v["image"], "quality": f"{v['quality']:g}", "codec's t": f"{v['predicted_t']:.3f}",
         "its LPIPS": f"{v['predicted_lpips']:.4f}", "best hand t": ", ".join(f"{t:g}" for t in v["best_t"]),
         "their LPIPS": ", ".join(f"{x:.4f}" for x in v["best_lpips"]), "within two best": "yes" if v["within_two_best"] else "NO",
         "by LPIPS+DISTS": "yes" if v["within_two_best_lpips_dists"] else "NO"}
        for vae, c in report["checks"].items() for v in c["sweep"]
    ]  # fmt: skip
    return (
        f"# Relic benchmark ({report['date']}, {report['machine']}, preset {report['preset']}"
        f"{''.join(f', {k}={v}' for k, v in report.get('overrides', {}).items())})\n\n"
        f"Trained on {len(report['training_photos'])} photos (the GLC benchmark's, set {report.get('photo_set', 'mixed')})"
        f"{'; time fitted on ' + str(len(report['time_fit_photos'])) + ' more (mate-nature)' if report['time_fit_photos'] else ''}"
        f"; evaluated on "
        f"{', '.join(report['evaluation_photos'])} at full size. Rates are payload bpp; seconds exclude the VAE.\n\n"
        f"## Targets\n\n{table(checks)}\n\n## BD-rates (negative: fewer bits than the anchor)\n\n{table(bds)}\n\n"
        f"## The t sweep\n\n{table(sweep)}\n\n## Mean over the evaluation photos\n\n{table(summary)}\n"
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), dpi=110)
    for ax, (index, metric) in zip(axes, ((1, "LPIPS"), (2, "DISTS"), (3, "PSNR")), strict=True):
        for vae, marker in (("taesd", "o"), ("taesd3", "s")):
            for codec, line in (("relic", "-"), ("relic-t0", ":"), ("latent-q", "--"), ("latent-q+denoise", "-.")):
                chosen = [r for r in rows if r["codec"] == codec and r["vae"] == vae]
                if not chosen:
                    continue
                qualities = sorted({r["quality"] for r in chosen})
                key = ("bpp", "lpips", "dists", "psnr")
                means = [[np.mean([r[k] for r in chosen if r["quality"] == q]) for q in qualities] for k in key]
                order = np.argsort(means[0])
                ax.plot(
                    np.array(means[0])[order], np.array(means[index])[order], marker + line, label=f"{codec} ({vae})"
                )
        ax.set_xlabel("bits per pixel (payload)")
        ax.set_ylabel(metric + (" (higher is better)" if metric == "PSNR" else " (lower is better)"))
        ax.set_xlim(0, 0.6)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Kodak photos not seen in training (mean of 4)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def plot_sweep(sweep: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vaes = sorted({r["vae"] for r in sweep})
    fig, axes = plt.subplots(1, len(vaes), figsize=(6 * len(vaes), 4.2), dpi=110, squeeze=False)
    for ax, vae in zip(axes[0], vaes, strict=True):
        for name in SWEEP_PHOTOS:
            for q in SWEEP_QUALITIES:
                group = [r for r in sweep if (r["vae"], r["image"], r["quality"]) == (vae, name, q)]
                hand = sorted((r for r in group if not r["predicted"]), key=lambda r: r["t"])
                line = ax.plot([r["t"] for r in hand], [r["lpips"] for r in hand], "-", label=f"{name} q{q:g}")[0]
                for r in group:
                    if r["predicted"]:
                        ax.plot([r["t"]], [r["lpips"]], "*", markersize=12, color=line.get_color())
        ax.set_xlabel("t the decoder starts from (star: predicted)")
        ax.set_ylabel("LPIPS")
        ax.set_title(vae)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


if __name__ == "__main__":
    raise SystemExit(main())
