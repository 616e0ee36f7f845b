"""A saved GLC model's VAE decoder tuned again, on another training set or with another
tuning stage, against the decoder it carries: what the tuning's photos and recipe buy.

    python benchmarks/glc_decoder.py --load-models DIR [--vae taesd] [--preset fast]
                                     [--photos natural] [--set crop=32 --set batch_size=2]

Loads ``DIR/glc-VAE.bin`` (written by ``benchmarks/glc.py --save-models``), keeps its
rate-distortion and perceptual stages, tunes the VAE decoder again as training does
(``tune_on_collection``, its blends chosen by its own judge) on the ``--photos`` set
with ``DecoderStage`` fields overridden by ``--set``, and codes kodim03 to kodim06 at
glc's qualities with the model as saved (``glc``), with the new decoder
(``glc-retuned``) and with the stock one (``glc-stock``), beside ``latent-q``.
Writes ``glc-decoder.json`` and ``glc-decoder.md`` to ``--out``: BD-rates by LPIPS and
DISTS, mean and photo by photo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from glc import (  # noqa: E402
    EVALUATION,
    PHOTO_SETS,
    REPO,
    _pct,
    curve,
    dataclass_fields,
    evaluation_photos,
    glc_rows,
    latent_q_rows,
    training_photos,
)
from mdtable import table  # noqa: E402

from latentpress.codecs.tuned_decoder import DecoderStage, tune_on_collection  # noqa: E402
from latentpress.models.vae import load_vae  # noqa: E402
from latentpress.report.bdrate import bd_rate_or_reason  # noqa: E402

COMPARED = (("glc-retuned", "glc"), ("glc-retuned", "latent-q"), ("glc", "latent-q"), ("glc-retuned", "glc-stock"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-models", required=True, help="folder of models saved by glc.py --save-models")
    parser.add_argument("--vae", default="taesd")
    parser.add_argument("--preset", default="fast", help="the glc preset the model was trained as (its decoder steps)")
    parser.add_argument("--photos", choices=PHOTO_SETS, default="natural", help="training set of the new tuning")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a DecoderStage field")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()

    import torch

    from latentpress.codecs import get_codec
    from latentpress.codecs.glc import bitstream
    from latentpress.codecs.glc.codec import decoding

    torch.set_num_threads(args.threads)
    stage = DecoderStage(
        **{"steps": get_codec("glc").params(args.preset).decoder_steps, **dataclass_fields(args.set, DecoderStage)}
    )
    vae = load_vae(args.vae)
    saved = (Path(args.load_models) / f"glc-{args.vae}.bin").read_bytes()
    model, record, carried = bitstream.unpack_model(saved)
    photos = training_photos(args.photos)
    start = time.perf_counter()
    retuned = tune_on_collection(
        decoding(model),
        [vae.encode([p])[0] for p in photos.values()],
        list(photos.values()),
        vae.vae_id,
        stage,
        "cpu",
        lambda step, lpips, mse: print(f"decoder {step} lpips {lpips:.4f} mse {mse:.4f}", flush=True),
    )
    seconds = time.perf_counter() - start
    evaluation = evaluation_photos()
    latents = {name: vae.encode([image])[0] for name, image in evaluation.items()}
    rows = glc_rows(vae, saved, args.preset, evaluation, latents)
    rows += glc_rows(vae, bitstream.pack_model(model, record, retuned.arrays()), args.preset, evaluation, latents,
                     "glc-retuned")  # fmt: skip
    rows += glc_rows(vae, bitstream.pack_model(model, record), args.preset, evaluation, latents, "glc-stock")
    rows += latent_q_rows(vae, evaluation, latents)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": str(Path(args.load_models) / f"glc-{args.vae}.bin"),
        "vae": args.vae,
        "preset": args.preset,
        "photo_set": args.photos,
        "stage": asdict(stage),
        "tuning_seconds": seconds,
        "blends": {"glc": carried.blends.tolist() if carried else None, "glc-retuned": retuned.blends.tolist()},
        "bd_rates": bd_rates(rows, args.vae),
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "glc-decoder.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "glc-decoder.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def bd_rates(rows: list[dict], vae: str) -> list[dict]:
    """Each pair of ``COMPARED``: BD-rate by LPIPS and DISTS, mean and per photo."""
    out = []
    for test, anchor in COMPARED:
        for image in (None, *EVALUATION):
            t, a = curve(rows, test, vae, image), curve(rows, anchor, vae, image)
            out.append({"test": test, "anchor": anchor, "photo": image or "mean",
                        **{m: bd_rate_or_reason(a[0], a[i], t[0], t[i])[0] for i, m in ((1, "lpips"), (2, "dists"))}})  # fmt: skip
    return out


def markdown(report: dict) -> str:
    bds = [{**b, "lpips": _pct(b["lpips"]), "dists": _pct(b["dists"])} for b in report["bd_rates"]]
    return (
        f"# GLC decoder tuned again ({report['date']}; {report['model']}, {report['vae']}, preset "
        f"{report['preset']})\n\nTuned on the `{report['photo_set']}` photos, stage "
        f"{report['stage']}, in {report['tuning_seconds']:.0f} s; blends at qualities 1-4: as saved "
        f"{report['blends']['glc']}, retuned {report['blends']['glc-retuned']}. Evaluated on "
        f"{', '.join(EVALUATION)} at full size.\n\n## BD-rates (negative: fewer bits at equal quality)\n\n"
        f"{table(bds)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
