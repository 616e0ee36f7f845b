"""The archivist's job: a quality floor over AVIF, JPEG XL and glc (with a collection
model), all four metrics, in photos per hour per core.

    python benchmarks/archivist.py [--photos kodim03,kodim04,kodim05] [--floor 0.2]
        [--checkout DIR --label before] [--model GLC.lpm] [--out DIR]

The photos (full size, from ``../shared/data/kodak-dev``) are archived in one process
on one thread (``--local``, ``OMP_NUM_THREADS=1``) with ``avif@lpipsF`` and
``jxl@lpipsF`` (each searched photo by photo) and glc against one collection model:
searched photo by photo too (``glc:fast@lpipsF``) where the checkout's glc can be
searched, else at its four fixed points (what an archivist had to run before glc
could be searched); ``--target-quality lpips<=F`` then keeps the smallest stream of
each photo that meets the floor. ``--checkout`` runs another checkout of latentpress
(an older commit) with this venv (each process starts in a scratch folder, so the
checkout on ``PYTHONPATH`` is the one imported). The glc model is trained once by this checkout on
kodim01 and kodim02 (``glc:fast``, 300 steps; never on the measured photos) into
``--model`` where that file does not exist yet (so that runs of two checkouts share
it); its training is not timed. Reported: wall seconds of the
archive command, photos per hour per core, bytes and LPIPS of the selection, and the
configurations glc was chosen for. Writes ``archivist.json`` and ``archivist.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak-dev"
RUN = "from latentpress.cli import main; raise SystemExit(main())"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default="kodim03,kodim04,kodim05")
    parser.add_argument("--floor", type=float, default=0.2)
    parser.add_argument("--checkout", type=Path, default=REPO)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(args.checkout),
           "LATENTPRESS_MODELS": os.environ.get("LATENTPRESS_MODELS", str(REPO.parent / "shared" / "models"))}  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        photos = _folder(root / "photos", args.photos.split(","))
        model = args.model or root / "glc-fast.lpm"
        if not model.exists():
            _train_model(root, model, env)
        searchable = _glc_searchable(env, root)
        floor = f"lpips{args.floor:g}"
        glc = f"glc:fast@{floor}" if searchable else "glc:fast@1,2,3,4"
        command = [sys.executable, "-c", RUN, "archive", str(photos), str(root / "archive"), "--codec",
                   f"avif@{floor}", "--codec", f"jxl@{floor}", "--codec", glc, "--model", str(model),
                   "--target-quality", f"lpips<={args.floor:g}", "--local"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
        seconds = time.perf_counter() - start
        chosen = _selection(root / "archive", env, root)
    count = len(args.photos.split(","))
    record = {
        "label": args.label, "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(), "photos": args.photos, "floor": args.floor,
        "glc": glc, "seconds": round(seconds, 1), "photos per hour per core": round(3600 * count / seconds, 1),
        "selection": chosen,
    }  # fmt: skip
    print(json.dumps(record, indent=1))
    _write(args.out, record)
    return 0


def _folder(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(KODAK / f"{name}.png", folder / f"{name}.png")
    return folder


def _train_model(root: Path, model: Path, env: dict) -> None:
    """Train a glc:fast model into ``model`` with this checkout, on kodim01 and kodim02 (300 steps)."""
    training = _folder(root / "training", ["kodim01", "kodim02"])
    subprocess.run([sys.executable, "-c", RUN, "train", str(training), str(model), "--codec", "glc:fast", "--steps",
                    "300", "--local"], env={**env, "PYTHONPATH": str(REPO)}, check=True, stdout=subprocess.DEVNULL, cwd=root)  # fmt: skip


def _glc_searchable(env: dict, cwd: Path) -> bool:
    probe = "from latentpress.codecs import codec_info; print(codec_info('glc').search is not None)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True, cwd=cwd)
    return done.stdout.strip() == "True"


def _selection(archive: Path, env: dict, cwd: Path) -> dict:
    """Bytes, mean LPIPS and configurations of the stored selection."""
    script = (
        "import json, sys; from latentpress.pipeline.selection import read_selection; "
        f"target, chosen = read_selection({str(archive / 'selection.parquet')!r}); "
        "print(json.dumps({'bytes': int(chosen['bytes'].sum()), 'lpips': round(float(chosen['value'].mean()), 4), "
        "'meets': int(chosen['meets'].sum()), 'configs': sorted(chosen['config_key'])}))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True, cwd=cwd)
    return json.loads(done.stdout)


def _write(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "archivist.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps(records, indent=1) + "\n")
    lines = ["# The archivist's job", "",
             "A floor of LPIPS over AVIF, JPEG XL and glc (collection model), all four metrics, one thread.", "",
             "| run | date | photos | glc | seconds | photos/hour/core | selection bytes | mean LPIPS | met | chosen |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for rec in records:
        sel = rec["selection"]
        chosen = ", ".join(sorted(set(sel["configs"])))
        lines.append(f"| {rec['label']} | {rec['date']} | {rec['photos']} | {rec['glc']} | {rec['seconds']} | "
                     f"{rec['photos per hour per core']} | {sel['bytes']} | {sel['lpips']} | {sel['meets']} | {chosen} |")  # fmt: skip
    (out / "archivist.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
